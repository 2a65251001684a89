"""Pipeline health rows in the ``ops`` schema (DDL: migrations/0060_pipeline_health.sql).

``ops.pipeline_runs`` is upserted by run id (a run's status moves from STARTED to SUCCESS or
FAILURE between ticks, so the newer reading replaces the older) and ``ops.asset_checks`` by
(asset, check): only the latest evaluation of each check is kept. Each write is ONE transaction;
values are bound, table names come from this module.

The rows arrive as plain mappings (what ``trading_core.ops.pipeline_health`` validated), so the
warehouse depends on no Dagster type.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import duckdb
import polars as pl

from .connection import transaction

__all__ = ["HEALTH_TABLES", "read_asset_checks", "read_pipeline_runs", "upsert_pipeline_health"]

HEALTH_TABLES = ("ops.pipeline_runs", "ops.asset_checks")

_RUN_COLS = ("run_id", "job", "status", "created_at", "started_at", "ended_at", "duration_s", "partition_key",
             "session_id", "tags", "failed_step", "failure")
_CHECK_COLS = ("asset", "check_name", "status", "passed", "severity", "description", "evaluated_at", "run_id",
               "partition_key")


def upsert_pipeline_health(con: duckdb.DuckDBPyConnection, runs: Sequence[Mapping[str, Any]],
                           checks: Sequence[Mapping[str, Any]], seen_at: datetime) -> tuple[int, int]:
    """Insert or replace ``runs`` (by ``run_id``) and ``checks`` (by asset and check) in one
    transaction; return how many of each were written."""
    run_sql = (f"INSERT OR REPLACE INTO ops.pipeline_runs ({', '.join(_RUN_COLS)}, seen_at) "
               f"VALUES ({', '.join('?' for _ in _RUN_COLS)}, ?)")
    check_sql = (f"INSERT OR REPLACE INTO ops.asset_checks ({', '.join(_CHECK_COLS)}, seen_at) "
                 f"VALUES ({', '.join('?' for _ in _CHECK_COLS)}, ?)")
    with transaction(con):
        if runs:
            con.executemany(run_sql, [[json.dumps(dict(r["tags"]), sort_keys=True) if c == "tags" else r.get(c)
                                       for c in _RUN_COLS] + [seen_at] for r in runs])
        if checks:
            con.executemany(check_sql, [[c.get(k) for k in _CHECK_COLS] + [seen_at] for c in checks])
    return len(runs), len(checks)


def read_pipeline_runs(con: duckdb.DuckDBPyConnection, limit: int = 200) -> pl.DataFrame:
    """Stored runs, newest first (tags as JSON text)."""
    return con.sql(f"SELECT {', '.join(c if c != 'tags' else 'tags::VARCHAR AS tags' for c in _RUN_COLS)}, seen_at "
                   "FROM ops.pipeline_runs ORDER BY coalesce(started_at, created_at) DESC NULLS LAST, run_id "
                   "LIMIT $n", params={"n": max(1, min(int(limit), 100_000))}).pl()


def read_asset_checks(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """The latest evaluation of every stored check, failing first."""
    return con.sql(f"SELECT {', '.join(_CHECK_COLS)}, seen_at FROM ops.asset_checks "
                   "ORDER BY passed NULLS FIRST, asset, check_name").pl()
