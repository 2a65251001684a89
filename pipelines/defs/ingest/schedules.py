"""Jobs and schedules that keep the ingest assets current.

One asset job per universe (its partitions are inferred from the selected asset) and a schedule
built from it: every day at 00:15 UTC it materialises the partition holding the day that just
ended (the day itself for intraday bars, its month for daily bars). The 15 minutes let the last
bar of the day close and providers settle. Schedules start RUNNING: a stopped schedule would
silently leave data stale. A tick whose day is not a partition (a weekend of an intraday equity
universe, or past the end of the offline sample history) is skipped with that reason.
"""

from __future__ import annotations

from datetime import UTC, timedelta
from functools import cache

import dagster as dg

from trading_core.config import UniverseConfig

from .partitions import (
    asset_name,
    configured_mode,
    configured_universes,
    job_name,
    partition_key_of_day,
    partitions_for,
)

SCHEDULE_MINUTE = 15
CRON = f"{SCHEDULE_MINUTE} 0 * * *"


def schedule_name(job: str) -> str:
    return job.replace("_job", "_schedule")


@cache
def ingest_jobs() -> tuple[dg.UnresolvedAssetJobDefinition, ...]:
    """Built once per process, so the schedules and the catch-up sensor target the same objects."""
    return tuple(
        dg.define_asset_job(
            job_name(u),
            selection=dg.AssetSelection.assets(asset_name(u)),
            description=f"Ingest the {u.name} universe ({u.timeframe} bars on {u.venue}).",
            tags={"trading/universe": u.name},
        )
        for u in configured_universes()
    )


def build_ingest_schedule(universe: UniverseConfig, job: dg.UnresolvedAssetJobDefinition) -> dg.ScheduleDefinition:
    partitions = partitions_for(universe)
    offline = configured_mode() == "offline"

    @dg.schedule(name=schedule_name(job.name), cron_schedule=CRON, execution_timezone="UTC", job=job,
                 default_status=dg.DefaultScheduleStatus.RUNNING,
                 description="Ingest the partition holding the UTC day that just ended.")
    def _schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        tick = context.scheduled_execution_time.astimezone(UTC)
        day = (tick - timedelta(days=1)).date()
        key = partition_key_of_day(universe, day)
        keys = partitions.get_partition_keys(current_time=tick)
        if key not in keys:
            if offline and keys and key > keys[-1]:
                return dg.SkipReason(f"offline: the sample history of {universe.name} ends with partition "
                                     f"{keys[-1]}; nothing new to ingest for {day} (market_data.mode: live "
                                     "fetches new bars)")
            return dg.SkipReason(f"{day} is not a partition of {asset_name(universe)} (no bars that day)")
        return dg.RunRequest(run_key=f"{job.name}:{key}:{day}", partition_key=key,
                             tags={"trading/trigger": "schedule"})

    return _schedule


@dg.definitions
def defs() -> dg.Definitions:
    jobs = ingest_jobs()
    schedules = [build_ingest_schedule(u, j) for u, j in zip(configured_universes(), jobs, strict=True)]
    return dg.Definitions(jobs=list(jobs), schedules=schedules)
