"""The crisis-partitioned stress asset in a temporary Dagster instance on the sample history:
covered crises materialise with results in the warehouse; uncovered ones materialise as 'no data'."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
import yaml

from pipelines.defs.resources import TradingConfigResource, WarehouseResource
from pipelines.defs.stress.assets import crisis_names, crisis_stress, parameter_stability
from pipelines.defs.stress.jobs import stability_nightly_schedule, stress_job, stress_weekly_schedule
from tests.paper_support import sample_warehouse
from trading_core.warehouse.stress import read_runs, read_survival


@pytest.fixture
def resources(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    doc = yaml.safe_load(Path("config/trading.yaml").read_text())
    doc["data_dir"] = str(tmp_path / "data")
    doc.setdefault("stress", {}).update({
        "strategies": [{"name": "ma_crossover", "params": {"fast": 10, "slow": 30}}],
        "montecarlo": {"paths": 20, "paths_per_chunk": 10},
        "stability": {"walk_forward": {"train_bars": 300, "test_bars": 150, "max_folds": 2},
                      "sweeps": [{"name": "gspc_tiny", "strategy": "ma_crossover", "venue": "yahoo",
                                  "symbol": "^GSPC", "timeframe": "1d", "start": "2006-01-01",
                                  "end": "2009-12-31", "grid": {"fast": [5, 10], "slow": [30, 60]}}]}})
    path = tmp_path / "trading.yaml"
    path.write_text(yaml.safe_dump(doc))
    wh = sample_warehouse(tmp_path / "warehouse.duckdb", tmp_path_factory.getbasetemp())
    config = TradingConfigResource(config_path=str(path))
    return {"trading_config": config, "warehouse": WarehouseResource(trading_config=config, path=str(wh.path))}


def test_partitioned_stress_job_materialises_covered_crises_and_reports_no_data_for_uncovered(
        resources: dict[str, object], instance: dg.DagsterInstance) -> None:
    assert {"gfc_2008", "covid_2020", "crypto_winter_2018"} <= set(crisis_names())
    got = {}
    for key in ("volmageddon_2018", "covid_2020"):
        res = dg.materialize([crisis_stress], partition_key=key, resources=resources, instance=instance)
        assert res.success
        (mat,) = res.asset_materializations_for_node("crisis_stress")
        got[key] = {k: v.value for k, v in mat.metadata.items()}
    assert got["volmageddon_2018"]["status"] == "ok" and got["volmageddon_2018"]["windows"] == 2 * 2 * 2
    dd = got["volmageddon_2018"]["max_drawdown"]
    assert dd["^GSPC buy_and_hold risk off"] < -0.05  # February 2018 is in the data
    # the test warehouse holds no ^IXIC: those cells are there, as no data
    assert got["volmageddon_2018"]["no_data_windows"] == 4 and dd["^IXIC buy_and_hold risk off"] is None
    assert got["covid_2020"]["status"] == "no data"
    assert got["covid_2020"]["montecarlo"][0]["status"] == "no data"
    (mc,) = got["volmageddon_2018"]["montecarlo"]
    assert mc["paths"] == 20 and mc["draws"] == 20  # every path its own execution draw
    wh = resources["warehouse"].get()  # type: ignore[attr-defined]
    with wh.connect(read_only=True) as con:
        runs = read_runs(con)
        rows = read_survival(con, got["covid_2020"]["run_id"])
    assert runs.height == 2 and set(runs["scope"]) == {"volmageddon_2018", "covid_2020"}
    assert rows.height == 8 and set(rows["status"]) == {"no data"}
    events = instance.get_materialized_partitions(dg.AssetKey("crisis_stress"))
    assert events == {"volmageddon_2018", "covid_2020"}


def test_stability_asset_stores_a_sweep(resources: dict[str, object], instance: dg.DagsterInstance) -> None:
    res = dg.materialize([parameter_stability], resources=resources, instance=instance)
    assert res.success
    (mat,) = res.asset_materializations_for_node("parameter_stability")
    (sweep,) = mat.metadata["sweeps"].value
    assert sweep["sweep"] == "gspc_tiny" and isinstance(sweep["overfit"], bool)


def test_schedules_target_the_jobs_and_request_every_crisis(resources: dict[str, object],
                                                            instance: dg.DagsterInstance) -> None:
    assert stress_weekly_schedule.job_name == stress_job.name
    assert stability_nightly_schedule.job_name == "stability_job"
    when = datetime(2026, 1, 3, 3, 0, tzinfo=UTC)
    repo = dg.Definitions(assets=[crisis_stress], jobs=[stress_job],
                          schedules=[stress_weekly_schedule], resources=resources).get_repository_def()
    with dg.build_schedule_context(instance=instance, scheduled_execution_time=when, repository_def=repo) as ctx:
        reqs = stress_weekly_schedule.evaluate_tick(ctx).run_requests
    assert reqs is not None and sorted(r.partition_key for r in reqs) == sorted(crisis_names())
    assert len({r.run_key for r in reqs}) == len(reqs) and all(when.isoformat() in r.run_key for r in reqs)


def test_definitions_pin_the_stress_jobs_schedules_and_pool() -> None:
    from pipelines.definitions import defs

    d = defs()
    graph = d.resolve_asset_graph()
    assert {"crisis_stress", "parameter_stability"} <= {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert graph.get(dg.AssetKey("crisis_stress")).pools == {"duckdb_writer"}
    assert graph.get(dg.AssetKey("parameter_stability")).pools == {"duckdb_writer"}
    job = d.resolve_job_def("stress_job")
    assert job.partitions_def is not None and list(job.partitions_def.get_partition_keys()) == list(crisis_names())
    weekly, nightly = d.resolve_schedule_def("stress_weekly_schedule"), d.resolve_schedule_def(
        "stability_nightly_schedule")
    assert (weekly.cron_schedule, nightly.cron_schedule) == ("0 3 * * 6", "30 2 * * *")
    assert weekly.default_status == nightly.default_status == dg.DefaultScheduleStatus.RUNNING
