"""Every registered strategy through ``trading backtest --json`` in-process, on a temporary
warehouse of real ^GSPC and ^VIX daily bars; and the --strategy-file option."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from trading_core.cli import main
from trading_core.config import PROJECT_ROOT
from trading_core.strategies import STRATEGIES
from trading_core.warehouse import Warehouse

BASE = ["backtest", "--symbol", "^GSPC", "--venue", "yahoo", "--timeframe", "1d",
        "--start", "2000-01-01", "--end", "2018-12-31", "--no-save"]
EXAMPLES = PROJECT_ROOT / "config" / "strategies"

# Parameters exercising each strategy's main option (defaults otherwise).
PARAMS: dict[str, list[str]] = {
    "ma_crossover": ["fast=20", "slow=100"],
    "rsi_mean_reversion": ["max_bars=20"],
    "macd": ["grid=12:26:9,8:17:9"],
    "support_resistance": ["mode=breakout"],
    "fibonacci_retracement": ["level=0.5"],
    "seasonality": ["months=nov-apr"],
    "sentiment_filter": ["inner=ma_crossover", "inner_params=fast=20;slow=100", "rule=vix_level"],
}


@dataclass
class _Report:
    """The minimum report the warehouse writer takes: every row accepted."""

    accepted: pl.DataFrame
    dropped: pl.DataFrame = field(default_factory=pl.DataFrame)
    quarantined: pl.DataFrame = field(default_factory=pl.DataFrame)
    issues: list[Any] = field(default_factory=list)
    batch_rejected: bool = False
    reject_reason: str | None = None
    rows_in: int = 0


@pytest.fixture(scope="module")
def warehouse_path(tmp_path_factory: pytest.TempPathFactory, sp500: pl.DataFrame, vix: pl.DataFrame) -> Path:
    path = tmp_path_factory.mktemp("strat_cli") / "warehouse.duckdb"
    wh = Warehouse(path)
    wh.migrate()
    for symbol, frame in (("^GSPC", sp500), ("^VIX", vix)):
        wh.write_report(venue="yahoo", symbol=symbol, timeframe="1d", source="test:sample",
                        report=_Report(accepted=frame, rows_in=frame.height))
    return path


@pytest.fixture
def use_warehouse(warehouse_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRADING_WAREHOUSE", str(warehouse_path))
    return warehouse_path


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    rc = main([*BASE, *args, "--json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    return json.loads(out)  # type: ignore[no-any-return]


# ml_signal needs a registered champion: tests/integration/test_models_registry.py backtests it
@pytest.mark.parametrize("name", sorted(set(STRATEGIES) - {"ml_signal"}))
def test_cli_backtest_when_each_registered_strategy_then_metrics(
        name: str, capsys: pytest.CaptureFixture[str], use_warehouse: Path) -> None:
    if name == "yaml":
        args = ["--strategy-file", str(EXAMPLES / "rsi_trend_pullback.yaml")]
    else:
        args = ["--strategy", name, *[a for p in PARAMS.get(name, []) for a in ("--param", p)]]
    doc = _run(capsys, *args, "--fee-bps", "5")
    m = doc["metrics"]
    assert doc["bars"] > 4500
    assert m["final_equity"] > 0 and "sharpe" in m and "max_drawdown" in m
    assert m["trades"] + m["open_trades"] >= 1, f"{name} never traded"


def test_cli_backtest_when_strategy_file_then_request_records_path_and_hash(
        capsys: pytest.CaptureFixture[str], use_warehouse: Path) -> None:
    f = EXAMPLES / "bollinger_squeeze.yaml"
    doc = _run(capsys, "--strategy-file", str(f))
    params = doc["request"]["params"]
    assert doc["request"]["strategy"] == "yaml" and params["file"] == str(f.resolve())
    assert len(params["sha256"]) == 64
    assert doc["portfolios"][0]["params"] == {"rules": "bollinger_squeeze"}


@pytest.mark.parametrize(("args", "message"), [
    (["--strategy", "macd", "--strategy-file", str(EXAMPLES / "rsi_trend_pullback.yaml")], "mutually exclusive"),
    (["--strategy-file", "/no/such/file.yaml"], "no such file"),
    (["--strategy", "rsi_mean_reversion", "--param", "lower=90"], "lower < upper"),
])
def test_cli_backtest_when_bad_strategy_arguments_then_one_line_error(
        args: list[str], message: str, capsys: pytest.CaptureFixture[str], use_warehouse: Path) -> None:
    rc = main([*BASE, *args])
    _, err = capsys.readouterr()
    assert rc == 2 and message in err and err.count("\n") == 1


def test_cli_backtest_when_yaml_file_has_an_error_then_line_is_reported(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], use_warehouse: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("name: bad\nindicators:\n  r: {fn: rsi, window: 14}\nentry: r < 30\nexit: rr > 70\n")
    rc = main([*BASE, "--strategy-file", str(f)])
    _, err = capsys.readouterr()
    assert rc == 2 and f"{f.resolve()}, line 5, column 7: exit: unknown name 'rr'" in err
