"""Read-only queries behind the monitoring app: stored backtests, data quality, quarantine.

Each function takes an open (read-only) connection to the warehouse or to a serving snapshot
(which holds the same ``schema.table`` names), runs one bounded query and returns a frame. Values
are bound parameters; table names come from this module only.
"""

from __future__ import annotations

import duckdb
import polars as pl

__all__ = ["backtest_equity", "backtest_runs", "backtest_trades", "ingest_batches", "quality_issue_counts",
           "quality_issues", "quarantine_rows", "tables_present"]


def tables_present(con: duckdb.DuckDBPyConnection) -> set[str]:
    """``schema.table`` of every table the connected file holds (a snapshot may hold only some)."""
    rows = con.execute("SELECT schema_name, table_name FROM duckdb_tables()").fetchall()
    return {f"{s}.{t}" for s, t in rows}


def _limit(n: int) -> int:
    return max(1, min(int(n), 100_000))


def backtest_runs(con: duckdb.DuckDBPyConnection, limit: int = 500) -> pl.DataFrame:
    """Stored backtest runs, newest first, with their metrics as JSON text."""
    return con.sql(
        "SELECT run_id, created_at, strategy, params::VARCHAR AS params, venue, symbol, timeframe, start_ts, end_ts, "
        "metrics::VARCHAR AS metrics FROM backtest.runs ORDER BY created_at DESC, run_id LIMIT $n",
        params={"n": _limit(limit)}).pl()


def backtest_equity(con: duckdb.DuckDBPyConnection, run_id: str, portfolio: int = 0) -> pl.DataFrame:
    """``ts, equity, cash, position`` of one portfolio of a run, in time order."""
    return con.sql("SELECT ts, equity, cash, position FROM backtest.equity WHERE run_id = $run AND portfolio = $p "
                   "ORDER BY ts", params={"run": run_id, "p": int(portfolio)}).pl()


def backtest_trades(con: duckdb.DuckDBPyConnection, run_id: str, portfolio: int = 0) -> pl.DataFrame:
    """Round trips of one portfolio of a run, in order."""
    return con.sql("SELECT trade_no, symbol, side, entry_ts, exit_ts, entry_price, exit_price, quantity, fees, pnl "
                   "FROM backtest.trades WHERE run_id = $run AND portfolio = $p ORDER BY trade_no",
                   params={"run": run_id, "p": int(portfolio)}).pl()


def ingest_batches(con: duckdb.DuckDBPyConnection, limit: int = 200) -> pl.DataFrame:
    """The latest ingest batches (accepted or rejected) with their row counts, newest first."""
    return con.sql(
        "SELECT received_at, venue, symbol, timeframe, source, status, reason, rows_in, rows_inserted, rows_revised, "
        "rows_dropped, rows_quarantined, rows_repaired, batch_id FROM market.ingest_batches "
        "ORDER BY received_at DESC, batch_id LIMIT $n", params={"n": _limit(limit)}).pl()


def quality_issues(con: duckdb.DuckDBPyConnection, limit: int = 500) -> pl.DataFrame:
    """Validation findings, newest first: rule, action taken, rows affected, detail."""
    return con.sql(
        "SELECT detected_at, venue, symbol, timeframe, rule, action, row_count, first_ts, last_ts, detail, batch_id "
        "FROM market.quality_issues ORDER BY detected_at DESC, batch_id, rule LIMIT $n",
        params={"n": _limit(limit)}).pl()


def quality_issue_counts(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Findings per series and rule: how many, how many rows, when last seen."""
    return con.sql(
        "SELECT venue, symbol, timeframe, rule, action, count(*)::BIGINT AS issues, sum(row_count)::BIGINT AS rows, "
        "max(detected_at) AS last_seen FROM market.quality_issues GROUP BY ALL ORDER BY issues DESC, venue, symbol, timeframe, rule").pl()


def quarantine_rows(con: duckdb.DuckDBPyConnection, limit: int = 500) -> pl.DataFrame:
    """Rows held back for review, newest first, as received."""
    return con.sql(
        "SELECT quarantined_at, venue, symbol, timeframe, rule, detail, ts, open, high, low, close, volume, batch_id "
        "FROM market.quarantine ORDER BY quarantined_at DESC, batch_id, row_id LIMIT $n",
        params={"n": _limit(limit)}).pl()

