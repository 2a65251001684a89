"""Versioned schema migrations: numbered SQL files applied once each, in order.

The warehouse package is the only place that writes DDL. Migrations run at start-up, never on a
hot path (DDL in a WAL is the usual cause of unreplayable WALs), and end with a CHECKPOINT.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import duckdb

from .connection import transaction

_NAME = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available_migrations(folder: str = "migrations") -> list[Migration]:
    """Every migration shipped in ``trading_core/warehouse/<folder>``, sorted by version
    (``migrations``: the warehouse; ``paper_migrations``: the paper ledger's own file)."""
    found: list[Migration] = []
    for f in resources.files(__package__).joinpath(folder).iterdir():
        m = _NAME.fullmatch(f.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), f.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a version number: {versions}")
    return found


def applied_versions(con: duckdb.DuckDBPyConnection) -> set[int]:
    con.execute("CREATE SCHEMA IF NOT EXISTS ops")
    con.execute(
        "CREATE TABLE IF NOT EXISTS ops.schema_migrations ("
        " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
    )
    return {int(r[0]) for r in con.execute("SELECT version FROM ops.schema_migrations").fetchall()}


def migrate(con: duckdb.DuckDBPyConnection, folder: str = "migrations") -> list[int]:
    """Apply pending migrations, each in its own transaction; return the versions applied."""
    done = applied_versions(con)
    applied: list[int] = []
    for m in available_migrations(folder):
        if m.version in done:
            continue
        with transaction(con):
            con.execute(m.sql)
            con.execute(
                "INSERT INTO ops.schema_migrations VALUES (?, ?, now())", [m.version, m.name]
            )
        applied.append(m.version)
    if applied:
        con.execute("CHECKPOINT")
    return applied
