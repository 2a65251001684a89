"""The paper ledger's file (``data/paper.duckdb``): its SQL, in one place.

Written only by the paper job. One transaction commits a group of bars whole -- their events,
equity rows, outbox messages, the checkpoint, the lease heartbeat and (every N bars) a Trader
snapshot -- after checking the lease generation, so a run that lost its lease writes nothing
(``LeaseLost``). ``event_id`` is the only key idempotency needs; a replayed bar adds no row.
Readers (status, export, the app) open it read-only for one query with the same lock retry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from ..errors import TradingError
from .connection import connect, transaction
from .migrations import migrate

__all__ = ["BarCommit", "Checkpoint", "LeaseHeld", "LeaseLost", "PaperLedger", "Snapshot", "CRASH_POINTS",
           "LEDGER_COLUMNS"]

# Named points of a commit where the crash tests kill the process (T1).
CRASH_POINTS = ("before_tx", "after_event_insert", "after_outbox_insert", "mid_snapshot_write",
                "after_checkpoint_write", "after_commit")
# The columns the ledger hash covers: everything but provenance (which generation wrote a row,
# whether it was caught up after downtime) -- those differ between an interrupted run and the
# reference by design, the events themselves must not.
LEDGER_COLUMNS = ("event_id", "session_id", "seq", "bar_index", "bar_ts", "kind", "account", "symbol", "reason",
                  "payload", "bars_revision")
_ALIAS = "ledger"


class LeaseLost(TradingError):
    """Another run took the session over (a higher lease generation): this run must stop writing."""


class LeaseHeld(TradingError):
    """The session's lease is held by a run whose heartbeat is fresh: refusing to run it twice."""


@dataclass(frozen=True)
class Checkpoint:
    session_id: str
    bar_index: int
    last_bar_ts: int
    ledger_seq: int
    bars_revision: int
    generation: int
    state: str


@dataclass(frozen=True)
class Snapshot:
    bar_index: int
    last_bar_ts: int
    ledger_seq: int
    state: bytes


@dataclass
class BarCommit:
    """What one bar adds to the ledger (rows already in table column order)."""

    bar_index: int
    bar_ts: int
    ledger_seq: int  # the last event seq after this bar
    events: list[tuple[Any, ...]] = field(default_factory=list)
    equity: list[tuple[Any, ...]] = field(default_factory=list)
    outbox: list[tuple[Any, ...]] = field(default_factory=list)
    snapshot: bytes | None = None


def _noop(point: str) -> None:
    return None


