"""Bars in and out of ``market.bars``: idempotent, revision-keeping, all-or-nothing batch writes.

A batch is written in ONE transaction together with its quality issues, quarantined rows and its
``ingest_batches`` record, so a crash leaves the store exactly as before or after the batch.
Identical rows are no-ops; a restated bar moves its old value to ``market.bar_revisions`` and
bumps ``revision``. Symbols and venues are bound values, never identifiers.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import duckdb
import polars as pl

from ..market_data.schema import OHLCV_COLUMNS, OHLCV_SCHEMA
from ..symbols import check_symbol, check_venue
from ..timeframes import timeframe_ms
from .connection import transaction

_VALUE_COLS = ("open", "high", "low", "close", "volume")
_DISTINCT = " OR ".join(f"b.{c} IS DISTINCT FROM i.{c}" for c in _VALUE_COLS)
_KEY = "b.venue = $venue AND b.symbol = $symbol AND b.timeframe = $timeframe AND b.ts = i.ts"


class IssueLike(Protocol):
    @property
    def rule(self) -> str: ...
    @property
    def action(self) -> Any: ...
    @property
    def count(self) -> int: ...
    @property
    def first_ts(self) -> datetime | None: ...
    @property
    def last_ts(self) -> datetime | None: ...
    @property
    def detail(self) -> str: ...


class ReportLike(Protocol):
    """What the writer needs from a validation report (trading_core.market_data.validation)."""

    accepted: pl.DataFrame
    dropped: pl.DataFrame
    quarantined: pl.DataFrame
    @property
    def issues(self) -> Sequence[IssueLike]: ...

    batch_rejected: bool
    reject_reason: str | None
    rows_in: int


@dataclass(frozen=True)
class WriteResult:
    batch_id: str
    status: str
    inserted: int = 0
    revised: int = 0
    unchanged: int = 0
    dropped: int = 0
    quarantined: int = 0
    repaired: int = 0


def canonical(frame: pl.DataFrame) -> pl.DataFrame:
    """Select and cast the canonical OHLCV columns (ts as ms UTC)."""
    return frame.select(OHLCV_COLUMNS).cast(OHLCV_SCHEMA)  # type: ignore[arg-type]


def _action(a: Any) -> str:
    return str(getattr(a, "value", a))


def write_report(
    con: duckdb.DuckDBPyConnection,
    *,
    venue: str,
    symbol: str,
    timeframe: str,
    source: str,
    report: ReportLike,
    batch_id: str | None = None,
) -> WriteResult:
    """Write a validated batch (or record a rejected one) atomically; return what happened."""
    check_venue(venue)
    check_symbol(symbol)
    timeframe_ms(timeframe)
    batch_id = batch_id or uuid.uuid4().hex
    keys = {"venue": venue, "symbol": symbol, "timeframe": timeframe}
    repaired = sum(i.count for i in report.issues if _action(i.action) == "repair")
    accepted = canonical(report.accepted) if not report.batch_rejected else canonical(
        report.accepted.clear())
    if _has_duplicate_ts(accepted["ts"]):
        raise ValueError("accepted bars contain duplicate timestamps; the validator must dedupe")
    with transaction(con):
        inserted = revised = 0
        if accepted.height:
            con.register("incoming", accepted)
            if _series_exists(con, keys):
                inserted, revised = _merge(con, keys, batch_id)
            else:
                # First load of a series: nothing to compare against, stream straight in.
                inserted = _rows(con.execute(
                    "INSERT INTO market.bars SELECT $venue, $symbol, $timeframe, i.ts, i.open, "
                    "i.high, i.low, i.close, i.volume, 0, $batch FROM incoming i",
                    {**keys, "batch": batch_id}))
            con.unregister("incoming")
        unchanged = accepted.height - inserted - revised
        status = "rejected" if report.batch_rejected else "accepted"
        first = accepted["ts"].min() if accepted.height else None
        last = accepted["ts"].max() if accepted.height else None
        con.execute(
            "INSERT INTO market.ingest_batches VALUES ($batch, $venue, $symbol, $timeframe, $source, "
            "$status, $reason, $first, $last, $rows_in, $ins, $rev, $unch, $drop, $quar, $rep, now())",
            {**keys, "batch": batch_id, "source": source, "status": status,
             "reason": report.reject_reason, "first": first, "last": last,
             "rows_in": report.rows_in, "ins": inserted, "rev": revised, "unch": unchanged,
             "drop": report.dropped.height, "quar": report.quarantined.height, "rep": repaired},
        )
        if report.issues:
            con.executemany(
                "INSERT INTO market.quality_issues VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now())",
                [[batch_id, venue, symbol, timeframe, i.rule, _action(i.action), i.count,
                  i.first_ts, i.last_ts, i.detail] for i in report.issues],
            )
        if report.quarantined.height:
            con.register("q", _quarantine_frame(report.quarantined))
            con.execute(
                "INSERT INTO market.quarantine SELECT $batch, $venue, $symbol, $timeframe, row_id, rule, "
                "detail, ts, open, high, low, close, volume, raw, now() FROM q",
                {**keys, "batch": batch_id},
            )
            con.unregister("q")
    return WriteResult(batch_id, status, inserted, revised, unchanged, report.dropped.height,
                       report.quarantined.height, repaired)


def _has_duplicate_ts(ts: pl.Series) -> bool:
    """Validated batches are strictly increasing, which proves uniqueness in one cheap pass; only
    unsorted input pays for hashing."""
    if ts.len() < 2:
        return False
    steps = ts.dt.epoch("ms").diff().drop_nulls()
    if steps.min() > 0:  # type: ignore[operator]
        return False
    return bool(ts.is_duplicated().any())


def _series_exists(con: duckdb.DuckDBPyConnection, keys: dict[str, str]) -> bool:
    return bool(con.execute(
        "SELECT 1 FROM market.bars WHERE venue = $venue AND symbol = $symbol AND "
        "timeframe = $timeframe LIMIT 1", keys).fetchall())


def _merge(con: duckdb.DuckDBPyConnection, keys: dict[str, str], batch_id: str) -> tuple[int, int]:
    """Insert new bars and revise restated ones of an existing series; return the counts."""
    con.execute("CREATE OR REPLACE TEMP TABLE _incoming AS SELECT * FROM incoming")
    params = {**keys, "batch": batch_id}
    revised = _count(con, f"SELECT count(*) FROM market.bars b JOIN _incoming i ON {_KEY} WHERE {_DISTINCT}", keys)
    if revised:
        con.execute(
            "INSERT INTO market.bar_revisions SELECT b.*, $batch FROM market.bars b "
            f"JOIN _incoming i ON {_KEY} WHERE {_DISTINCT}", params)
        sets = ", ".join(f"{c} = i.{c}" for c in _VALUE_COLS)
        con.execute(
            f"UPDATE market.bars b SET {sets}, revision = b.revision + 1, batch_id = $batch "
            f"FROM _incoming i WHERE {_KEY} AND ({_DISTINCT})", params)
    inserted = _rows(con.execute(
        "INSERT INTO market.bars SELECT $venue, $symbol, $timeframe, i.ts, i.open, i.high, "
        "i.low, i.close, i.volume, 0, $batch FROM _incoming i WHERE NOT EXISTS "
        f"(SELECT 1 FROM market.bars b WHERE {_KEY})", params))
    con.execute("DROP TABLE _incoming")
    return inserted, revised


def _rows(result: duckdb.DuckDBPyConnection) -> int:
    """Row count DuckDB reports for an INSERT/UPDATE."""
    return int(result.fetchall()[0][0])


def _quarantine_frame(q: pl.DataFrame) -> pl.DataFrame:
    cols: list[pl.Expr] = [
        pl.col("row_id").cast(pl.Int64) if "row_id" in q.columns else pl.lit(None, pl.Int64).alias("row_id"),
        pl.col("rule").cast(pl.Utf8),
        pl.col("detail").cast(pl.Utf8) if "detail" in q.columns else pl.lit("", pl.Utf8).alias("detail"),
    ]
    for c, dtype in OHLCV_SCHEMA.items():
        cols.append(pl.col(c).cast(dtype, strict=False) if c in q.columns else pl.lit(None, dtype).alias(c))
    cols.append(pl.col("raw").cast(pl.Utf8) if "raw" in q.columns else pl.lit(None, pl.Utf8).alias("raw"))
    return q.select(cols)


def _count(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> int:
    row = con.execute(sql, params).fetchall()
    return int(row[0][0])


def read_bars(
    con: duckdb.DuckDBPyConnection,
    venue: str,
    symbol: str,
    timeframe: str,
    start: datetime | None = None,
    end: datetime | None = None,
) -> pl.DataFrame:
    """Bars with open time in [start, end), sorted, in the canonical schema."""
    check_venue(venue)
    check_symbol(symbol)
    timeframe_ms(timeframe)
    frame = con.sql(
        "SELECT ts, open, high, low, close, volume FROM market.bars WHERE venue = $venue AND "
        "symbol = $symbol AND timeframe = $timeframe AND ($start IS NULL OR ts >= $start) AND "
        "($end IS NULL OR ts < $end) ORDER BY ts",
        params={"venue": venue, "symbol": symbol, "timeframe": timeframe, "start": start, "end": end},
    ).pl()
    return frame.with_columns(pl.col("ts").dt.convert_time_zone("UTC")).cast(OHLCV_SCHEMA)  # type: ignore[arg-type]


def max_revision(con: duckdb.DuckDBPyConnection, venue: str, symbols: list[str], timeframe: str,
                 start: datetime | None, end: datetime | None) -> int:
    """The highest bar revision of the symbols in [start, end) (0: never restated)."""
    row = con.execute(
        "SELECT coalesce(max(revision), 0) FROM market.bars WHERE venue = $venue AND timeframe = $tf "
        "AND list_contains($symbols, symbol) AND ($start IS NULL OR ts >= $start) AND ($end IS NULL OR ts < $end)",
        {"venue": venue, "tf": timeframe, "symbols": list(symbols), "start": start, "end": end}).fetchone()
    return int(row[0]) if row else 0


def latest_batch(con: duckdb.DuckDBPyConnection, venue: str, symbol: str, timeframe: str) -> dict[str, Any] | None:
    """The series' most recent ingest batch (status, reason, quarantined rows), None if never ingested."""
    cur = con.execute(
        "SELECT batch_id, status, reason, rows_quarantined, received_at FROM market.ingest_batches "
        "WHERE venue = ? AND symbol = ? AND timeframe = ? ORDER BY received_at DESC LIMIT 1",
        [venue, symbol, timeframe])
    row = cur.fetchone()
    return dict(zip([d[0] for d in cur.description], row, strict=True)) if row is not None else None


