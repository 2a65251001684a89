"""Partitions and names of the ingest assets, derived from the configuration at load time.

Names come from ``market_data.universes[].name`` (validated as ``[a-z][a-z0-9_]*``), never from
data, so the asset graph is fixed by the config file.

Partition size follows the bar size, so that a universe has hundreds of partitions, not
thousands: Dagster writes a "planned" and a "materialised" event per partition to its SQLite event
log (~60 + ~25 ms each on a busy 2-core machine), which is what kept the UI grey for half an hour.

* intraday bars (1h, 4h ...): one UTC day per partition (24 hourly bars; hourly partitions over
  20 years would be ~175k, above Dagster's ~100k per-asset limit); equities skip weekends;
* daily bars: one UTC month per partition (~21 bars), the current month included while it runs
  (``end_offset=1``), so the daily schedule can refresh it.

Offline (``market_data.mode: offline``) the sample provider knows what it holds, so the partitions
span exactly the sample history of the universe's series (``sample.COVERAGE``): days the sample
cannot serve are not partitions at all, and the UI counts no "missing" partition that no run could
ever fill. Live, partitions run from ``universe.start`` up to now.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Literal

import dagster as dg

from trading_core.config import UniverseConfig, load_config
from trading_core.market_data.providers.sample import coverage
from trading_core.timeframes import timeframe_ms

# Saturdays and Sundays carry no equity bars; market holidays are not excluded here (they differ
# per exchange and year) and simply ingest 0 rows with a note.
WEEKEND_EXCLUSIONS: tuple[str, ...] = ("0 0 * * 6,0",)
DAY_MS = 86_400_000

PartitionUnit = Literal["day", "month"]


def configured_universes() -> list[UniverseConfig]:
    """The universes of ``$TRADING_CONFIG`` (or config/trading.yaml), read when definitions load."""
    return list(load_config().market_data.universes)


def configured_mode() -> str:
    """``market_data.mode`` of the configuration the definitions were loaded from."""
    return load_config().market_data.mode


def asset_name(universe: UniverseConfig) -> str:
    return f"{universe.name}_bars"


def job_name(universe: UniverseConfig) -> str:
    return f"{universe.name}_ingest_job"


def partition_unit(universe: UniverseConfig) -> PartitionUnit:
    """``month`` for daily (or longer) bars, ``day`` for intraday bars."""
    return "month" if timeframe_ms(universe.timeframe) >= DAY_MS else "day"


def offline_span(universe: UniverseConfig) -> tuple[datetime, datetime] | None:
    """First and last bar the sample serves for any of the universe's symbols (None: none)."""
    spans = [c for s in universe.symbols if (c := coverage(universe.venue, s, universe.timeframe))]
    if not spans:
        return None
    return min(a for a, _ in spans), max(b for _, b in spans)


def _month(d: date) -> date:
    return d.replace(day=1)


def _next_month(d: date) -> date:
    return (d.replace(day=28) + timedelta(days=4)).replace(day=1)


def partition_bounds(universe: UniverseConfig, mode: str) -> tuple[date, date | None]:
    """``[start, end)`` of the partition set in days (end None: up to now).

    Offline it is cut to the sample history (``offline_span``); a universe the sample does not
    serve at all keeps the live bounds, and its runs fail saying what the sample holds.
    """
    start, end = universe.start, None
    span = offline_span(universe) if mode == "offline" else None
    if span is not None:
        start = max(start, span[0].date())
        end = span[1].date() + timedelta(days=1)
    if partition_unit(universe) == "month":
        return _month(start), (_next_month(end - timedelta(days=1)) if end else None)
    return start, end


def partitions_for(universe: UniverseConfig, mode: str | None = None) -> dg.TimeWindowPartitionsDefinition:
    """The universe's partitions (see the module docstring); ``mode`` None: the configured one."""
    start, end = partition_bounds(universe, mode or configured_mode())
    if partition_unit(universe) == "month":
        return dg.MonthlyPartitionsDefinition(
            start_date=start.isoformat(), end_date=end.isoformat() if end else None,
            timezone="UTC", end_offset=1)
    return dg.DailyPartitionsDefinition(
        start_date=start.isoformat(), end_date=end.isoformat() if end else None, timezone="UTC",
        exclusions=list(WEEKEND_EXCLUSIONS) if universe.asset_class == "equity" else None,
    )


def partition_key_of_day(universe: UniverseConfig, day: date) -> str:
    """The key of the partition holding the bars of UTC ``day``."""
    return (_month(day) if partition_unit(universe) == "month" else day).isoformat()


def universe_start(universe: UniverseConfig) -> datetime:
    return datetime.combine(universe.start, datetime.min.time(), tzinfo=UTC)


def utc(dt: datetime) -> datetime:
    """A plain ``datetime`` in UTC (Dagster hands out tz-aware datetimes of its own flavour)."""
    return datetime.fromtimestamp(dt.timestamp(), tz=UTC)


def freshness_tolerance(universe: UniverseConfig) -> timedelta:
    """How old the last stored bar may be before the series counts as stale.

    Three bars for 24/7 crypto; for equities at least four days, which covers a weekend plus a
    holiday (an hourly equity series is also idle every night).
    """
    bar = timedelta(milliseconds=timeframe_ms(universe.timeframe))
    return max(3 * bar, timedelta(days=4)) if universe.asset_class == "equity" else 3 * bar
