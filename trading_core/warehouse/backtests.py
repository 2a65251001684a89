"""Backtest results in the ``backtest`` schema: one run, its portfolios, trades, fills and equity.

A run is written in ONE transaction (all of it lands or none), with its full configuration and the
execution-model hash so it can be reproduced. Every value is a bound parameter or a registered
frame; table names come from this module only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import polars as pl

from ..symbols import check_symbol, check_venue
from .connection import transaction

__all__ = ["BacktestRecord", "write_backtest", "read_backtest_run", "write_breaker_history", "read_breaker_history"]

_TRADE_COLUMNS = ("trade_no", "portfolio", "symbol", "side", "entry_ts", "exit_ts", "entry_price", "exit_price",
                  "quantity", "fees", "pnl")
_FILL_COLUMNS = ("portfolio", "fill_no", "order_id", "ts", "symbol", "side", "qty", "price", "fee",
                 "slippage_cost", "reason")
_TS = pl.Datetime("ms", "UTC")


@dataclass(frozen=True)
class BacktestRecord:
    """Everything one backtest run stores; plain data so the runner and the store stay decoupled.

    ``portfolios``: one dict per portfolio with ``portfolio, symbol, params, metrics`` (metrics a
    JSON-ready dict). ``trades``/``fills``: dicts with the ``_TRADE_COLUMNS``/``_FILL_COLUMNS``
    keys. ``equity``: a frame with ``portfolio, ts, equity, cash, position``.
    """

    run_id: str
    created_at: datetime
    strategy: str
    params: dict[str, Any]
    venue: str
    symbol: str
    timeframe: str
    start_ts: datetime | None
    end_ts: datetime | None
    config: dict[str, Any]
    execution_model_hash: str
    metrics: dict[str, Any]
    portfolios: list[dict[str, Any]] = field(default_factory=list)
    trades: list[dict[str, Any]] = field(default_factory=list)
    fills: list[dict[str, Any]] = field(default_factory=list)
    equity: pl.DataFrame | None = None


def _json(v: Any) -> str:
    return json.dumps(v, default=str, sort_keys=True, allow_nan=False)


def _frame(rows: list[dict[str, Any]], columns: tuple[str, ...], schema: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame([{c: r.get(c) for c in columns} for r in rows], schema=schema, orient="row")


def write_backtest(con: Any, record: BacktestRecord) -> str:
    """Insert ``record`` into backtest.runs/portfolios/trades/fills/equity atomically; return run_id.

    ``con`` is an open read-write DuckDB connection (``Warehouse.connect()``) on a migrated store.
    """
    check_venue(record.venue)
    check_symbol(record.symbol)
    with transaction(con):
        con.execute(
            "INSERT INTO backtest.runs (run_id, created_at, strategy, params, venue, symbol, timeframe, "
            "start_ts, end_ts, config, execution_model_hash, metrics) "
            "VALUES ($run, $created, $strategy, $params, $venue, $symbol, $tf, $start, $end, $config, "
            "$hash, $metrics)",
            {"run": record.run_id, "created": record.created_at, "strategy": record.strategy,
             "params": _json(record.params), "venue": record.venue, "symbol": record.symbol,
             "tf": record.timeframe, "start": record.start_ts, "end": record.end_ts,
             "config": _json(record.config), "hash": record.execution_model_hash,
             "metrics": _json(record.metrics)},
        )
        if record.portfolios:
            con.executemany(
                "INSERT INTO backtest.portfolios VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [[record.run_id, p["portfolio"], p["symbol"], _json(p["params"]), _json(p["metrics"]),
                  p["metrics"]["final_equity"], p["metrics"]["total_return"], p["metrics"].get("sharpe"),
                  p["metrics"]["max_drawdown"], p["metrics"]["trades"]] for p in record.portfolios],
            )
        if record.trades:
            trades = _frame(record.trades, _TRADE_COLUMNS, {
                "trade_no": pl.Int32, "portfolio": pl.Int32, "symbol": pl.Utf8, "side": pl.Utf8, "entry_ts": _TS,
                "exit_ts": _TS, "entry_price": pl.Float64, "exit_price": pl.Float64,
                "quantity": pl.Float64, "fees": pl.Float64, "pnl": pl.Float64})
            con.register("_bt_trades", trades)
            con.execute(
                "INSERT INTO backtest.trades (run_id, trade_no, portfolio, symbol, side, entry_ts, exit_ts, "
                "entry_price, exit_price, quantity, fees, pnl) SELECT $run, trade_no, portfolio, "
                "coalesce(symbol, $sym), side, entry_ts, exit_ts, entry_price, exit_price, quantity, fees, pnl "
                "FROM _bt_trades",
                {"run": record.run_id, "sym": record.symbol})
            con.unregister("_bt_trades")
        if record.fills:
            fills = _frame(record.fills, _FILL_COLUMNS, {
                "portfolio": pl.Int32, "fill_no": pl.Int32, "order_id": pl.Int64, "ts": _TS,
                "symbol": pl.Utf8, "side": pl.Utf8, "qty": pl.Float64, "price": pl.Float64, "fee": pl.Float64,
                "slippage_cost": pl.Float64, "reason": pl.Utf8})
            con.register("_bt_fills", fills)
            con.execute(
                "INSERT INTO backtest.fills (run_id, portfolio, fill_no, order_id, ts, symbol, side, qty, "
                "price, fee, slippage_cost, reason) SELECT $run, portfolio, fill_no, order_id, ts, "
                "coalesce(symbol, $sym), side, qty, price, fee, slippage_cost, reason FROM _bt_fills",
                {"run": record.run_id, "sym": record.symbol})
            con.unregister("_bt_fills")
        if record.equity is not None and record.equity.height:
            eq = record.equity.select(
                pl.col("portfolio").cast(pl.Int32), pl.col("ts").cast(_TS),
                pl.col("equity").cast(pl.Float64), pl.col("cash").cast(pl.Float64),
                pl.col("position").cast(pl.Float64))
            con.register("_bt_equity", eq)
            con.execute(
                "INSERT INTO backtest.equity (run_id, portfolio, ts, equity, cash, position) "
                "SELECT $run, portfolio, ts, equity, cash, position FROM _bt_equity",
                {"run": record.run_id})
            con.unregister("_bt_equity")
    return record.run_id


def read_backtest_run(con: Any, run_id: str) -> dict[str, Any] | None:
    """The stored run row (JSON columns decoded) with its trade count, or None if unknown."""
    rows = con.execute(
        "SELECT run_id, created_at, strategy, params, venue, symbol, timeframe, start_ts, end_ts, "
        "config, execution_model_hash, metrics, "
        "(SELECT count(*) FROM backtest.trades t WHERE t.run_id = r.run_id) AS n_trades "
        "FROM backtest.runs r WHERE run_id = $run", {"run": run_id}).fetchall()
    if not rows:
        return None
    keys = ("run_id", "created_at", "strategy", "params", "venue", "symbol", "timeframe", "start_ts",
            "end_ts", "config", "execution_model_hash", "metrics", "n_trades")
    out = dict(zip(keys, rows[0], strict=True))
    for k in ("params", "config", "metrics"):
        out[k] = json.loads(out[k]) if isinstance(out[k], str) else out[k]
    return out


def write_breaker_history(con: Any, run_id: str, events: list[dict[str, Any]], states: list[dict[str, Any]]) -> None:
    """A run's breaker transitions (in order) and final states, atomically (joins an outer
    transaction, so ``trading backtest`` stores them with the run or not at all)."""
    from .risk import finite_json

    with transaction(con):
        if events:
            con.executemany(
                "INSERT INTO backtest.breaker_events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [[run_id, i, e["ts"], e["level"], e["scope"], e["from_state"], e["to_state"], e["event"],
                  e.get("rule"), finite_json(e.get("metrics") or {})] for i, e in enumerate(events)])
        if states:
            con.executemany(
                "INSERT INTO backtest.breaker_states VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [[run_id, s["level"], s["scope"], s["state"], s.get("reason"), s.get("since"),
                  s.get("cooldown_until"), bool(s.get("latched")), finite_json(s.get("memo") or {})] for s in states])


def read_breaker_history(con: Any, run_id: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(events in order, final states) of one run."""
    ev = con.sql("SELECT * FROM backtest.breaker_events WHERE run_id = $run ORDER BY event_no",
                 params={"run": run_id}).pl()
    st = con.sql("SELECT * FROM backtest.breaker_states WHERE run_id = $run ORDER BY level, scope",
                 params={"run": run_id}).pl()
    return ev, st
