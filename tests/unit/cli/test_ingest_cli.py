"""`trading ingest file|sample` end to end on a temporary warehouse (TRADING_DATA_DIR is per test)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from trading_core.cli import main
from trading_core.config import load_config
from trading_core.warehouse import Warehouse


def _warehouse() -> Warehouse:
    return Warehouse(load_config().warehouse.path)


def _btc_csv(path: Path, btc_1h: pl.DataFrame, n: int = 200) -> pl.DataFrame:
    frame = btc_1h.head(n)
    frame.with_columns(pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%SZ")).write_csv(path)
    return frame


def test_clean_file_is_written_and_reported_as_json(tmp_path: Path, btc_1h: pl.DataFrame,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "btc.csv"
    frame = _btc_csv(src, btc_1h)
    rc = main(["ingest", "file", str(src), "--symbol", "BTC/USD", "--venue", "coinbase",
               "--timeframe", "1h", "--json"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows_read"] == 200 and report["written"] == 200 and report["rejected"] == 0
    stored = _warehouse().read_bars("coinbase", "BTC/USD", "1h")
    assert stored.height == 200
    assert stored["close"].to_list() == frame["close"].to_list()


def test_rerunning_a_file_writes_nothing_new(tmp_path: Path, btc_1h: pl.DataFrame,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "btc.csv"
    _btc_csv(src, btc_1h)
    args = ["ingest", "file", str(src), "--symbol", "BTC/USD", "--venue", "coinbase", "--timeframe", "1h", "--json"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 0
    again = json.loads(capsys.readouterr().out)
    assert (again["written"], again["unchanged"]) == (0, 200)


def test_bad_rows_are_quarantined_with_their_rule_codes(tmp_path: Path, btc_1h: pl.DataFrame,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    frame = btc_1h.head(100).with_columns(
        pl.when(pl.int_range(pl.len()) == 10).then(pl.col("low") * 0.5).otherwise(pl.col("high")).alias("high"))
    src = tmp_path / "bad.parquet"
    frame.write_parquet(src)
    rc = main(["ingest", "file", str(src), "--symbol", "BTC/USD", "--venue", "coinbase",
               "--timeframe", "1h", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert report["quarantined"] >= 1 and report["written"] == 100 - report["quarantined"]
    assert any(a == "quarantine" for a in report["rule_actions"].values())
    held = _warehouse().query("SELECT rule FROM market.quarantine")
    assert held.height == report["quarantined"]


def test_unusable_file_exits_2_with_one_line_and_leaves_the_warehouse_unchanged(
        tmp_path: Path, btc_1h: pl.DataFrame, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.csv"
    _btc_csv(good, btc_1h, 50)
    assert main(["ingest", "file", str(good), "--symbol", "BTC/USD", "--venue", "coinbase", "--timeframe", "1h"]) == 0
    wh = _warehouse()
    before = (wh.digest(), wh.digest("market.quality_issues"), wh.digest("market.quarantine"))
    batches = wh.query("SELECT count(*) AS n FROM market.ingest_batches")["n"][0]
    capsys.readouterr()
    missing_close = tmp_path / "missing.csv"
    missing_close.write_text("ts,open,high,low,volume\n2018-01-01T00:00:00Z,1,2,0.5,3\n")
    for bad in (missing_close, tmp_path / "does-not-exist.csv"):
        rc = main(["ingest", "file", str(bad), "--symbol", "BTC/USD", "--venue", "coinbase", "--timeframe", "1h"])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2
        assert len(err) == 1 and err[0].startswith("trading: ")
    assert (wh.digest(), wh.digest("market.quality_issues"), wh.digest("market.quarantine")) == before
    assert wh.query("SELECT count(*) AS n FROM market.ingest_batches")["n"][0] == batches


def test_hostile_symbol_is_refused_before_any_query(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "x.csv"
    src.write_text("ts,open,high,low,close,volume\n")
    with pytest.raises(SystemExit) as e:
        main(["ingest", "file", str(src), "--symbol", "BTC'; DROP TABLE market.bars; --",
              "--venue", "coinbase", "--timeframe", "1h"])
    assert e.value.code == 2
    assert "invalid symbol" in capsys.readouterr().err


def test_sample_ingest_loads_real_history_once(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ingest", "sample", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    by_symbol = {r["symbol"]: r for r in results}
    assert set(by_symbol) == {"BTC/USD", "^GSPC", "^IXIC", "^VIX"}  # every series the sample ships
    assert all(r["batch_rejected"] is False for r in results)
    wh = _warehouse()
    spx = wh.read_bars("yahoo", "^GSPC", "1d", datetime(2008, 10, 15, tzinfo=UTC),
                       datetime(2008, 10, 15, tzinfo=UTC) + timedelta(days=1))
    assert spx["close"].to_list() == [pytest.approx(907.84)]
    assert main(["ingest", "sample", "--if-empty"]) == 0
    assert "already has bars" in capsys.readouterr().out
    assert main(["ingest", "sample", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert sum(r["written"] for r in again) == 0
