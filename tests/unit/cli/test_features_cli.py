"""``trading features update``: the Dagster assets' library function, run from the CLI on a temporary
warehouse of real ^GSPC bars (written through the warehouse writer)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import polars as pl
import pytest

from trading_core.cli import main
from trading_core.features.compute import FeatureSpec, feature_version
from trading_core.features.pipeline import series_spec
from trading_core.features.regimes import RegimeConfig, regime_version
from trading_core.warehouse import Warehouse
from trading_core.warehouse.features import read_features, read_regimes

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backtest"))
from bt_helpers import build_warehouse  # noqa: E402

KEY = ("yahoo", "^GSPC", "1d")


@pytest.fixture
def warehouse(tmp_path: Path, sp500: pl.DataFrame, monkeypatch: pytest.MonkeyPatch) -> Warehouse:
    wh = build_warehouse(tmp_path / "warehouse.duckdb", sp500)
    monkeypatch.setenv("TRADING_WAREHOUSE", str(wh.path))
    return wh


def test_update_computes_features_and_regimes_like_the_asset(
        warehouse: Warehouse, sp500: pl.DataFrame, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["features", "update", "--symbol", "^GSPC", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["series"]
    assert (row["venue"], row["symbol"], row["timeframe"], row["calendar"]) == (*KEY, "equity")
    assert (row["mode"], row["bars_read"], row["features_written"]) == ("full", sp500.height, sp500.height)
    # the versions the Dagster asset would store (config regimes, the universe's asset class)
    assert row["feature_version"] == feature_version(series_spec(FeatureSpec(), "1d", "equity"))
    assert row["regime_version"] == regime_version(RegimeConfig())
    with warehouse.connect(read_only=True) as con:
        feats, labels = read_features(con, *KEY), read_regimes(con, *KEY)
    assert feats.height == sp500.height and labels.height == row["regimes_written"] > 4000
    assert set(labels["regime_version"].unique()) == {row["regime_version"]}

    # a second run has nothing new; text output names the mode, the versions and the next command
    assert main(["features", "update", "--symbol", "^GSPC", "--venue", "yahoo", "--timeframe", "1d"]) == 0
    text = capsys.readouterr().out
    assert "^GSPC (yahoo, 1d): up to date" in text
    assert f"regime_version {row['regime_version']}" in text and "trading regimes --symbol ^GSPC" in text
    assert main(["features", "update", "--universe", "equities", "--full", "--json"]) == 0
    rows = {r["symbol"]: r for r in json.loads(capsys.readouterr().out)["series"]}
    assert rows["^GSPC"]["mode"] == "full" and rows["^VIX"]["mode"] == "no_bars"


@pytest.mark.parametrize(("argv", "message"), [
    (["--symbol", "AAPL"], "AAPL is in no configured universe"),
    (["--universe", "equities", "--symbol", "^GSPC"], "not both"),
    (["--venue", "yahoo"], "need --symbol"),
    (["--symbol", "bad;sym", "--venue", "yahoo", "--timeframe", "1d"], "bad;sym"),
    (["--universe", "nope"], "no universe named 'nope'"),
])
def test_bad_arguments_exit_2_with_the_reason(warehouse: Warehouse, argv: list[str], message: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["features", "update", *argv]) == 2
    assert message in capsys.readouterr().err


def test_no_bars_or_no_warehouse_says_to_ingest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TRADING_WAREHOUSE", str(tmp_path / "missing.duckdb"))
    assert main(["features", "update"]) == 2
    err = capsys.readouterr().err
    assert "no warehouse" in err and "trading ingest sample" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "missing.duckdb").exists()
    empty = Warehouse(tmp_path / "empty.duckdb")
    empty.migrate()
    monkeypatch.setenv("TRADING_WAREHOUSE", str(empty.path))
    assert main(["features", "update", "--symbol", "^GSPC", "--json"]) == 2
    out = capsys.readouterr()
    assert json.loads(out.out)["series"][0]["mode"] == "no_bars"
    assert "ingest them first" in out.err and len(out.err.splitlines()) == 1
