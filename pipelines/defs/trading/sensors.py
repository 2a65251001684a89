"""The two sensors of paper trading; the decisions live in ``trading_core.paper.supervision``.

- ``paper_requests_sensor`` (5 s): a start/resume request gets exactly one run, keyed by its
  request id (Dagster never launches a run key twice), tagged with the session id.
- ``paper_supervisor_sensor`` (30 s): the watchdog and the chain. A run that spent its budget is
  followed by the next generation; a started run whose heartbeat went stale is reported canceled
  (the default launcher never notices a dead worker) and replaced; the new run's lease fences the
  old one off.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import dagster as dg

from ..resources import PaperResource
from .jobs import paper_trading_job, run_config

SESSION_TAG, REQUEST_TAG, GENERATION_TAG = "trading/session_id", "trading/request_id", "trading/generation"
OUTCOME_TAG, CANCELLED_BY_TAG = "trading/outcome", "trading/cancelled_by"
_PHASE = {dg.DagsterRunStatus.QUEUED: "pending", dg.DagsterRunStatus.NOT_STARTED: "pending",
          dg.DagsterRunStatus.STARTING: "pending", dg.DagsterRunStatus.STARTED: "started",
          dg.DagsterRunStatus.CANCELING: "canceling", dg.DagsterRunStatus.SUCCESS: "succeeded",
          dg.DagsterRunStatus.FAILURE: "failed", dg.DagsterRunStatus.CANCELED: "canceled"}
_IN_PROGRESS = [s for s, p in _PHASE.items() if p in ("pending", "started", "canceling")]


def _tags(sid: str, request_id: str, generation: int | None = None) -> dict[str, str]:
    tags = {SESSION_TAG: sid, REQUEST_TAG: request_id}
    if generation is not None:
        tags[GENERATION_TAG] = str(generation)
    return tags


def _run_infos(instance: dg.DagsterInstance, sid: str) -> list[Any]:
    from trading_core.paper.supervision import RunInfo

    out = []
    for rec in instance.get_run_records(filters=dg.RunsFilter(tags={SESSION_TAG: sid}), limit=50):
        run = rec.dagster_run
        gen = run.tags.get(GENERATION_TAG)
        out.append(RunInfo(run_id=run.run_id, phase=_PHASE.get(run.status, "failed"),  # type: ignore[arg-type]
                           created_at=rec.create_timestamp.timestamp(), start_time=rec.start_time,
                           end_time=rec.end_time, request_id=run.tags.get(REQUEST_TAG),
                           generation=int(gen) if gen else None, outcome=run.tags.get(OUTCOME_TAG),
                           cancelled_by_supervisor=run.tags.get(CANCELLED_BY_TAG) == "supervisor"))
    return out


@dg.sensor(job=paper_trading_job, minimum_interval_seconds=5, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Launches paper_trading_job for each start/resume request (one run per request).")
def paper_requests_sensor(context: dg.SensorEvaluationContext, paper: PaperResource) -> Iterator[dg.RunRequest]:
    from trading_core.paper.supervision import pending_request

    store = paper.store()
    for sid in store.session_ids():
        req = pending_request(store.requests(sid))
        if req is None:
            continue
        if context.instance.get_runs(filters=dg.RunsFilter(tags={SESSION_TAG: sid}, statuses=_IN_PROGRESS), limit=1):
            continue  # a run already serves the session: the request is seen by it (pause/resume race)
        if context.instance.get_runs(filters=dg.RunsFilter(tags={REQUEST_TAG: req.request_id}), limit=1):
            continue  # this request got its run; what follows is the supervisor's
        yield dg.RunRequest(run_key=req.request_id, run_config=run_config(sid, req.request_id),
                            tags=_tags(sid, req.request_id))


@dg.sensor(job=paper_trading_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Continues paper sessions: chains a run that handed over, replaces a dead run.")
def paper_supervisor_sensor(context: dg.SensorEvaluationContext, paper: PaperResource) -> Iterator[dg.RunRequest]:
    from trading_core.paper.control import desired_state
    from trading_core.paper.supervision import supervise

    store = paper.store()
    now = time.time()
    for sid in store.session_ids():
        requests = store.requests(sid)
        if desired_state(requests) != "running":
            continue
        decision = supervise(sid, requests=requests, status=store.status(sid), runs=_run_infos(context.instance, sid),
                             policy=paper.policy(store.load(sid)), now=now)
        for run_id in decision.cancel:
            run = context.instance.get_run_by_id(run_id)
            if run is not None and run.status == dg.DagsterRunStatus.STARTED:
                context.instance.add_run_tags(run_id, {CANCELLED_BY_TAG: "supervisor"})
                context.instance.report_run_canceled(run, message=f"paper supervisor: {decision.reason}")
                context.log.warning(f"session {sid}: cancelled zombie run {run_id}: {decision.reason}")
        if decision.launch and decision.run_key and decision.request_id:
            context.log.info(f"session {sid}: launching generation {decision.generation}: {decision.reason}")
            yield dg.RunRequest(run_key=decision.run_key, run_config=run_config(sid, decision.request_id),
                                tags=_tags(sid, decision.request_id, decision.generation))