@dataclass(frozen=True)
class HeldRows:
    """Rows of one series held in ``market.quarantine`` (whoever loaded them): count by rule and
    the open times of the first and last one."""

    symbol: str
    rows: int
    rules: dict[str, int]
    first_ts: datetime | None
    last_ts: datetime | None


def quarantined_rows(con: duckdb.DuckDBPyConnection, venue: str, symbols: Sequence[str], timeframe: str,
                     start: datetime | None = None, end: datetime | None = None) -> dict[str, HeldRows]:
    """Quarantined rows of ``symbols`` with open time in [start, end), by symbol (absent: none).

    What the stored data of a window lacks because validation held it out, independent of which
    batch (CLI, Dagster run) put it there.
    """
    check_venue(venue)
    for s in symbols:
        check_symbol(s)
    rows = con.execute(
        "SELECT symbol, rule, count(*), min(ts), max(ts) FROM market.quarantine WHERE venue = $venue "
        "AND timeframe = $tf AND list_contains($symbols, symbol) AND ($start IS NULL OR ts >= $start) "
        "AND ($end IS NULL OR ts < $end) GROUP BY ALL ORDER BY ALL",
        {"venue": venue, "tf": timeframe, "symbols": list(symbols), "start": start, "end": end}).fetchall()
    out: dict[str, HeldRows] = {}
    for symbol, rule, n, first, last in rows:
        h = out.get(symbol)
        rules = {**(h.rules if h else {}), str(rule): int(n)}
        firsts = [t for t in (h.first_ts if h else None, first) if t is not None]
        lasts = [t for t in (h.last_ts if h else None, last) if t is not None]
        out[symbol] = HeldRows(symbol, (h.rows if h else 0) + int(n), rules,
                               min(firsts) if firsts else None, max(lasts) if lasts else None)
    return out


