"""The DuckDB warehouse: migrations, short-lived connections, typed reads and writes, snapshots.

``Warehouse`` opens a connection per operation (open, one transaction, close) so that no process
holds the file across a sleep or a network call.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl

from .bars import (
    HeldRows,
    ReportLike,
    SeriesRange,
    WriteResult,
    latest_batch,
    max_revision,
    quarantined_rows,
    read_bars,
    series_range,
    series_ranges,
    table_digest,
    write_report,
)
from .connection import connect, transaction
from .migrations import migrate
from .snapshots import publish_snapshot

__all__ = ["Warehouse", "WriteResult", "SeriesRange", "connect", "transaction"]


class Warehouse:
    """Typed access to one DuckDB file. Cheap to construct; holds no connection."""

    def __init__(self, path: str | Path, *, deadline_s: float = 30.0) -> None:
        self.path = Path(path)
        self.deadline_s = deadline_s

    @contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        with connect(self.path, read_only=read_only, deadline_s=self.deadline_s) as con:
            yield con

    def migrate(self) -> list[int]:
        """Create or upgrade the schema; safe to call at every start."""
        with self.connect() as con:
            return migrate(con)

    def write_report(self, *, venue: str, symbol: str, timeframe: str, source: str,
                     report: ReportLike, batch_id: str | None = None) -> WriteResult:
        with self.connect() as con:
            result = write_report(con, venue=venue, symbol=symbol, timeframe=timeframe,
                                  source=source, report=report, batch_id=batch_id)
            con.execute("CHECKPOINT")
            return result

    def read_bars(self, venue: str, symbol: str, timeframe: str,
                  start: datetime | None = None, end: datetime | None = None) -> pl.DataFrame:
        with self.connect(read_only=self.path.exists()) as con:
            return read_bars(con, venue, symbol, timeframe, start, end)

    def max_revision(self, venue: str, symbols: list[str], timeframe: str,
                     start: datetime | None = None, end: datetime | None = None) -> int:
        with self.connect(read_only=True) as con:
            return max_revision(con, venue, symbols, timeframe, start, end)

    def latest_batch(self, venue: str, symbol: str, timeframe: str) -> dict | None:
        with self.connect(read_only=True) as con:
            return latest_batch(con, venue, symbol, timeframe)

    def quarantined_rows(self, venue: str, symbols: list[str], timeframe: str, start: datetime | None = None,
                         end: datetime | None = None) -> dict[str, HeldRows]:
        with self.connect(read_only=True) as con:
            return quarantined_rows(con, venue, symbols, timeframe, start, end)

    def series_range(self, venue: str, symbol: str, timeframe: str) -> SeriesRange | None:
        with self.connect(read_only=True) as con:
            return series_range(con, venue, symbol, timeframe)

    def series(self) -> list[SeriesRange]:
        with self.connect(read_only=True) as con:
            return series_ranges(con)

    def is_empty(self) -> bool:
        if not self.path.exists():
            return True
        with self.connect(read_only=True) as con:
            tables = con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema='market' "
                "AND table_name='bars'").fetchall()[0][0]
            if not tables:
                return True
            return con.execute("SELECT count(*) FROM market.bars").fetchall()[0][0] == 0

    def digest(self, table: str = "market.bars") -> str:
        with self.connect(read_only=True) as con:
            return table_digest(con, table)

    def query(self, sql: str, params: list | dict | None = None) -> pl.DataFrame:
        """Read-only query for reports and tests; values must be bound through ``params``."""
        with self.connect(read_only=True) as con:
            return con.sql(sql, params=params).pl()

    def publish(self, dest: Path, tables: list[str]) -> Path:
        with self.connect() as con:
            return publish_snapshot(con, dest, tables)