class PaperLedger:
    """Typed access to the ledger file. Cheap to construct; holds no connection itself."""

    def __init__(self, path: str | Path, *, deadline_s: float = 30.0) -> None:
        self.path = Path(path)
        self.deadline_s = deadline_s

    @contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        # the paper job lets others in for ~100 ms every second: look often enough to get in
        with connect(self.path, read_only=read_only, deadline_s=self.deadline_s, attach_as=_ALIAS,
                     max_delay_s=0.03) as con:
            yield con

    def migrate(self) -> list[int]:
        with self.connect() as con:
            return migrate(con, "paper_migrations")

    # ---- writes (the paper job) -----------------------------------------------------------------
    @staticmethod
    def record_session(con: duckdb.DuckDBPyConnection, row: dict[str, Any]) -> None:
        """The session's identity, once (a resumed run finds it and leaves it as it is)."""
        con.execute(
            "INSERT INTO paper.sessions VALUES ($session_id, $name, $config_json, $config_hash, $code_version, "
            "$execution_model_hash, $bar_source, $bars_revision, $seed, $model_pin, $activated_at, now()) "
            "ON CONFLICT DO NOTHING", row)

    @staticmethod
    def take_lease(con: duckdb.DuckDBPyConnection, session_id: str, run_id: str, *, stale_after_s: float,
                   now: datetime | None = None) -> int:
        """Take the session for ``run_id``: the next generation. Refused (``LeaseHeld``) while
        another run's heartbeat is younger than ``stale_after_s``; the same run taking it again
        (a retried step) is a takeover like any other, so an old copy of it is fenced too."""
        now = now or datetime.now(UTC)
        with transaction(con):
            row = _one(con, "SELECT owner_run_id, generation, heartbeat_at FROM paper.session_lease "
                              "WHERE session_id = ?", [session_id])
            gen = 1
            if row is not None:
                owner, gen0, beat = row
                age = (now - beat).total_seconds()
                if owner != run_id and age < stale_after_s:
                    raise LeaseHeld(f"session {session_id} is run by {owner} (generation {gen0}, heartbeat "
                                    f"{age:.0f}s ago, stale after {stale_after_s:.0f}s)")
                gen = int(gen0) + 1
            con.execute("INSERT OR REPLACE INTO paper.session_lease VALUES (?, ?, ?, ?, ?)",
                        [session_id, run_id, gen, now, now])
        return gen

    @staticmethod
    def release_lease(con: duckdb.DuckDBPyConnection, session_id: str, generation: int) -> None:
        """Mark the heartbeat stale at once (a clean exit), only if this run still owns the lease."""
        con.execute("UPDATE paper.session_lease SET heartbeat_at = TIMESTAMPTZ '1970-01-01 00:00:00+00' "
                    "WHERE session_id = ? AND generation = ?", [session_id, generation])

    @staticmethod
    def drop_lease(con: duckdb.DuckDBPyConnection, session_id: str) -> None:
        """Forget the lease of a session that never activated (a cancelled or refused start)."""
        con.execute("DELETE FROM paper.session_lease WHERE session_id = ?", [session_id])

    @staticmethod
    def heartbeat(con: duckdb.DuckDBPyConnection, session_id: str, generation: int,
                  now: datetime | None = None) -> None:
        """An idle heartbeat (waiting for the next live bar): generation-checked like a commit."""
        with transaction(con):
            _check_generation(con, session_id, generation)
            con.execute("UPDATE paper.session_lease SET heartbeat_at = ? WHERE session_id = ?",
                        [now or datetime.now(UTC), session_id])

    @staticmethod
    def commit(con: duckdb.DuckDBPyConnection, session_id: str, generation: int, bars: Sequence[BarCommit], *,
               bars_revision: int, state: str = "running", now: datetime | None = None,
               crash: Callable[[str], None] = _noop, keep_snapshots: int | None = None) -> None:
        """One transaction for ``bars``: generation check, events, outbox, equity, snapshot,
        checkpoint, heartbeat, COMMIT. ``crash`` is called at each of ``CRASH_POINTS``."""
        if not bars:
            return
        crash("before_tx")
        with transaction(con):
            _check_generation(con, session_id, generation)
            events = [e for b in bars for e in b.events]
            _insert(con, "paper.events", _EVENT_SCHEMA, events)
            crash("after_event_insert")
            outbox = [m for b in bars for m in b.outbox]
            _insert(con, "paper.outbox", _OUTBOX_SCHEMA, outbox)
            crash("after_outbox_insert")
            equity = [r for b in bars for r in b.equity]
            _insert(con, "paper.equity", _EQUITY_SCHEMA, equity)
            for b in bars:
                if b.snapshot is not None:
                    crash("mid_snapshot_write")
                    con.execute("INSERT INTO paper.snapshots VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                                [session_id, b.bar_index, b.bar_ts, b.ledger_seq, b.snapshot,
                                 hashlib.sha256(b.snapshot).hexdigest()])
            if keep_snapshots is not None and any(b.snapshot is not None for b in bars):
                con.execute("DELETE FROM paper.snapshots WHERE session_id = $sid AND bar_index < (SELECT min(bar_index) "
                            "FROM (SELECT bar_index FROM paper.snapshots WHERE session_id = $sid ORDER BY bar_index "
                            "DESC LIMIT $keep))", {"sid": session_id, "keep": int(keep_snapshots)})
            last = bars[-1]
            con.execute("INSERT OR REPLACE INTO paper.checkpoint VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [session_id, last.bar_index, last.bar_ts, last.ledger_seq, bars_revision, generation, state])
            crash("after_checkpoint_write")
            con.execute("UPDATE paper.session_lease SET heartbeat_at = ? WHERE session_id = ?",
                        [now or datetime.now(UTC), session_id])
        crash("after_commit")

    @staticmethod
    def set_state(con: duckdb.DuckDBPyConnection, session_id: str, generation: int, state: str) -> None:
        """Change the checkpoint's state alone (paused, stopped, completed), generation-checked."""
        with transaction(con):
            _check_generation(con, session_id, generation)
            con.execute("UPDATE paper.checkpoint SET state = ? WHERE session_id = ?", [state, session_id])

    # ---- reads ----------------------------------------------------------------------------------
    @staticmethod
    def checkpoint(con: duckdb.DuckDBPyConnection, session_id: str) -> Checkpoint | None:
        row = _one(con, "SELECT * FROM paper.checkpoint WHERE session_id = ?", [session_id])
        return Checkpoint(*row) if row is not None else None

    @staticmethod
    def latest_snapshot(con: duckdb.DuckDBPyConnection, session_id: str, max_bar_index: int) -> Snapshot | None:
        """The newest snapshot at or before ``max_bar_index`` whose bytes match their sha256."""
        rows = con.execute("SELECT bar_index, last_bar_ts, ledger_seq, state, sha256 FROM paper.snapshots "
                           "WHERE session_id = ? AND bar_index <= ? ORDER BY bar_index DESC",
                           [session_id, max_bar_index]).fetchall()
        for bar_index, ts, seq, state, digest in rows:
            if hashlib.sha256(state).hexdigest() == digest:
                return Snapshot(int(bar_index), int(ts), int(seq), bytes(state))
        return None

    @staticmethod
    def event_ids_after(con: duckdb.DuckDBPyConnection, session_id: str, bar_index: int) -> list[str]:
        """The stored events of bars after ``bar_index`` (recovery re-derives them to check)."""
        return [r[0] for r in con.execute(
            "SELECT event_id FROM paper.events WHERE session_id = ? AND bar_index > ? ORDER BY seq",
            [session_id, bar_index]).fetchall()]

    @staticmethod
    def session_row(con: duckdb.DuckDBPyConnection, session_id: str) -> dict[str, Any] | None:
        cur = con.execute("SELECT * FROM paper.sessions WHERE session_id = ?", [session_id])
        rows = cur.fetchall()
        return dict(zip([d[0] for d in cur.description], rows[0], strict=True)) if rows else None

    @staticmethod
    def lease(con: duckdb.DuckDBPyConnection, session_id: str) -> tuple[str, int, datetime] | None:
        row = _one(con, "SELECT owner_run_id, generation, heartbeat_at FROM paper.session_lease "
                          "WHERE session_id = ?", [session_id])
        return (str(row[0]), int(row[1]), row[2]) if row is not None else None

    @staticmethod
    def events(con: duckdb.DuckDBPyConnection, session_id: str, kinds: Sequence[str] | None = None,
               limit: int | None = None) -> pl.DataFrame:
        """The session's events in ledger order (``kinds`` narrows them; ``limit``: the last N)."""
        sql = "SELECT * FROM paper.events WHERE session_id = $sid"
        params: dict[str, Any] = {"sid": session_id}
        if kinds:
            sql += " AND list_contains($kinds, kind)"
            params["kinds"] = list(kinds)
        if limit is not None:
            sql = f"SELECT * FROM ({sql} ORDER BY seq DESC LIMIT $limit)"
            params["limit"] = int(limit)
        return con.sql(sql + " ORDER BY seq", params=params).pl()

    @staticmethod
    def equity(con: duckdb.DuckDBPyConnection, session_id: str) -> pl.DataFrame:
        return con.sql("SELECT bar_index, bar_ts, account, equity, cash, gross FROM paper.equity "
                       "WHERE session_id = $sid ORDER BY bar_index, account", params={"sid": session_id}).pl()

    @staticmethod
    def ledger_hash(con: duckdb.DuckDBPyConnection, session_id: str) -> str:
        """sha256 of the session's events (``LEDGER_COLUMNS``, ordered by event id) as CSV-like text."""
        h = hashlib.sha256()
        cur = con.execute(f"SELECT {', '.join(LEDGER_COLUMNS)} FROM paper.events WHERE session_id = ? "
                          "ORDER BY event_id", [session_id])
        while batch := cur.fetchmany(10_000):
            for row in batch:
                h.update(("\x1f".join("" if v is None else str(v) for v in row) + "\n").encode())
        return h.hexdigest()

    @staticmethod
    def counts(con: duckdb.DuckDBPyConnection, session_id: str) -> dict[str, int]:
        """Rows and distinct ids of the session's events (a duplicate would show as rows > ids)."""
        rows, ids = _one(con, "SELECT count(*), count(DISTINCT event_id) FROM paper.events WHERE session_id = ?",
                                [session_id]) or (0, 0)
        fills = _one(con, "SELECT count(*) FROM paper.events WHERE session_id = ? AND kind = 'OrderFilled'",
                            [session_id])
        return {"rows": int(rows), "ids": int(ids), "fills": int(fills[0]) if fills else 0}

    @staticmethod
    def undelivered(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str, str, str]]:
        """(message_id, session_id, kind, severity, payload) not yet marked delivered, in id order."""
        return [tuple(r) for r in con.execute(  # type: ignore[misc]
            "SELECT o.message_id, o.session_id, o.kind, o.severity, o.payload FROM paper.outbox o "
            "ANTI JOIN paper.outbox_delivered d ON o.message_id = d.message_id ORDER BY o.message_id").fetchall()]

    @staticmethod
    def mark_delivered(con: duckdb.DuckDBPyConnection, message_ids: Sequence[str], channel: str) -> None:
        if message_ids:
            con.execute("INSERT INTO paper.outbox_delivered SELECT unnest($ids), $channel, now() "
                        "ON CONFLICT DO NOTHING", {"ids": list(message_ids), "channel": channel})