@dataclass(frozen=True)
class SeriesRange:
    venue: str
    symbol: str
    timeframe: str
    first_ts: datetime
    last_ts: datetime
    bars: int


def series_ranges(con: duckdb.DuckDBPyConnection) -> list[SeriesRange]:
    """Every stored series with its first/last open time and bar count."""
    return [SeriesRange(*r) for r in con.execute(_RANGE_SQL.format(where="")).fetchall()]


# Bars are only ever added through write_report, which records each batch's accepted span, so the
# stored range is answered from batch metadata instead of scanning market.bars.
_RANGE_SQL = (
    "SELECT venue, symbol, timeframe, min(first_ts), max(last_ts), sum(rows_inserted)::BIGINT "
    "FROM market.ingest_batches WHERE status = 'accepted' AND first_ts IS NOT NULL {where} "
    "GROUP BY ALL ORDER BY ALL"
)


def series_range(
    con: duckdb.DuckDBPyConnection, venue: str, symbol: str, timeframe: str
) -> SeriesRange | None:
    """The stored range of one series, or None; the ingest layer fetches only what is missing."""
    rows = con.execute(
        _RANGE_SQL.format(where="AND venue = ? AND symbol = ? AND timeframe = ?"),
        [venue, symbol, timeframe],
    ).fetchall()
    return SeriesRange(*rows[0]) if rows else None


def table_digest(con: duckdb.DuckDBPyConnection, table: str = "market.bars") -> str:
    """Order-independent content digest of a table (tests compare pre/post-batch states)."""
    if table not in {"market.bars", "market.bar_revisions", "market.quarantine", "market.quality_issues"}:
        raise ValueError(f"no digest for table {table}")
    row = con.execute(f"SELECT count(*), coalesce(bit_xor(hash(t)), 0) FROM {table} t").fetchall()
    return json.dumps([int(row[0][0]), int(row[0][1])])
