"""Jobs and schedules that keep the ingest assets current.

One asset job per universe (its partitions are inferred from the selected asset) and a schedule
built from it: every day at 00:15 UTC it materialises the partition of the day that just ended
(for equities, only weekdays exist). The 15 minutes let the last bar of the day close and
providers settle. Schedules start RUNNING: a stopped schedule would silently leave data stale.
"""

from __future__ import annotations

from functools import cache

import dagster as dg

from .partitions import asset_name, configured_universes, job_name

SCHEDULE_MINUTE = 15


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


@dg.definitions
def defs() -> dg.Definitions:
    jobs = ingest_jobs()
    schedules = [
        dg.build_schedule_from_partitioned_job(
            job, name=schedule_name(job.name), minute_of_hour=SCHEDULE_MINUTE,
            default_status=dg.DefaultScheduleStatus.RUNNING,
            description="Ingest the partition (UTC day) that just ended.",
        )
        for job in jobs
    ]
    return dg.Definitions(jobs=list(jobs), schedules=schedules)
