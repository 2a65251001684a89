"""Partitions and names of the ingest assets, derived from the configuration at load time.

Names come from ``market_data.universes[].name`` (validated as ``[a-z][a-z0-9_]*``), never from
data, so the asset graph is fixed by the config file. Partitions are daily in UTC with the bars of
the universe's timeframe inside: hourly crypto bars for 20 years would be ~175k partitions, far
above Dagster's ~100k per-asset limit, while daily partitions stay at ~10k.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg

from trading_core.config import UniverseConfig, load_config

# Saturdays and Sundays carry no equity bars; market holidays are not excluded here (they differ
# per exchange and year) and simply ingest 0 rows with a note.
WEEKEND_EXCLUSIONS: tuple[str, ...] = ("0 0 * * 6,0",)


def configured_universes() -> list[UniverseConfig]:
    """The universes of ``$TRADING_CONFIG`` (or config/trading.yaml), read when definitions load."""
    return list(load_config().market_data.universes)


def asset_name(universe: UniverseConfig) -> str:
    return f"{universe.name}_bars"


def job_name(universe: UniverseConfig) -> str:
    return f"{universe.name}_ingest_job"


def partitions_for(universe: UniverseConfig) -> dg.DailyPartitionsDefinition:
    """Daily UTC partitions from ``universe.start``; equities skip weekends."""
    return dg.DailyPartitionsDefinition(
        start_date=universe.start.isoformat(),
        timezone="UTC",
        exclusions=list(WEEKEND_EXCLUSIONS) if universe.asset_class == "equity" else None,
    )


def utc(dt: datetime) -> datetime:
    """A plain ``datetime`` in UTC (Dagster hands out tz-aware datetimes of its own flavour)."""
    return datetime.fromtimestamp(dt.timestamp(), tz=UTC)


def freshness_tolerance(universe: UniverseConfig) -> timedelta:
    """How old the last stored bar may be before the series counts as stale.

    Three bars for 24/7 crypto; for equities at least four days, which covers a weekend plus a
    holiday (an hourly equity series is also idle every night).
    """
    from trading_core.timeframes import timeframe_ms

    bar = timedelta(milliseconds=timeframe_ms(universe.timeframe))
    return max(3 * bar, timedelta(days=4)) if universe.asset_class == "equity" else 3 * bar
