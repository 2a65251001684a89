"""The Dagster model assets materialise end to end on the sample data in a temporary instance,
their drift checks report, and the drift sensor launches exactly one retrain per drift episode."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
import yaml
from paper_support import sample_warehouse  # type: ignore[import-not-found]

from pipelines.defs.models.assets import champion_model, model_candidates, model_dataset
from pipelines.defs.models.checks import champion_drift_checks
from pipelines.defs.models.jobs import drift_retrain_sensor, next_retrain
from pipelines.defs.models.resources import MlflowResource
from pipelines.defs.resources import TradingConfigResource, WarehouseResource
from trading_core.config import DEFAULT_CONFIG_PATH
from trading_core.features.pipeline import update_features
from trading_core.warehouse import ml as store


@pytest.fixture
def resources(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    doc = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    doc["models"].update({"models": ["logistic", "xgboost"], "xgb_rounds": 30,
                          "walk_forward": {"folds": 2, "train_bars": 1000, "test_bars": 400}})
    cfg_path = tmp_path / "trading.yaml"
    cfg_path.write_text(yaml.safe_dump(doc))
    wh = sample_warehouse(tmp_path / "warehouse.duckdb", tmp_path_factory.mktemp("tpl"))
    wh.migrate()
    update_features(wh, "yahoo", "^GSPC", "1d", calendar="equity")
    config = TradingConfigResource(config_path=str(cfg_path))
    return {"trading_config": config,
            "warehouse": WarehouseResource(trading_config=config, path=str(wh.path), serving_dir=str(tmp_path / "s")),
            "mlflow": MlflowResource(trading_config=config, tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
                                     artifact_dir=str(tmp_path / "artifacts"))}


def test_model_assets_materialise_on_the_sample_data_with_drift_checks(resources: dict[str, object]) -> None:
    with dg.instance_for_test() as inst:
        result = dg.materialize([model_dataset, model_candidates, champion_model, champion_drift_checks],
                                resources=resources, instance=inst, raise_on_error=False)
        assert result.success
        mats = {m.asset_key.to_user_string(): m for m in result.get_asset_materialization_events()}
        assert set(mats) == {"model_dataset", "model_candidates", "champion_model"}
        checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
        assert set(checks) == {"features_are_stable", "predictions_are_stable", "live_accuracy_holds"}
        assert all(e.metadata["status"].value in ("ok", "warn", "fail") for e in checks.values())
    wh = resources["warehouse"].get()  # type: ignore[attr-defined]
    with wh.connect(read_only=True) as con:
        assert store.latest_drift_checks(con, "ml_signal").height == 1
        assert store.read_training_runs(con).height == 1


def test_next_retrain_gives_one_run_key_per_episode() -> None:
    key, cur = next_retrain([("a", "ok"), ("b", "fail"), ("c", "fail"), ("d", "warn"), ("e", "fail")], {})
    assert key == "drift-episode-e"  # the b..c episode ended at d; e starts a new one
    key2, cur2 = next_retrain([("f", "fail")], cur)
    assert key2 is None and cur2["in_episode"] is True


def test_drift_sensor_launches_exactly_one_retrain_per_drift_episode(resources: dict[str, object]) -> None:
    wh = resources["warehouse"].get()  # type: ignore[attr-defined]
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    n = [0]

    def record(status: str) -> None:
        n[0] += 1
        at = t0 + timedelta(days=n[0])
        with wh.connect() as con:
            store.write_drift_check(con, {"check_id": f"c{n[0]:03d}", "measured_at": at, "model_name": "ml_signal",
                                          "version": 1, "window_start": at, "window_end": at, "status": status,
                                          "feature_status": status, "prediction_status": "ok",
                                          "performance_status": "ok", "summary": {}}, [])

    cursor = None
    launched: list[str] = []
    with dg.instance_for_test() as inst:
        def tick() -> None:
            nonlocal cursor
            with dg.build_sensor_context(instance=inst, cursor=cursor, resources=resources) as ctx:
                data = drift_retrain_sensor.evaluate_tick(ctx)
            launched.extend(r.run_key for r in data.run_requests or [])
            cursor = data.cursor or cursor

        for status in ("ok", "fail", "fail", "fail"):  # one episode, three failing checks
            record(status)
            tick()
        tick()  # nothing new: no run
        for status in ("ok", "fail"):  # the episode ended; a new one starts
            record(status)
            tick()
    assert launched == ["drift-episode-c002", "drift-episode-c006"]
    assert json.loads(cursor or "{}")["in_episode"] is True


def test_model_definitions_load_with_pinned_names_pools_and_schedule() -> None:
    from pipelines.definitions import defs

    d = defs()
    graph = d.resolve_asset_graph()
    assert graph.get(dg.AssetKey("model_dataset")).pools == {"duckdb_writer"}
    assert graph.get(dg.AssetKey("model_candidates")).pools == {"mlflow"}
    assert graph.get(dg.AssetKey("champion_model")).pools == {"mlflow"}
    assert graph.get(dg.AssetKey("model_dataset")).parent_keys == {dg.AssetKey("equities_features")}
    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert {("champion_model", n) for n in ("features_are_stable", "predictions_are_stable",
                                            "live_accuracy_holds")} <= checks
    for job in ("model_train_job", "model_drift_job", "model_promote_job", "model_rollback_job"):
        assert d.resolve_job_def(job).name == job
    sched = d.resolve_schedule_def("model_retrain_schedule")
    assert (sched.cron_schedule, sched.execution_timezone) == ("0 3 * * 0", "UTC")
    assert sched.default_status == dg.DefaultScheduleStatus.RUNNING
    sensors = {s.name: s for s in d.sensors or []}
    assert sensors["drift_retrain_sensor"].default_status == dg.DefaultSensorStatus.RUNNING
