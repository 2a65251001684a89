"""A stepped backtest stores its run, audit rows, signal decisions and breaker history in ONE
transaction, on real S&P 500 / VIX bars (2008, when the breakers trip)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import duckdb
import polars as pl
import pytest
from bt_helpers import build_warehouse

from trading_core.backtest import BacktestRequest, run_backtest
from trading_core.risk import RiskConfig
from trading_core.warehouse.backtests import read_backtest_run, read_breaker_history
from trading_core.warehouse.connection import transaction


@pytest.fixture()
def wh(tmp_path: Any, sp500: pl.DataFrame, vix: pl.DataFrame) -> Any:
    path = tmp_path / "w.duckdb"
    build_warehouse(path, sp500)
    return build_warehouse(path, vix, symbol="^VIX")


def _req(**kw: Any) -> BacktestRequest:
    return BacktestRequest(strategy="ma_crossover", params={"fast": 5, "slow": 20}, symbol="^GSPC",
                           venue="yahoo", timeframe="1d", start=datetime(2007, 6, 1, tzinfo=UTC),
                           end=datetime(2009, 6, 1, tzinfo=UTC), risk=RiskConfig(), **kw)


def _count(wh: Any, table: str, run_id: str) -> int:
    with wh.connect(read_only=True) as con:
        return int(con.execute(f"SELECT count(*) FROM {table} WHERE run_id = ?", [run_id]).fetchone()[0])


def test_breaker_history_is_stored_with_the_run(wh: Any) -> None:
    res = run_backtest(_req(), wh, run_id="bh-1")
    assert res.driver == "stepped" and res.breaker_events, "2008 must trip at least one breaker"
    with wh.connect(read_only=True) as con:
        events, states = read_breaker_history(con, "bh-1")
        assert read_backtest_run(con, "bh-1") is not None
    assert events.height == len(res.breaker_events)
    assert events["event_no"].to_list() == list(range(events.height))
    assert events["rule"].to_list() == [e["rule"] for e in res.breaker_events]
    assert {"market", "portfolio", "strategy", "system"} >= set(states["level"].to_list())
    assert _count(wh, "risk.risk_decisions", "bh-1") == res.risk_rows.height  # type: ignore[union-attr]


def test_a_failing_write_rolls_back_the_whole_run(wh: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import trading_core.warehouse.backtests as bt

    def boom(*a: Any, **k: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(bt, "write_breaker_history", boom)  # the last write of the run fails
    with pytest.raises(RuntimeError, match="disk full"):
        run_backtest(_req(), wh, run_id="bh-2")
    for table in ("backtest.runs", "backtest.fills", "backtest.equity", "risk.risk_decisions",
                  "backtest.signal_decisions", "backtest.breaker_events"):
        assert _count(wh, table, "bh-2") == 0, table


def test_nested_transactions_join_the_outer_one(tmp_path: Any) -> None:
    con = duckdb.connect(str(tmp_path / "t.duckdb"))
    con.execute("CREATE TABLE t (x INTEGER)")
    with pytest.raises(ValueError), transaction(con):
        con.execute("INSERT INTO t VALUES (1)")
        with transaction(con):  # an inner writer that is atomic on its own
            con.execute("INSERT INTO t VALUES (2)")
        raise ValueError("after the inner commit point")
    assert con.execute("SELECT count(*) FROM t").fetchone()[0] == 0
    with transaction(con), transaction(con):
        con.execute("INSERT INTO t VALUES (3)")
    assert con.execute("SELECT count(*) FROM t").fetchone()[0] == 1
