"""``paper_trading_job``: one bounded run of one paper session.

The op is a thin shell around ``trading_core.paper.runner.SessionRunner``: it takes the lease
(generation + 1), rebuilds from the ledger, trades, honours stop/pause requests, and after its
budget (``dagster/max_runtime`` minus ``PaperResource.max_runtime_margin_s``) commits and ends
``chained`` so the supervisor sensor starts the next generation. Recovery has one owner, the
supervisor: the job never retries itself (``dagster/max_retries: 0``).

- ``LeaseHeld`` (another run's heartbeat is fresh): the run fails with that message.
- ``LeaseLost`` (a newer run took the session over; this one is a fenced zombie): the run ends
  without error and logs a warning -- the newer run owns the session.
- A UI Terminate arrives as ``DagsterExecutionInterruptedError`` (a ``BaseException``): it passes
  through untouched, the runner's ``finally`` releases the lease, the run ends CANCELED.
- A refused pre-flight fails the run with the reasons (the session needs a fix, not a retry).

The op runs in the run worker's own process (``in_process_executor``): one process per run, so
killing it kills the session's only writer, and the worker's pid is recorded as a run tag
(``trading/worker_pid``) for operators.
"""


import os
import socket
from typing import Any

import dagster as dg

from trading_core.errors import InvalidInput

from ..resources import PaperResource

JOB_NAME = "paper_trading_job"
OP_NAME = "run_paper_session"
MAX_RUNTIME_S = 28_800
JOB_TAGS = {"trading/loop": "paper", "dagster/max_runtime": str(MAX_RUNTIME_S), "dagster/max_retries": "0"}
# run tags written by the sensors and the op
SESSION_TAG = "trading/session_id"
REQUEST_TAG = "trading/request_id"
GENERATION_TAG = "trading/generation"
TRIGGER_TAG = "trading/trigger"  # request | supervisor
OUTCOME_TAG = "trading/outcome"  # RunOutcome.state, set by the op when the runner returns
PID_TAG = "trading/worker_pid"
HOST_TAG = "trading/worker_host"
CANCELLED_BY_TAG = "trading/cancelled_by"  # supervisor: a zombie it marked cancelled


class PaperSessionConfig(dg.Config):
    """Which session this run trades, and the request (start/resume) it serves."""

    session_id: str
    request_id: str = ""


def run_config(session_id: str, request_id: str) -> dict[str, Any]:
    return {"ops": {OP_NAME: {"config": {"session_id": session_id, "request_id": request_id}}}}


def _max_runtime(context: dg.OpExecutionContext) -> float | None:
    raw = context.run.tags.get("dagster/max_runtime", str(MAX_RUNTIME_S))
    try:
        return float(raw)
    except ValueError:
        return float(MAX_RUNTIME_S)


@dg.op(name=OP_NAME, out=dg.Out(dg.Nothing), description="Run one paper session until it ends or hands over.")
def run_paper_session(context: dg.OpExecutionContext, config: PaperSessionConfig, paper: PaperResource) -> None:
    from trading_core.paper.config import check_session_id
    from trading_core.paper.runner import RunOutcome
    from trading_core.warehouse.paper import LeaseHeld, LeaseLost

    try:
        sid = check_session_id(config.session_id)
        session = paper.store().load(sid)
    except InvalidInput as e:
        raise dg.Failure(description=str(e), allow_retries=False) from e
    context.instance.add_run_tags(context.run_id, {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()})
    budget = paper.budget_s(session, _max_runtime(context))
    runner = paper.runner(sid, run_id=context.run_id, budget_s=budget)
    context.log.info(f"session {sid} ({session.name}, {session.feed}): request {config.request_id or '-'}, "
                     f"budget {budget:.0f}s")
    try:
        outcome = runner.run()
    except LeaseHeld as e:
        context.instance.add_run_tags(context.run_id, {OUTCOME_TAG: "lease_held"})
        raise dg.Failure(description=str(e), allow_retries=False) from e
    except LeaseLost as e:  # the runner turns this into an outcome; kept for a takeover at its edges
        outcome = RunOutcome(sid, context.run_id, state="lease_lost", reasons=[str(e)])
    context.instance.add_run_tags(context.run_id, {OUTCOME_TAG: outcome.state})
    meta: dict[str, Any] = {
        "state": outcome.state, "generation": outcome.generation, "bars_processed": outcome.bars_processed,
        "new_bars": outcome.new_bars, "replayed_bars": outcome.replayed_bars, "budget_s": budget,
        "recovery_s": dg.MetadataValue.null() if outcome.recovery_s is None else outcome.recovery_s,
        "reasons": dg.MetadataValue.json(outcome.reasons), "outcome": dg.MetadataValue.json(outcome.to_dict())}
    summary = (f"session {sid}: {outcome.state} at generation {outcome.generation}, {outcome.bars_processed} bars "
               f"({outcome.new_bars} new, {outcome.replayed_bars} replayed)")
    if outcome.state == "refused":
        raise dg.Failure(description=f"{summary}: pre-flight refused: {'; '.join(outcome.reasons)}",
                         metadata=meta, allow_retries=False)
    if outcome.state == "lease_lost":
        context.log.warning(f"{summary}: a newer run owns the session ({'; '.join(outcome.reasons)})")
    else:
        context.log.info(summary)
    context.add_output_metadata(meta)


@dg.job(name=JOB_NAME, tags=JOB_TAGS, executor_def=dg.in_process_executor,
        description="One bounded run of a paper session (launched by paper_requests_sensor and "
                    "paper_supervisor_sensor; never retried by Dagster).")
def paper_trading_job() -> None:
    run_paper_session()
