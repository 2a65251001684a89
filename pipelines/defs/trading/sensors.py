"""The two sensors that drive paper sessions; the rules live in ``trading_core.paper.supervision``.

- ``paper_requests_sensor`` (every few seconds): a new ``start``/``resume`` request of a session
  whose desired state is running gets ONE run, ``run_key`` = the request id (Dagster dedupes a
  run key forever), once no other run of the session is in progress.
- ``paper_supervisor_sensor`` (the watchdog and the chain): for each session that should be
  running and is not finished, launches the next generation (``<sid>:g<n>``) after a run handed
  over (``chained``), died (stale heartbeat) or never published, and marks a STARTED run whose
  heartbeat went stale CANCELED first: Dagster's default run launcher never notices a dead
  worker, and the zombie would hold the ``trading/loop`` concurrency slot for ever. The new run's
  lease takeover fences the zombie should it still be alive (``LeaseLost`` at its next commit).

Ticks stay short: they read the session folders' request logs and ``status.json`` (the cheap
read; no DuckDB) and the session's runs from the instance. Both keep a cursor of sessions whose
request log did not change since they were settled, so an old session costs one ``stat`` a tick.

Intervals come from the environment at definition load (the daemon's environment; Dagster needs
them before any resource exists): ``TRADING_PAPER_REQUESTS_INTERVAL_S`` (default 5) and
``TRADING_PAPER_SUPERVISOR_INTERVAL_S`` (default 30). Thresholds are ``PaperResource`` fields and
the session's own ``stale_after_s``.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import dagster as dg

from trading_core.paper.supervision import (
    RunInfo,
    latest_run_request,
    pending_request,
    request_stamps,
    supervise,
)

from ..resources import PaperResource
from .jobs import (
    CANCELLED_BY_TAG,
    GENERATION_TAG,
    JOB_NAME,
    OUTCOME_TAG,
    REQUEST_TAG,
    SESSION_TAG,
    TRIGGER_TAG,
    paper_trading_job,
    run_config,
)


def _interval(name: str, default: int) -> int:
    raw = os.environ.get(name)
    try:
        return max(1, int(float(raw))) if raw else default
    except ValueError:
        return default


REQUESTS_INTERVAL_S = _interval("TRADING_PAPER_REQUESTS_INTERVAL_S", 5)
SUPERVISOR_INTERVAL_S = _interval("TRADING_PAPER_SUPERVISOR_INTERVAL_S", 30)
RUNS_LOOKED_AT = 50  # a session's newest runs the decisions read (failures in a row, attempts)

S = dg.DagsterRunStatus
_PHASE = {S.QUEUED: "pending", S.NOT_STARTED: "pending", S.STARTING: "pending", S.MANAGED: "pending",
          S.SUSPENDED: "pending", S.STARTED: "started", S.CANCELING: "canceling", S.SUCCESS: "succeeded",
          S.FAILURE: "failed", S.CANCELED: "canceled"}


def session_runs(instance: dg.DagsterInstance, session_id: str, limit: int = RUNS_LOOKED_AT) -> list[RunInfo]:
    """The session's newest runs of the paper job, as the supervision rules see them."""
    records = instance.get_run_records(
        filters=dg.RunsFilter(job_name=JOB_NAME, tags={SESSION_TAG: session_id}), limit=limit)
    out = []
    for rec in records:
        run, tags = rec.dagster_run, rec.dagster_run.tags
        gen = tags.get(GENERATION_TAG)
        out.append(RunInfo(run_id=run.run_id, phase=_PHASE.get(run.status, "pending"),  # type: ignore[arg-type]
                           created_at=rec.create_timestamp.timestamp(), start_time=rec.start_time,
                           end_time=rec.end_time, request_id=tags.get(REQUEST_TAG),
                           generation=int(gen) if gen and gen.isdigit() else None, outcome=tags.get(OUTCOME_TAG),
                           cancelled_by_supervisor=tags.get(CANCELLED_BY_TAG) == "supervisor"))
    return out


def _cursor(raw: str | None, key: str) -> dict[str, int]:
    try:
        doc = json.loads(raw) if raw else {}
        return {str(k): int(v) for k, v in dict(doc.get(key, {})).items()}
    except (ValueError, TypeError, AttributeError):
        return {}


