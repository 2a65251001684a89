"""Reads for reports and health, and the ``ops`` tables' writes (daily summaries, alert deliveries).

Every value is a bound parameter; table names come from this module only. Writers join an outer
``transaction`` when a caller wraps them (the daily summary lands whole or not at all).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import duckdb
import polars as pl

from .connection import transaction

__all__ = ["COUNTED_TABLES", "backtest_equity", "backtest_portfolios", "backtest_trades", "data_quality_failures",
           "previous_session_summary", "read_daily_summary", "recent_run_ids", "table_counts",
           "write_alert_deliveries", "write_daily_summary"]

# The tables `trading health` counts (identifiers from code, never from input).
COUNTED_TABLES = ("market.bars", "market.ingest_batches", "market.quality_issues", "market.quarantine",
                  "features.indicators", "features.regimes", "backtest.runs", "backtest.trades",
                  "ops.daily_summary", "ops.alert_deliveries")


def backtest_portfolios(con: duckdb.DuckDBPyConnection, run_id: str) -> pl.DataFrame:
    """One row per portfolio of a run: symbol, params and metrics (JSON text), headline figures."""
    return con.sql("SELECT portfolio, symbol, params, metrics, final_equity, total_return, sharpe, max_drawdown, "
                   "trades FROM backtest.portfolios WHERE run_id = $run ORDER BY portfolio", params={"run": run_id}).pl()


def backtest_trades(con: duckdb.DuckDBPyConnection, run_id: str, portfolio: int | None = None) -> pl.DataFrame:
    """The run's round trips in order (one portfolio, or all)."""
    sql = ("SELECT portfolio, trade_no, symbol, side, entry_ts, exit_ts, entry_price, exit_price, quantity, fees, "
           "pnl FROM backtest.trades WHERE run_id = $run")
    params: dict[str, Any] = {"run": run_id}
    if portfolio is not None:
        sql += " AND portfolio = $p"
        params["p"] = int(portfolio)
    return con.sql(sql + " ORDER BY portfolio, trade_no", params=params).pl()


def backtest_equity(con: duckdb.DuckDBPyConnection, run_id: str, portfolio: int = 0) -> pl.DataFrame:
    """``ts, equity, cash, position`` of one portfolio of a run, in time order."""
    return con.sql("SELECT ts, equity, cash, position FROM backtest.equity WHERE run_id = $run AND portfolio = $p "
                   "ORDER BY ts", params={"run": run_id, "p": int(portfolio)}).pl()


def recent_run_ids(con: duckdb.DuckDBPyConnection, limit: int = 5) -> list[str]:
    """The newest stored backtest runs (what an unknown-id error suggests)."""
    return [r[0] for r in con.execute("SELECT run_id FROM backtest.runs ORDER BY created_at DESC LIMIT ?",
                                      [int(limit)]).fetchall()]


def table_counts(con: duckdb.DuckDBPyConnection, tables: tuple[str, ...] = COUNTED_TABLES) -> dict[str, int | None]:
    """Rows per table; None for a table this store does not have (not migrated that far)."""
    have = {f"{s}.{t}" for s, t in con.execute(
        "SELECT table_schema, table_name FROM information_schema.tables").fetchall()}
    out: dict[str, int | None] = {}
    for t in tables:
        out[t] = int(con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]) if t in have else None
    return out


def data_quality_failures(con: duckdb.DuckDBPyConnection, limit: int = 200) -> list[dict[str, Any]]:
    """Batches the validation contract refused or partly quarantined, newest first."""
    cur = con.execute(
        "SELECT batch_id, venue, symbol, timeframe, status, reason, rows_quarantined, received_at "
        "FROM market.ingest_batches WHERE status = 'rejected' OR rows_quarantined > 0 "
        "ORDER BY received_at DESC LIMIT ?", [int(limit)])
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


