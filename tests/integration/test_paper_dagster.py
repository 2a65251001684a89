"""Paper trading under a real Dagster instance: the job, the requests sensor, the supervisor."""

from __future__ import annotations

import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
from paper_support import PaperEnv, btc_request

from pipelines.defs.resources import MarketDataResource, PaperResource, TradingConfigResource
from pipelines.defs.trading.jobs import paper_trading_job, run_config
from pipelines.defs.trading.sensors import paper_requests_sensor, paper_supervisor_sensor

SHORT = {"start": datetime(2019, 2, 1, tzinfo=UTC), "end": datetime(2019, 2, 15, tzinfo=UTC)}


@pytest.fixture
def env(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> PaperEnv:
    return PaperEnv(tmp_path, tmp_path_factory.getbasetemp())


def _paper(env: PaperEnv) -> PaperResource:
    config = TradingConfigResource()
    return PaperResource(trading_config=config, market_data=MarketDataResource(), data_dir=str(env.root),
                         warehouse_path=str(env.warehouse.path))


def _defs(env: PaperEnv) -> dg.Definitions:
    return dg.Definitions(jobs=[paper_trading_job], sensors=[paper_requests_sensor, paper_supervisor_sensor],
                          resources={"paper": _paper(env)})


def _tick(sensor: dg.SensorDefinition, instance: dg.DagsterInstance, env: PaperEnv) -> list[dg.RunRequest]:
    with dg.build_sensor_context(instance=instance, definitions=_defs(env),
                                 resources={"paper": _paper(env)}) as ctx:
        data = sensor.evaluate_tick(ctx)
    return list(data.run_requests or [])


def test_definitions_load_the_paper_job_and_both_sensors() -> None:
    from pipelines.definitions import defs

    d = defs()
    job = d.resolve_job_def("paper_trading_job")
    assert {k: job.tags[k] for k in ("trading/loop", "dagster/max_runtime", "dagster/max_retries")} == {
        "trading/loop": "paper", "dagster/max_runtime": "28800", "dagster/max_retries": "0"}
    assert job.executor_def.name == "in_process"  # one process per run: killing it kills the writer
    assert "paper" in (d.resources or {})
    sensors = {s.name: s for s in d.sensors or []}
    assert {"paper_requests_sensor", "paper_supervisor_sensor"} <= set(sensors)
    for name, interval in (("paper_requests_sensor", 5), ("paper_supervisor_sensor", 30)):
        assert sensors[name].default_status == dg.DefaultSensorStatus.RUNNING
        assert sensors[name].minimum_interval_seconds == interval
        assert d.resolve_sensor_def(name).job_name == "paper_trading_job"


def test_the_job_runs_a_session_to_completion_and_records_its_outcome(env: PaperEnv) -> None:
    sid = env.session(btc_request(**SHORT))
    rid = env.store.requests(sid)[0].request_id
    with dg.instance_for_test() as instance:
        result = paper_trading_job.execute_in_process(instance=instance, run_config=run_config(sid, rid),
                                                      resources={"paper": _paper(env)},
                                                      tags={"trading/session_id": sid})
        assert result.success
        assert instance.get_run_by_id(result.run_id).tags["trading/outcome"] == "completed"
    assert env.counts(sid)["fills"] > 0
    assert env.store.status(sid)["state"] == "completed"


def test_one_run_per_request_then_the_supervisor_chains_and_replaces_dead_runs(env: PaperEnv) -> None:
    sid = env.session(btc_request(**SHORT), heartbeat_s=1, stale_after_s=5)
    with dg.instance_for_test() as instance:
        first = _tick(paper_requests_sensor, instance, env)
        assert [r.run_key for r in first] == [f"{sid}-r000001"]
        assert first[0].tags["trading/session_id"] == sid
        # the run exists (launched, now running): no second run for the same request
        run = instance.create_run_for_job(paper_trading_job, run_config=first[0].run_config,
                                          tags={**first[0].tags})
        assert _tick(paper_requests_sensor, instance, env) == []
        # the run started, published a heartbeat, then its worker died: stale after 5 s
        from dagster._core.storage.dagster_run import DagsterRunStatus

        instance.handle_run_event(run.run_id, dg.DagsterEvent(
            event_type_value="PIPELINE_START", job_name=run.job_name, message="started"))
        assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.STARTED
        env.store.write_status(sid, {"state": "running", "run_id": run.run_id, "generation": 1,
                                     "heartbeat_ts": datetime.fromtimestamp(time.time() - 60, tz=UTC).isoformat()})
        nxt = _tick(paper_supervisor_sensor, instance, env)
        assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.CANCELED  # the zombie
        assert [r.run_key for r in nxt] == [f"{sid}:g2"]
        assert nxt[0].tags["trading/generation"] == "2"


def test_a_run_that_handed_over_is_followed_by_the_next_generation(env: PaperEnv) -> None:
    # a year of hourly bars takes a few seconds: longer than the 1 s budget left below
    sid = env.session(btc_request(start=datetime(2018, 1, 1, tzinfo=UTC), end=datetime(2019, 1, 1, tzinfo=UTC)))
    rid = env.store.requests(sid)[0].request_id
    with dg.instance_for_test() as instance:
        cfg = run_config(sid, rid)
        paper = _paper(env)
        # max_runtime minus the margin = 1 s of budget: the run commits and hands over (chained)
        short = PaperResource(trading_config=paper.trading_config, market_data=paper.market_data,
                              data_dir=paper.data_dir, warehouse_path=paper.warehouse_path,
                              max_runtime_margin_s=28_799.9)
        res = paper_trading_job.execute_in_process(instance=instance, run_config=cfg, resources={"paper": short},
                                                   tags={"trading/session_id": sid, "trading/request_id": rid})
        assert instance.get_run_by_id(res.run_id).tags["trading/outcome"] == "chained"
        nxt = _tick(paper_supervisor_sensor, instance, env)
        assert [r.run_key for r in nxt] == [f"{sid}:g2"]
        # a stopped session is left alone
        env.store.request(sid, "stop")
        assert _tick(paper_supervisor_sensor, instance, env) == []
        assert _tick(paper_requests_sensor, instance, env) == []


def _started(instance: dg.DagsterInstance, request: dg.RunRequest) -> dg.DagsterRun:
    """A run of ``request`` that Dagster shows STARTED (its worker 'running' somewhere)."""
    run = instance.create_run_for_job(paper_trading_job, run_config=request.run_config, tags={**request.tags})
    instance.handle_run_event(run.run_id, dg.DagsterEvent(
        event_type_value="PIPELINE_START", job_name=run.job_name, message="started"))
    return run


def _end(instance: dg.DagsterInstance, run: dg.DagsterRun, event: str) -> None:
    instance.handle_run_event(run.run_id, dg.DagsterEvent(
        event_type_value=event, job_name=run.job_name, message=event.lower()))


def _beat(env: PaperEnv, sid: str, run_id: str, age_s: float, state: str = "running", gen: int = 1) -> None:
    env.store.write_status(sid, {"state": state, "run_id": run_id, "generation": gen,
                                 "heartbeat_ts": datetime.fromtimestamp(time.time() - age_s, tz=UTC).isoformat()})


def _evaluate(sensor: dg.SensorDefinition, instance: dg.DagsterInstance, env: PaperEnv,
              cursor: str | None = None) -> tuple[list[dg.RunRequest], str | None, str | None]:
    with dg.build_sensor_context(instance=instance, definitions=_defs(env), resources={"paper": _paper(env)},
                                 cursor=cursor) as ctx:
        data = sensor.evaluate_tick(ctx)
    return list(data.run_requests or []), data.cursor, data.skip_message


def test_requests_one_run_per_request_a_resume_gets_one_more_and_the_cursor_skips_settled_sessions(
        env: PaperEnv) -> None:
    sid = env.session(btc_request(**SHORT), heartbeat_s=1, stale_after_s=5)
    other = env.session(btc_request(**SHORT))
    env.store.request(other, "pause")  # desired paused: never launched
    with dg.instance_for_test() as instance:
        first, cursor, _ = _evaluate(paper_requests_sensor, instance, env)
        assert [r.run_key for r in first] == [f"{sid}-r000001"]
        assert {k: v for k, v in first[0].tags.items() if k.startswith("trading/")} == {
            "trading/session_id": sid, "trading/request_id": f"{sid}-r000001", "trading/trigger": "request"}
        assert first[0].run_config == run_config(sid, f"{sid}-r000001")
        # the daemon would dedupe by run key; with the cursor the sensor does not even ask again
        assert _evaluate(paper_requests_sensor, instance, env, cursor)[0] == []
        run = _started(instance, first[0])
        assert _evaluate(paper_requests_sensor, instance, env)[0] == []  # without a cursor: the run's tag
        # pause (the run ends paused), then resume: exactly one more run, for the resume request
        env.store.request(sid, "pause")
        _end(instance, run, "PIPELINE_SUCCESS")
        _beat(env, sid, run.run_id, 0, state="paused")
        assert _evaluate(paper_requests_sensor, instance, env, cursor)[0] == []
        env.store.request(sid, "resume")
        again, cursor2, _ = _evaluate(paper_requests_sensor, instance, env, cursor)
        assert [r.run_key for r in again] == [f"{sid}-r000003"]
        assert again[0].tags["trading/request_id"] == f"{sid}-r000003"
        # the supervisor leaves a request without its run to the requests sensor
        assert _evaluate(paper_supervisor_sensor, instance, env)[0] == []
        # while a run of the session is in progress a new request waits, and is not settled
        _started(instance, again[0])
        env.store.request(sid, "pause")
        env.store.request(sid, "resume")
        waiting, cursor3, skip = _evaluate(paper_requests_sensor, instance, env, cursor2)
        assert waiting == [] and "waits for run" in (skip or "")
        assert sid not in (cursor3 or "")


def test_the_supervisor_replaces_a_failed_run_once_its_heartbeat_is_stale_and_gives_up_after_repeated_failures(
        env: PaperEnv) -> None:
    sid = env.session(btc_request(**SHORT), heartbeat_s=1, stale_after_s=5)
    with dg.instance_for_test() as instance:
        (req,), _, _ = _evaluate(paper_requests_sensor, instance, env)
        run = _started(instance, req)
        _beat(env, sid, run.run_id, 1)
        assert _evaluate(paper_supervisor_sensor, instance, env)[0] == []  # healthy
        _end(instance, run, "PIPELINE_FAILURE")  # the code server saw its worker die
        _beat(env, sid, run.run_id, 2)
        none, _, skip = _evaluate(paper_supervisor_sensor, instance, env)
        assert none == [] and "waiting for its heartbeat" in (skip or "")  # it may still be alive (#15325)
        _beat(env, sid, run.run_id, 60)
        (nxt,), _, _ = _evaluate(paper_supervisor_sensor, instance, env)
        assert nxt.run_key == f"{sid}:g2" and nxt.tags["trading/generation"] == "2"
        assert nxt.tags["trading/trigger"] == "supervisor" and nxt.tags["trading/request_id"] == req.run_key
        # generation 2 dies before publishing anything (status still generation 1): a retry of g2
        g2 = _started(instance, nxt)
        _end(instance, g2, "PIPELINE_FAILURE")
        (retry,), _, _ = _evaluate(paper_supervisor_sensor, instance, env)
        assert retry.run_key == f"{sid}:g2:a2"
        _end(instance, _started(instance, retry), "PIPELINE_FAILURE")
        # three failures in a row for the same request: no more restarts until a human resumes
        out, cursor, skip = _evaluate(paper_supervisor_sensor, instance, env)
        assert out == [] and "3 runs" in (skip or "")
        assert sid in (cursor or "")  # retired until its request log changes


def test_the_supervisor_cancels_a_zombie_even_while_paused_and_never_restarts_a_user_terminated_run(
        env: PaperEnv) -> None:
    sid = env.session(btc_request(**SHORT), heartbeat_s=1, stale_after_s=5)
    with dg.instance_for_test() as instance:
        (req,), _, _ = _evaluate(paper_requests_sensor, instance, env)
        zombie = _started(instance, req)
        _beat(env, sid, zombie.run_id, 60)
        env.store.request(sid, "pause")  # it died before it saw the pause: it still holds its slot
        out, _, _ = _evaluate(paper_supervisor_sensor, instance, env)
        assert out == []
        dead = instance.get_run_by_id(zombie.run_id)
        assert dead.status == dg.DagsterRunStatus.CANCELED and dead.tags["trading/cancelled_by"] == "supervisor"
        # resume: the requests sensor serves it; the user then terminates that run in the UI
        env.store.request(sid, "resume")
        (res,), _, _ = _evaluate(paper_requests_sensor, instance, env)
        run = _started(instance, res)
        instance.report_run_canceling(run)
        _end(instance, run, "PIPELINE_CANCELED")
        _beat(env, sid, run.run_id, 60)
        out, _, skip = _evaluate(paper_supervisor_sensor, instance, env)
        assert out == [] and "terminated by a user" in (skip or "")


def test_a_started_run_that_never_publishes_is_replaced_after_the_start_grace(env: PaperEnv) -> None:
    sid = env.session(btc_request(**SHORT), heartbeat_s=1, stale_after_s=5)
    with dg.instance_for_test() as instance:
        (req,), _, _ = _evaluate(paper_requests_sensor, instance, env)
        run = _started(instance, req)  # status.json has no heartbeat of it (none at all)
        assert _evaluate(paper_supervisor_sensor, instance, env)[0] == []  # within the 120 s grace
        impatient = PaperResource(trading_config=TradingConfigResource(), market_data=MarketDataResource(),
                                  data_dir=str(env.root), warehouse_path=str(env.warehouse.path),
                                  start_grace_s=0.001)
        with dg.build_sensor_context(instance=instance, definitions=_defs(env),
                                     resources={"paper": impatient}) as ctx:
            data = paper_supervisor_sensor.evaluate_tick(ctx)
        assert [r.run_key for r in data.run_requests] == [f"{sid}:g1"]
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.CANCELED


def test_lease_held_fails_the_run_and_lease_lost_ends_it_cleanly(env: PaperEnv,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    from trading_core.warehouse.paper import LeaseLost

    sid = env.session(btc_request(**SHORT))
    rid = env.store.requests(sid)[0].request_id
    env.ledger.migrate()
    with env.ledger.connect() as con:
        env.ledger.take_lease(con, sid, "someone-else", stale_after_s=30)
    with dg.instance_for_test() as instance:
        res = paper_trading_job.execute_in_process(instance=instance, run_config=run_config(sid, rid),
                                                   resources={"paper": _paper(env)}, raise_on_error=False)
        assert not res.success
        failure = res.failure_data_for_node("run_paper_session")
        assert failure is not None and "someone-else" in failure.error.message
        assert instance.get_run_by_id(res.run_id).tags["trading/outcome"] == "lease_held"

    class Fenced(PaperResource):
        def runner(self, session_id: str, **kw: object) -> object:  # type: ignore[override]
            class _R:
                def run(self) -> object:
                    raise LeaseLost(f"session {session_id}: the lease is at generation 9")
            return _R()

    fenced = Fenced(trading_config=TradingConfigResource(), market_data=MarketDataResource(), data_dir=str(env.root))
    with dg.instance_for_test() as instance:
        res = paper_trading_job.execute_in_process(instance=instance, run_config=run_config(sid, rid),
                                                   resources={"paper": fenced})
        assert res.success
        assert instance.get_run_by_id(res.run_id).tags["trading/outcome"] == "lease_lost"
        logs = [e.message for e in instance.all_logs(res.run_id) if e.level == logging.WARNING]
        assert any("a newer run owns the session" in m for m in logs)


def test_the_op_records_its_outcome_as_output_metadata_and_its_worker_pid(env: PaperEnv) -> None:
    sid = env.session(btc_request(**SHORT))
    rid = env.store.requests(sid)[0].request_id
    with dg.instance_for_test() as instance:
        res = paper_trading_job.execute_in_process(instance=instance, run_config=run_config(sid, rid),
                                                   resources={"paper": _paper(env)})
        (event,) = [e for e in res.events_for_node("run_paper_session") if e.is_successful_output]
        meta = event.step_output_data.metadata
        assert meta["state"].value == "completed" and meta["bars_processed"].value == 336
        assert meta["generation"].value == 1 and meta["new_bars"].value == 336
        tags = instance.get_run_by_id(res.run_id).tags
        assert tags["trading/worker_pid"] == str(os.getpid())  # the in-process executor: the worker itself


def test_a_refused_session_fails_its_run_and_is_not_restarted(env: PaperEnv) -> None:
    sid = env.session(btc_request(**SHORT, risk=None))  # the pre-flight refuses an unarmed session
    with dg.instance_for_test() as instance:
        (req,), _, _ = _evaluate(paper_requests_sensor, instance, env)
        res = paper_trading_job.execute_in_process(instance=instance, run_config=req.run_config,
                                                   resources={"paper": _paper(env)}, tags=dict(req.tags),
                                                   raise_on_error=False)
        assert not res.success
        failure = res.failure_data_for_node("run_paper_session")
        assert failure is not None and "pre-flight refused" in (failure.error.message if failure.error else "")
        assert env.store.status(sid)["state"] == "failed"
        out, cursor, skip = _evaluate(paper_supervisor_sensor, instance, env)
        assert out == [] and "finished: failed" in (skip or "") and sid in (cursor or "")
