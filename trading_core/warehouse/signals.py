"""Signal-filter decisions in ``backtest.signal_decisions`` (DDL: migrations/0005_signal_decisions.sql).

Takes a plain polars frame (``trading_core.strategies.filters.decision_rows`` builds it) so the
warehouse does not depend on the strategies package. One call is one transaction; inserts are
``INSERT OR IGNORE`` on (run_id, bar, portfolio, kind), so a replayed write never duplicates a row.
"""

from __future__ import annotations

from typing import Any

import duckdb
import polars as pl

from .connection import insert_new_rows

__all__ = ["SIGNAL_DECISION_COLUMNS", "write_signal_decisions", "read_signal_decisions"]

SIGNAL_DECISION_COLUMNS: dict[str, Any] = {
    "run_id": pl.Utf8, "context": pl.Utf8, "ts": pl.Datetime("ms", "UTC"), "bar": pl.Int64,
    "portfolio": pl.Int64, "strategy": pl.Utf8, "symbol": pl.Utf8, "kind": pl.Utf8, "decision": pl.Utf8,
    "reason": pl.Utf8,
}


def write_signal_decisions(con: duckdb.DuckDBPyConnection, rows: pl.DataFrame) -> int:
    """Append decision rows (``SIGNAL_DECISION_COLUMNS``) in one transaction; return rows written."""
    missing = [c for c in SIGNAL_DECISION_COLUMNS if c not in rows.columns]
    if missing:
        raise ValueError(f"signal decisions lack columns {missing}")
    if rows.height == 0:
        return 0
    df = rows.select([pl.col(c).cast(t) for c, t in SIGNAL_DECISION_COLUMNS.items()])
    return insert_new_rows(con, "backtest.signal_decisions", df, list(SIGNAL_DECISION_COLUMNS))


def read_signal_decisions(con: duckdb.DuckDBPyConnection, run_id: str | None = None) -> pl.DataFrame:
    """Decisions of one run (or all), in bar and portfolio order."""
    return con.sql(
        "SELECT * FROM backtest.signal_decisions WHERE ($run IS NULL OR run_id = $run) "
        "ORDER BY run_id, bar, portfolio, kind", params={"run": run_id}).pl()
