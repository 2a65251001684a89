"""Read snapshots for UIs and the CLI: written to a temporary file, then swapped in atomically.

Readers never open the live warehouse for long (a reader blocks the writer), so the writer
publishes copies of the tables they need into ``data/serving/``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import duckdb

# Tables a snapshot may contain: identifiers come from code, never from input.
PUBLISHABLE: frozenset[str] = frozenset({
    "market.bars", "market.ingest_batches", "market.quality_issues", "market.quarantine",
    "backtest.runs", "backtest.trades", "backtest.equity",
})


def publish_snapshot(con: duckdb.DuckDBPyConnection, dest: Path, tables: Sequence[str]) -> Path:
    """Copy ``tables`` into a new DuckDB file and rename it over ``dest`` (atomic on POSIX)."""
    unknown = set(tables) - PUBLISHABLE
    if unknown:
        raise ValueError(f"not publishable: {sorted(unknown)}")
    if dest.stem in {t.split(".")[0] for t in PUBLISHABLE}:
        # DuckDB names the catalog after the file: serving/market.duckdb would make every
        # "market.bars" reference ambiguous for readers.
        raise ValueError(f"snapshot file {dest.name} must not be named after a schema")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f"{dest.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    con.execute("ATTACH ? AS snap", [str(tmp)])
    try:
        for t in tables:
            schema, name = t.split(".")
            con.execute(f"CREATE SCHEMA IF NOT EXISTS snap.{schema}")
            con.execute(f"CREATE TABLE snap.{schema}.{name} AS SELECT * FROM {t}")
    finally:
        con.execute("DETACH snap")
    os.replace(tmp, dest)
    return dest


def open_snapshot(path: Path) -> duckdb.DuckDBPyConnection:
    """Read-only connection to a published snapshot with external access locked down."""
    return duckdb.connect(
        str(path), read_only=True,
        config={"enable_external_access": False, "lock_configuration": True},
    )
