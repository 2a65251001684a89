"""Paper trading under a real Dagster instance: the job, the requests sensor, the supervisor."""

from __future__ import annotations

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
    assert d.resolve_job_def("paper_trading_job").tags["trading/loop"] == "paper"
    names = {s.name for s in d.sensors}
    assert {"paper_requests_sensor", "paper_supervisor_sensor"} <= names


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
