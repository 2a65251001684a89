"""``paper_trading_job``: one bounded run of one paper session (reliability-and-security.md §5).

The op only wires Dagster to ``trading_core.paper``: it builds the session's runner, runs it, and
records the outcome as a run tag (``trading/outcome``) the supervisor reads. The run is bounded:
its budget ends ``max_runtime_margin_s`` before ``dagster/max_runtime``, then it hands over
(``chained``) and the supervisor launches the next generation. Recovery has one owner -- the
supervisor sensor -- so Dagster's own run retries are off for this job.
"""


import dagster as dg

from ..resources import PaperResource

MAX_RUNTIME_S = 28_800
JOB_TAGS = {"trading/loop": "paper", "dagster/max_runtime": str(MAX_RUNTIME_S), "dagster/max_retries": "0"}


class PaperRunConfig(dg.Config):
    session_id: str
    request_id: str


@dg.op(description="Trade one paper session bar by bar until it stops, pauses, completes or hands over.")
def run_paper_session(context: dg.OpExecutionContext, config: PaperRunConfig, paper: PaperResource) -> dg.Output[str]:
    from trading_core.paper.config import check_session_id
    from trading_core.warehouse.paper import LeaseHeld

    sid = check_session_id(config.session_id)
    store = paper.store()
    budget = paper.budget_s(store.load(sid), float(context.run.tags.get("dagster/max_runtime") or MAX_RUNTIME_S))
    runner = paper.runner(sid, run_id=context.run_id, budget_s=budget)
    try:
        outcome = runner.run()  # an interrupt (UI Terminate) passes through; the runner releases its lease
    except LeaseHeld as e:
        context.instance.add_run_tags(context.run_id, {"trading/outcome": "lease_held"})
        raise dg.Failure(description=str(e)) from None
    context.instance.add_run_tags(context.run_id, {"trading/outcome": outcome.state})
    if outcome.state == "lease_lost":
        context.log.warning(f"session {sid}: a newer run owns the session; this one stopped without writing "
                            f"({'; '.join(outcome.reasons)})")
    else:
        context.log.info(f"session {sid}: {outcome.state} after {outcome.bars_processed} bars "
                         f"({outcome.new_bars} new, {outcome.replayed_bars} replayed from the ledger)")
    if outcome.state == "refused":
        raise dg.Failure(description="pre-flight refused the session: " + "; ".join(outcome.reasons))
    return dg.Output(outcome.state, metadata={k: dg.MetadataValue.text(str(v)) for k, v in outcome.to_dict().items()})


@dg.job(tags=JOB_TAGS, description="A long-running paper-trading session (launched by paper_requests_sensor, "
                                   "continued by paper_supervisor_sensor); see docs/paper-trading.md.")
def paper_trading_job() -> None:
    run_paper_session()


def run_config(session_id: str, request_id: str) -> dict[str, object]:
    return {"ops": {"run_paper_session": {"config": {"session_id": session_id, "request_id": request_id}}}}
