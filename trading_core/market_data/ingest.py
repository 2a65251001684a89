"""Ingestion: fetch only the missing range, validate every batch, write it atomically.

The same path serves the CLI (files, sample data, live providers) and the Dagster assets, so a
batch is judged by one contract wherever it comes from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import polars as pl

from ..config import MarketDataConfig, UniverseConfig, ValidationConfig
from ..symbols import check_symbol, check_venue
from ..timeframes import timeframe_ms
from ..warehouse import Warehouse

if TYPE_CHECKING:
    from .validation import ValidationReport

# Issue actions that mean the batch did not land as offered: the blocking asset check fails.
_BLOCKING_ACTIONS = {"reject_batch", "quarantine"}

Calendar = Literal["crypto", "equity"]


class OhlcvSource(Protocol):
    name: str

    def fetch_ohlcv(self, venue: str, symbol: str, timeframe: str, start: datetime,
                    end: datetime) -> pl.DataFrame: ...


@dataclass(frozen=True)
class IngestResult:
    """What happened to one batch, in numbers a user (and an asset check) can act on."""

    venue: str
    symbol: str
    timeframe: str
    source: str
    batch_id: str | None
    rows_read: int
    inserted: int = 0
    revised: int = 0
    unchanged: int = 0
    dropped: int = 0
    quarantined: int = 0
    repaired: int = 0
    batch_rejected: bool = False
    reject_reason: str | None = None
    rule_counts: dict[str, int] = field(default_factory=dict)
    rule_actions: dict[str, str] = field(default_factory=dict)
    fetched_ranges: tuple[tuple[datetime, datetime], ...] = ()

    @property
    def blocking_failures(self) -> list[str]:
        """Rule codes whose action means data was refused (rejected batch or quarantined rows)."""
        return sorted(r for r, a in self.rule_actions.items() if a in _BLOCKING_ACTIONS)

    @property
    def ok(self) -> bool:
        return not self.batch_rejected and not self.blocking_failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "venue": self.venue, "symbol": self.symbol, "timeframe": self.timeframe,
            "source": self.source, "batch_id": self.batch_id, "rows_read": self.rows_read,
            "written": self.inserted, "revised": self.revised, "unchanged": self.unchanged,
            "rejected": self.rows_read if self.batch_rejected else 0,
            "dropped": self.dropped, "quarantined": self.quarantined, "repaired": self.repaired,
            "batch_rejected": self.batch_rejected, "reject_reason": self.reject_reason,
            "rules": self.rule_counts, "rule_actions": self.rule_actions, "ok": self.ok,
            "fetched_ranges": [[s.isoformat(), e.isoformat()] for s, e in self.fetched_ranges],
        }


def calendar_of(asset_class: str) -> Calendar:
    return "equity" if asset_class == "equity" else "crypto"


def validate(raw: pl.DataFrame, *, timeframe: str, now: datetime, validation: ValidationConfig,
             calendar: Calendar) -> ValidationReport:
    from .validation import validate_bars

    return validate_bars(raw, timeframe=timeframe, now=now, config=validation, calendar=calendar)


def ingest_frame(
    warehouse: Warehouse,
    raw: pl.DataFrame,
    *,
    venue: str,
    symbol: str,
    timeframe: str,
    source: str,
    now: datetime | None = None,
    validation: ValidationConfig | None = None,
    calendar: Calendar = "crypto",
    write_rejected: bool = True,
    fetched_ranges: Sequence[tuple[datetime, datetime]] = (),
) -> IngestResult:
    """Validate ``raw`` and write it as one batch. A rejected batch changes no bars; it is recorded
    (with its issues) unless ``write_rejected`` is False, in which case the warehouse is untouched."""
    check_venue(venue)
    check_symbol(symbol)
    timeframe_ms(timeframe)
    now = now or datetime.now(UTC)
    report = validate(raw, timeframe=timeframe, now=now, validation=validation or ValidationConfig(),
                      calendar=calendar)
    return record_report(warehouse, report, venue=venue, symbol=symbol, timeframe=timeframe, source=source,
                         write_rejected=write_rejected, fetched_ranges=fetched_ranges)


def ingest_file(
    warehouse: Warehouse,
    path: str | Path,
    *,
    venue: str,
    symbol: str,
    timeframe: str,
    now: datetime | None = None,
    validation: ValidationConfig | None = None,
    calendar: Calendar = "crypto",
    batch_rows: int | None = None,
) -> IngestResult:
    """Validate a bar file and write it as ONE batch; a rejected file leaves the warehouse as it was.

    CSV and Parquet are read ``batch_rows`` rows at a time (``normalize.BarFileBatches``), so the
    file's text is never held whole: memory grows with the typed rows the series rules need, not
    with the text. The report is the one ``ingest_frame`` would give for the file read whole; a
    file the batched reader cannot read (ragged rows, odd quoting) is read whole instead."""
    from .normalize import BAR_BATCH_ROWS, StreamUnreadable, open_bar_batches, read_bar_file
    from .validation import validate_bar_batches

    check_venue(venue)
    check_symbol(symbol)
    timeframe_ms(timeframe)
    now = now or datetime.now(UTC)
    cfg = validation or ValidationConfig()
    batches = open_bar_batches(path, batch_rows=batch_rows or BAR_BATCH_ROWS)
    report: ValidationReport | None = None
    if batches is not None:
        try:
            report = validate_bar_batches(iter(batches), batches, timeframe=timeframe, now=now, config=cfg,
                                          calendar=calendar)
        except StreamUnreadable:
            report = None
    if report is None:
        report = validate(read_bar_file(path), timeframe=timeframe, now=now, validation=cfg, calendar=calendar)
    return record_report(warehouse, report, venue=venue, symbol=symbol, timeframe=timeframe,
                         source=f"file:{Path(path).name}", write_rejected=False)


def record_report(
    warehouse: Warehouse,
    report: ValidationReport,
    *,
    venue: str,
    symbol: str,
    timeframe: str,
    source: str,
    write_rejected: bool = True,
    fetched_ranges: Sequence[tuple[datetime, datetime]] = (),
) -> IngestResult:
    """Write a validated batch in one transaction (or, rejected, record it unless ``write_rejected``
    is False) and say what happened."""
    counts = report.rule_counts()
    actions = {i.rule: str(getattr(i.action, "value", i.action)) for i in report.issues}
    if report.batch_rejected and not write_rejected:
        return IngestResult(venue, symbol, timeframe, source, None, report.rows_in,
                            batch_rejected=True, reject_reason=report.reject_reason,
                            rule_counts=counts, rule_actions=actions,
                            fetched_ranges=tuple(fetched_ranges))
    w = warehouse.write_report(venue=venue, symbol=symbol, timeframe=timeframe, source=source,
                               report=report)
    return IngestResult(
        venue, symbol, timeframe, source, w.batch_id, report.rows_in, w.inserted, w.revised,
        w.unchanged, w.dropped, w.quarantined, w.repaired, report.batch_rejected,
        report.reject_reason, counts, actions, tuple(fetched_ranges),
    )


def missing_ranges(
    stored: tuple[datetime, datetime] | None, start: datetime, end: datetime, timeframe: str
) -> list[tuple[datetime, datetime]]:
    """Parts of [start, end) outside the stored [first, last] span: what is worth fetching."""
    if start >= end:
        return []
    if stored is None:
        return [(start, end)]
    first, last = stored
    step = timedelta(milliseconds=timeframe_ms(timeframe))
    out: list[tuple[datetime, datetime]] = []
    if start < first:
        out.append((start, min(first, end)))
    after = last + step
    if end > after:
        out.append((max(start, after), end))
    return out


def ingest_series(
    warehouse: Warehouse,
    provider: OhlcvSource,
    *,
    venue: str,
    symbol: str,
    timeframe: str,
    start: datetime,
    end: datetime,
    now: datetime | None = None,
    validation: ValidationConfig | None = None,
    calendar: Calendar = "crypto",
    refresh: bool = False,
) -> IngestResult:
    """Fetch the part of [start, end) not yet stored (all of it with ``refresh``), validate, write."""
    now = now or datetime.now(UTC)
    end = min(end, now)
    stored = None if refresh else warehouse.series_range(venue, symbol, timeframe)
    ranges = missing_ranges((stored.first_ts, stored.last_ts) if stored else None, start, end,
                            timeframe)
    if not ranges:
        return IngestResult(venue, symbol, timeframe, getattr(provider, "name", "?"), None, 0)
    frames = [provider.fetch_ohlcv(venue, symbol, timeframe, s, e) for s, e in ranges]
    raw = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
    source = str(getattr(provider, "last_source", None) or getattr(provider, "name", "?"))
    if raw.height == 0:
        return IngestResult(venue, symbol, timeframe, source, None, 0, fetched_ranges=tuple(ranges))
    return ingest_frame(warehouse, raw, venue=venue, symbol=symbol, timeframe=timeframe,
                        source=source, now=now, validation=validation, calendar=calendar,
                        fetched_ranges=ranges)


def ingest_universe(
    warehouse: Warehouse,
    universe: UniverseConfig,
    md: MarketDataConfig,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    now: datetime | None = None,
    provider: OhlcvSource | None = None,
    refresh: bool = False,
) -> list[IngestResult]:
    """Ingest every symbol of a configured universe over [start, end) (default: universe.start..now)."""
    from .providers import build_provider

    now = now or datetime.now(UTC)
    provider = provider or build_provider(universe, md, now=now)
    start = start or datetime.combine(universe.start, datetime.min.time(), tzinfo=UTC)
    end = end or now
    return [
        ingest_series(warehouse, provider, venue=universe.venue, symbol=s,
                      timeframe=universe.timeframe, start=start, end=end, now=now,
                      validation=md.validation, calendar=calendar_of(universe.asset_class),
                      refresh=refresh)
        for s in universe.symbols
    ]
