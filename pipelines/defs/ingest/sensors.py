"""Catch-up: materialise missing ingest partitions in a few large runs, oldest first.

Why a sensor: ``make run`` loads the offline history with ``trading ingest sample`` before Dagster
starts, so the bars are in the warehouse but Dagster has no materialisation on record. This sensor
sees the missing partitions and requests one run per universe over the oldest ``CHUNK`` of them
(partition-range tags + ``BackfillPolicy.single_run()``: one fetch per symbol per run). The run
finds the range already stored (``ingest_series`` fetches only what is missing: a metadata query
per symbol, no bar is re-read), records a materialisation per partition and evaluates the checks.
Offline the partitions are exactly the sample history (see partitions.py), a few hundred per
universe, so the whole catch-up is ONE run per universe, launched in the same tick: the serving
snapshot and the features, which wait until no upstream partition is missing or in flight, then
update once.

Oldest first because the stored history must grow from its start: features are computed
incrementally after the last stored feature row, so bars that arrived *before* it later would
never get features. The same sensor repairs holes later: a failed scheduled day, a new universe
in the config, an earlier ``start``. It leaves the newest partition to the schedule for its first
hour, waits while a run of the universe is active, and stops (with a skip reason) after a failed
catch-up run instead of retrying it every tick: fix the cause, then re-run or backfill.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg

from .partitions import asset_name, configured_universes, job_name, partitions_for
from .schedules import ingest_jobs

# Dagster's partition-range run tags (dagster._core.storage.tags; spelled out to stay on public API).
ASSET_PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
ASSET_PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"
TRIGGER_TAG = "trading/trigger"
# Partitions per catch-up run: ~90 ms of Dagster bookkeeping each (two events in its SQLite event
# log) on a busy 2-core machine, so a full chunk is ~1.5 min. Offline every universe fits in one.
CHUNK = 1000
# The schedule owns the newest partition for this long after it ends.
SCHEDULE_GRACE = timedelta(hours=1)
ACTIVE = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
          dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def oldest_block(keys: list[str], missing: list[str], chunk: int) -> tuple[str, str]:
    """First and last key of the oldest contiguous run of ``missing`` keys, at most ``chunk`` long."""
    index = {k: i for i, k in enumerate(keys)}
    block = [missing[0]]
    for k in missing[1:]:
        if len(block) >= chunk or index[k] != index[block[-1]] + 1:
            break
        block.append(k)
    return block[0], block[-1]


def catch_up_requests(instance: dg.DagsterInstance, now: datetime,
                      chunk: int = CHUNK) -> tuple[list[dg.RunRequest], list[str]]:
    """Run requests (one per universe with missing partitions) and reasons for skipped ones."""
    requests: list[dg.RunRequest] = []
    skipped: list[str] = []
    for u in configured_universes():
        keys = partitions_for(u).get_partition_keys(current_time=now - SCHEDULE_GRACE)
        done = instance.get_materialized_partitions(dg.AssetKey(asset_name(u)))
        missing = [k for k in keys if k not in done]
        if not missing:
            continue
        job = job_name(u)
        if instance.get_runs(filters=dg.RunsFilter(job_name=job, statuses=ACTIVE), limit=1):
            skipped.append(f"{job}: a run is in progress")
            continue
        last_catch_up = instance.get_runs(
            filters=dg.RunsFilter(job_name=job, tags={TRIGGER_TAG: "catch_up"}), limit=1)
        if last_catch_up and last_catch_up[0].status == dg.DagsterRunStatus.FAILURE:
            skipped.append(f"{job}: catch-up run {last_catch_up[0].run_id} failed; fix it and "
                           "re-execute it or launch a backfill")
            continue
        first, last = oldest_block(keys, missing, chunk)
        requests.append(dg.RunRequest(
            run_key=f"{asset_name(u)}:{first}..{last}",
            job_name=job,
            tags={ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last,
                  TRIGGER_TAG: "catch_up"},
        ))
    return requests, skipped


@dg.sensor(
    name="ingest_catch_up_sensor",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Materialises missing ingest partitions, oldest first, in single runs of up to "
                f"{CHUNK} partitions.",
    jobs=list(ingest_jobs()),
)
def ingest_catch_up_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    requests, skipped = catch_up_requests(context.instance, datetime.now(UTC))
    if not requests:
        return dg.SkipReason("; ".join(skipped) or "every ingest partition is materialised")
    return dg.SensorResult(run_requests=requests)