# ---- ops: daily summary ------------------------------------------------------------------------
def write_daily_summary(con: duckdb.DuckDBPyConnection, row: dict[str, Any], sessions: list[dict[str, Any]]) -> None:
    """Replace the day's summary and its per-session rows in one transaction (re-running a day is
    idempotent: the newest computation wins)."""
    with transaction(con):
        con.execute("DELETE FROM ops.daily_summary WHERE day = ?", [row["day"]])
        con.execute("DELETE FROM ops.daily_session_summary WHERE day = ?", [row["day"]])
        con.execute(
            "INSERT INTO ops.daily_summary VALUES ($day, $as_of, $sessions, $sessions_running, $sessions_stale, "
            "$equity, $pnl, $day_pnl, $fills, $day_fills, $alerts, $alerts_by_kind, $stalest_series, "
            "$stalest_age_h, $freshness)",
            {**row, "alerts_by_kind": json.dumps(row["alerts_by_kind"], sort_keys=True),
             "freshness": json.dumps(row["freshness"], sort_keys=True, default=str)})
        if sessions:
            con.executemany(
                "INSERT INTO ops.daily_session_summary VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [[row["day"], s["session_id"], s["name"], s["state"], s["bars"], s["fills"], s["day_fills"],
                  s["equity"], s["pnl"], s["day_pnl"]] for s in sessions])


def previous_session_summary(con: duckdb.DuckDBPyConnection, before: date) -> dict[str, dict[str, Any]]:
    """Per session, its latest summary row from a day before ``before`` (for the day's deltas)."""
    cur = con.execute(
        "SELECT session_id, fills, equity FROM ops.daily_session_summary WHERE day < ? "
        "QUALIFY row_number() OVER (PARTITION BY session_id ORDER BY day DESC) = 1", [before])
    return {r[0]: {"fills": int(r[1]), "equity": r[2]} for r in cur.fetchall()}


def read_daily_summary(con: duckdb.DuckDBPyConnection, day: date) -> tuple[dict[str, Any] | None, pl.DataFrame]:
    """The day's summary row (JSON decoded) and its per-session rows."""
    cur = con.execute("SELECT * FROM ops.daily_summary WHERE day = ?", [day])
    rows = cur.fetchall()
    head = None
    if rows:
        head = dict(zip([d[0] for d in cur.description], rows[0], strict=True))
        for k in ("alerts_by_kind", "freshness"):
            head[k] = json.loads(head[k]) if isinstance(head[k], str) else head[k]
    per = con.sql("SELECT * FROM ops.daily_session_summary WHERE day = $day ORDER BY session_id",
                  params={"day": day}).pl()
    return head, per


# ---- ops: alert deliveries ---------------------------------------------------------------------
def write_alert_deliveries(con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]) -> int:
    """Copy acknowledged deliveries from the journal; a row already stored is left as it is."""
    if not rows:
        return 0
    with transaction(con):
        before = con.execute("SELECT count(*) FROM ops.alert_deliveries").fetchall()[0][0]
        con.executemany(
            "INSERT INTO ops.alert_deliveries VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [[r["alert_key"], r["channel"], r["kind"], r["severity"], r.get("subject"), r["idempotency_key"],
              int(r["attempts"]), _ts(r["acked_at"])] for r in rows])
        after = con.execute("SELECT count(*) FROM ops.alert_deliveries").fetchall()[0][0]
    return int(after - before)


def _ts(v: Any) -> datetime:
    from datetime import UTC

    return v if isinstance(v, datetime) else datetime.fromtimestamp(float(v), tz=UTC)


def drift_failures(con: duckdb.DuckDBPyConnection, limit: int = 200) -> list[dict[str, Any]]:
    """Drift checks whose verdict was ``fail`` (``ml.drift_checks``; empty where the table is absent)."""
    have = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'ml' "
                       "AND table_name = 'drift_checks'").fetchall()[0][0]
    if not have:
        return []
    cur = con.execute("SELECT check_id, measured_at, model_name, version, status FROM ml.drift_checks "
                      "WHERE status = 'fail' ORDER BY measured_at DESC LIMIT ?", [int(limit)])
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