_EVENT_SCHEMA = {"event_id": pl.String, "session_id": pl.String, "seq": pl.Int64, "bar_index": pl.Int64,
                 "bar_ts": pl.Int64, "kind": pl.String, "account": pl.Int32, "symbol": pl.String, "reason": pl.String,
                 "payload": pl.String, "bars_revision": pl.Int32, "generation": pl.Int64, "reconstructed": pl.Boolean}
_EQUITY_SCHEMA = {"session_id": pl.String, "bar_index": pl.Int64, "bar_ts": pl.Int64, "account": pl.Int32,
                  "equity": pl.Float64, "cash": pl.Float64, "gross": pl.Float64}
_OUTBOX_SCHEMA = {"message_id": pl.String, "session_id": pl.String, "bar_ts": pl.Int64, "kind": pl.String,
                  "severity": pl.String, "payload": pl.String}


def _insert(con: duckdb.DuckDBPyConnection, table: str, schema: dict[str, Any], rows: list[tuple[Any, ...]]) -> None:
    """Append ``rows`` (skipping ids already stored) as ONE columnar insert: ``executemany`` costs
    about a millisecond per row in duckdb, a registered frame microseconds. ``table`` is from code."""
    if not rows:
        return
    frame = pl.DataFrame(rows, schema=schema, orient="row")
    view = f"_rows_{table.replace('.', '_')}"
    con.register(view, frame)
    try:
        con.execute(f"INSERT INTO {table} SELECT * FROM {view} ON CONFLICT DO NOTHING")
    finally:
        con.unregister(view)


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> Any:
    """The first row (or None), with the result fully consumed: duckdb refuses the next statement
    on a connection whose last result was left half-read."""
    rows = con.execute(sql, params).fetchall()
    return rows[0] if rows else None


def _check_generation(con: duckdb.DuckDBPyConnection, session_id: str, generation: int) -> None:
    row = _one(con, "SELECT generation, owner_run_id FROM paper.session_lease WHERE session_id = ?",
                      [session_id])
    if row is None or int(row[0]) != generation:
        raise LeaseLost(f"session {session_id}: this run holds generation {generation}, the lease is at "
                        f"{row[0] if row else 'none'} (run {row[1] if row else '-'}); stopping without writing")
