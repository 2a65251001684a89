"""Short-lived DuckDB connections with bounded, jittered retry on lock conflicts.

DuckDB allows one read-write process per file, and a reader blocks a writer, so nobody may hold a
connection for long: open, one transaction, close. A conflict is retried with jittered backoff
until a deadline, then reported as ``WarehouseBusy`` naming the file.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from ..errors import WarehouseBusy

log = logging.getLogger(__name__)


def _is_lock_conflict(e: Exception) -> bool:
    text = str(e).lower()
    return "lock" in text and ("conflicting" in text or "could not set" in text)


def _is_wal_replay_failure(e: Exception) -> bool:
    text = str(e).lower()
    return "wal" in text or "replay" in text or "write-ahead" in text


@contextlib.contextmanager
def connect(
    path: str | Path,
    *,
    read_only: bool = False,
    deadline_s: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
    attach_as: str | None = None,
    max_delay_s: float = 1.0,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open ``path`` for one unit of work; uncommitted work is rolled back when the block exits.

    ``attach_as`` opens it as a catalog of that name (``ATTACH ... AS name; USE name``): DuckDB
    names a file's catalog after the file, so ``paper.duckdb`` holding schema ``paper`` would make
    every ``paper.events`` ambiguous; attached under another name it is not. ``max_delay_s`` caps
    the backoff between attempts: a file whose writer lets others in for a moment between short
    transactions (the paper ledger) needs waiters that look often, or they starve."""
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    delay, start = 0.02, time.monotonic()
    wal_moved = False
    while True:
        try:
            con = _open(path, read_only, attach_as)
            break
        except duckdb.IOException as e:
            if not _is_lock_conflict(e):
                raise
            waited = time.monotonic() - start
            if waited > deadline_s:
                raise WarehouseBusy(
                    f"{path} stayed locked by another process for {waited:.0f}s; "
                    "is a Dagster run or another command writing it?"
                ) from e
            sleep(random.uniform(0, delay))
            delay = min(delay * 2, max_delay_s)
        except duckdb.Error as e:
            wal = path.with_name(path.name + ".wal")
            if read_only or wal_moved or not wal.exists() or not _is_wal_replay_failure(e):
                raise
            # A WAL that cannot be replayed makes the file unopenable. Keep it for forensics,
            # open the last checkpoint, and say so loudly; never delete it.
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            moved = wal.with_name(f"{wal.name}.unreplayable-{stamp}")
            wal.rename(moved)
            wal_moved = True
            log.warning("WAL replay of %s failed (%s); moved the WAL to %s and opened the last "
                        "checkpoint: re-run ingestion to restore the tail", path, e, moved)
    try:
        con.execute("SET TimeZone = 'UTC'")
        yield con
    finally:
        con.close()


def _open(path: Path, read_only: bool, attach_as: str | None) -> duckdb.DuckDBPyConnection:
    if attach_as is None:
        return duckdb.connect(str(path), read_only=read_only)
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH ? AS {attach_as}{' (READ_ONLY)' if read_only else ''}", [str(path)])
        con.execute(f"USE {attach_as}")
    except BaseException:
        con.close()
        raise
    return con


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN/COMMIT, rolling back on any exception (a batch lands whole or not at all).

    Re-entrant on one connection: an inner ``transaction`` joins the outer one, so writers that
    are each atomic alone (a run, its audit rows, its breaker history) compose into ONE
    transaction when a caller wraps them -- a failure anywhere rolls all of them back.
    """
    key = id(con)
    depth = _DEPTH.get(key, 0)
    if depth:
        _DEPTH[key] = depth + 1
        try:
            yield con
        finally:
            _DEPTH[key] = depth
        return
    con.execute("BEGIN TRANSACTION")
    _DEPTH[key] = 1
    try:
        yield con
    except BaseException:
        _DEPTH.pop(key, None)
        con.execute("ROLLBACK")
        raise
    _DEPTH.pop(key, None)
    con.execute("COMMIT")


_DEPTH: dict[int, int] = {}  # open transaction depth per live connection (id), see transaction()


def insert_new_rows(con: duckdb.DuckDBPyConnection, table: str, frame: object, columns: list[str],
                    select: list[str] | None = None) -> int:
    """Append ``frame`` to ``table`` in one transaction, skipping rows whose key already exists, and
    stamp ``recorded_at``; return how many rows were new. Replayed audit writes stay idempotent.

    ``table``, ``columns`` and ``select`` are identifiers/expressions from code, never from input.
    """
    view = f"_new_rows_{table.replace('.', '_')}"
    with transaction(con):
        before = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
        con.register(view, frame)
        try:
            con.execute(f"INSERT OR IGNORE INTO {table} ({', '.join(columns)}, recorded_at) "
                        f"SELECT {', '.join(select or columns)}, now() FROM {view}")
        finally:
            con.unregister(view)
        after = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    return int(after - before)
