"""``pipeline_health_sensor``: the latest runs and asset-check results, read from the Dagster
instance each tick and handed to ``trading_core.ops.pipeline_health`` for the app.

The app may not talk to Dagster; this sensor is the one place that reads the instance for it.
It reads: the newest run of every job, every run of the last 50 and every failure of the last
24 h (job, status, start/end, duration, partition, tags such as the session id, the assets it
selected, and the failing step's message), and the latest evaluation of every asset check the code location defines.
Storing is trading_core's (a JSON document the app reads, plus an upsert into the warehouse that
a busy warehouse skips with a log line); this sensor never fails a tick on a busy store.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg

from ..resources import TradingConfigResource

RECENT_RUNS = 50
FAILURE_WINDOW = timedelta(hours=24)
SESSION_TAG = "trading/session_id"  # pipelines/defs/trading/jobs.py
_KEPT_TAG_PREFIXES = ("trading/", "dagster/partition", "dagster/backfill", "dagster/schedule_name",
                      "dagster/sensor_name", "dagster/automation_condition", "dagster/from_automation_condition")


def _ts(t: float | None) -> datetime | None:
    return datetime.fromtimestamp(t, tz=UTC) if t else None


def _root_message(err: Any) -> str | None:
    """The user's own exception under Dagster's wrappers ("RuntimeError: provider answered 503")."""
    while err is not None and getattr(err, "cause", None) is not None:
        err = err.cause
    return str(err.message).strip() if err is not None and err.message else None


def _failure(instance: dg.DagsterInstance, run_id: str) -> tuple[str | None, str | None]:
    """The first failing step and its error message (else the run failure's message)."""
    logs = instance.all_logs(run_id, of_type={dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE})
    for e in logs:
        ev = e.dagster_event
        if ev is not None and ev.event_type == dg.DagsterEventType.STEP_FAILURE:
            msg = _root_message(getattr(ev.event_specific_data, "error", None)) or e.message
            return ev.step_key, (msg or "").strip()[:4000] or None
    for e in logs:
        ev = e.dagster_event
        if ev is not None and ev.event_type == dg.DagsterEventType.RUN_FAILURE:
            return None, (ev.message or e.message or "").strip()[:4000] or None
    return None, None


def _run_row(instance: dg.DagsterInstance, rec: Any) -> dict[str, Any]:
    run = rec.dagster_run
    tags = {k: str(v) for k, v in run.tags.items() if k.startswith(_KEPT_TAG_PREFIXES)}
    start, end = _ts(rec.start_time), _ts(rec.end_time)
    step, message = _failure(instance, run.run_id) if run.status == dg.DagsterRunStatus.FAILURE else (None, None)
    return {"run_id": run.run_id, "job": run.job_name, "status": run.status.value,
            "created_at": rec.create_timestamp, "started_at": start, "ended_at": end,
            "duration_s": (end - start).total_seconds() if start and end else None,
            "partition_key": run.tags.get("dagster/partition"), "session_id": run.tags.get(SESSION_TAG),
            "tags": tags, "failed_step": step, "failure": message,
            "assets": sorted(k.to_user_string() for k in run.asset_selection or ())}


def collect_runs(instance: dg.DagsterInstance, job_names: Iterable[str], now: datetime) -> list[dict[str, Any]]:
    """The newest run of every job, the last ``RECENT_RUNS`` runs and the failures of the last day."""
    records = {r.dagster_run.run_id: r for r in instance.get_run_records(limit=RECENT_RUNS)}
    failed = dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE], updated_after=now - FAILURE_WINDOW)
    records.update({r.dagster_run.run_id: r for r in instance.get_run_records(filters=failed, limit=RECENT_RUNS)})
    seen = {r.dagster_run.job_name for r in records.values()}
    for job in sorted(set(job_names) - seen):
        records.update({r.dagster_run.run_id: r for r in
                        instance.get_run_records(filters=dg.RunsFilter(job_name=job), limit=1)})
    return [_run_row(instance, r) for r in records.values()]


def collect_checks(instance: dg.DagsterInstance, check_keys: Iterable[dg.AssetCheckKey]) -> list[dict[str, Any]]:
    """The latest evaluation (or planned execution) of each check that has run at least once."""
    keys = list(check_keys)
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(keys) if keys else {}
    rows = []
    for key, rec in latest.items():
        ev = rec.event.dagster_event if rec.event is not None else None
        data = ev.event_specific_data if ev is not None else None
        evaluation = data if isinstance(data, dg.AssetCheckEvaluation) else None
        rows.append({"asset": key.asset_key.to_user_string(), "check_name": key.name, "status": rec.status.value,
                     "passed": evaluation.passed if evaluation else None,
                     "severity": evaluation.severity.value if evaluation else None,
                     "description": (evaluation.description or None) if evaluation else None,
                     "evaluated_at": _ts(rec.event.timestamp if rec.event is not None else rec.create_timestamp),
                     "run_id": rec.run_id, "partition_key": rec.partition})
    return rows


@dg.sensor(name="pipeline_health_sensor", minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Reads the latest runs and asset-check results from the instance for the monitoring app.")
def pipeline_health_sensor(context: dg.SensorEvaluationContext, trading_config: TradingConfigResource) -> dg.SkipReason:
    from trading_core.ops.pipeline_health import record_pipeline_health

    now = datetime.now(UTC)
    repo = context.repository_def
    jobs = repo.job_names if repo is not None else []
    check_keys = repo.asset_graph.asset_check_keys if repo is not None else set()
    runs = collect_runs(context.instance, jobs, now)
    checks = collect_checks(context.instance, check_keys)
    cfg = trading_config.load()
    summary = record_pipeline_health(cfg.data_dir, cfg.warehouse.path, runs, checks, now)
    context.log.info(f"pipeline health: {summary}")
    return dg.SkipReason(f"{summary['runs']} runs ({summary['failed_runs_24h']} failed in 24 h), "
                         f"{summary['checks']} checks ({summary['failing_checks']} failing); "
                         f"warehouse: {summary['warehouse']}")