def _result(requests: list[dg.RunRequest], notes: list[str], cursor: dict[str, Any],
            idle: str) -> dg.SensorResult:
    text = json.dumps(cursor, sort_keys=True, separators=(",", ":"))
    if requests:
        return dg.SensorResult(run_requests=requests, cursor=text)
    return dg.SensorResult(skip_reason="; ".join(notes)[:2000] or idle, cursor=text)


@dg.sensor(
    name="paper_requests_sensor",
    job=paper_trading_job,
    minimum_interval_seconds=REQUESTS_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="One paper_trading_job run per start/resume request (run key = the request id).",
)
def paper_requests_sensor(context: dg.SensorEvaluationContext, paper: PaperResource) -> dg.SensorResult:
    store = paper.store()
    settled = _cursor(context.cursor, "settled")
    done: dict[str, int] = {}
    requests: list[dg.RunRequest] = []
    notes: list[str] = []
    for sid, stamp in request_stamps(store).items():  # stamps first: a request arriving now re-opens it
        if settled.get(sid) == stamp:
            done[sid] = stamp
            continue
        req = pending_request(store.requests(sid))
        if req is None:
            done[sid] = stamp
            continue
        runs = session_runs(context.instance, sid)
        if any(r.request_id == req.request_id for r in runs):
            done[sid] = stamp
            continue
        busy = next((r for r in runs if r.active), None)
        if busy is not None:  # not settled: asked again once that run ends
            notes.append(f"{sid}: {req.request_id} waits for run {busy.run_id} ({busy.phase})")
            continue
        requests.append(dg.RunRequest(
            run_key=req.request_id, run_config=run_config(sid, req.request_id),
            tags={SESSION_TAG: sid, REQUEST_TAG: req.request_id, TRIGGER_TAG: "request"}))
        context.log.info(f"{sid}: launching a run for {req.action} request {req.request_id} ({req.source})")
        done[sid] = stamp
    return _result(requests, notes, {"settled": done}, "no new start/resume request")


@dg.sensor(
    name="paper_supervisor_sensor",
    job=paper_trading_job,
    minimum_interval_seconds=SUPERVISOR_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Chains paper runs that handed over, cancels runs whose heartbeat went stale and "
                "launches the next generation.",
)
def paper_supervisor_sensor(context: dg.SensorEvaluationContext, paper: PaperResource) -> dg.SensorResult:
    store = paper.store()
    retired = _cursor(context.cursor, "retired")
    keep: dict[str, int] = {}
    requests: list[dg.RunRequest] = []
    notes: list[str] = []
    instance = context.instance
    for sid, stamp in request_stamps(store).items():
        if retired.get(sid) == stamp:
            keep[sid] = stamp
            continue
        reqs = store.requests(sid)
        if latest_run_request(reqs) is None:
            keep[sid] = stamp
            continue
        config = store.load(sid)
        decision = supervise(sid, requests=reqs, status=store.status(sid), runs=session_runs(instance, sid),
                             policy=paper.policy(config), now=time.time())
        for run_id in decision.cancel:
            run = instance.get_run_by_id(run_id)
            if run is None or run.is_finished:
                continue
            instance.add_run_tags(run_id, {CANCELLED_BY_TAG: "supervisor"})
            instance.report_run_canceled(run, message=f"paper supervisor: {decision.reason}; the next "
                                                      "generation takes the session over (its lease fences "
                                                      "this run should it still be alive)")
            context.log.warning(f"{sid}: marked run {run_id} cancelled: {decision.reason}")
        if decision.launch:
            assert decision.run_key is not None and decision.request_id is not None
            requests.append(dg.RunRequest(
                run_key=decision.run_key, run_config=run_config(sid, decision.request_id),
                tags={SESSION_TAG: sid, REQUEST_TAG: decision.request_id,
                      GENERATION_TAG: str(decision.generation), TRIGGER_TAG: "supervisor"}))
            context.log.info(f"{sid}: launching generation {decision.generation} ({decision.run_key}): "
                             f"{decision.reason}")
        elif decision.gave_up:
            context.log.warning(f"{sid}: {decision.reason}")
        if decision.settled:
            keep[sid] = stamp
        notes.append(f"{sid}: {decision.reason}")
    return _result(requests, notes, {"retired": keep}, "no paper session to supervise")
