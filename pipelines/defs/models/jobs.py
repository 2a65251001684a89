"""Jobs: train (dataset + candidates + champion), drift check, promote and rollback (op jobs);
the weekly retrain schedule and the sensor that retrains once per drift episode."""

import json

import dagster as dg

from trading_core.ml import lifecycle as lc

from ..resources import TradingConfigResource, WarehouseResource
from .assets import champion_model, model_candidates, model_dataset
from .checks import champion_drift_checks
from .resources import MlflowResource

model_train_job = dg.define_asset_job(
    "model_train_job", selection=dg.AssetSelection.assets(model_dataset, model_candidates, champion_model)
    - dg.AssetSelection.checks(champion_drift_checks),
    description="Walk-forward, register the challenger, apply the promotion rule.")

model_drift_job = dg.define_asset_job(
    "model_drift_job", selection=dg.AssetSelection.checks(champion_drift_checks),
    description="Drift checks of the champion (feature PSI/KS, predictions, live accuracy).")


class PromoteConfig(dg.Config):
    version: int = 0  # 0 = the challenger
    force: bool = False


@dg.op(pool="mlflow")
def promote_version(config: PromoteConfig, trading_config: TradingConfigResource, warehouse: WarehouseResource,
                    mlflow: MlflowResource) -> dict:
    return lc.promote(trading_config.load().models, warehouse.get(), mlflow.registry(), config.version or None,
                      force=config.force)


@dg.op(pool="mlflow")
def rollback_champion(trading_config: TradingConfigResource, warehouse: WarehouseResource,
                      mlflow: MlflowResource) -> dict:
    return lc.rollback(trading_config.load().models, warehouse.get(), mlflow.registry())


@dg.job(description="Apply the promotion rule to the challenger (or a version); `force` overrides it.")
def model_promote_job() -> None:
    promote_version()


@dg.job(description="Point `champion` back at the version it replaced.")
def model_rollback_job() -> None:
    rollback_champion()


def _cron() -> str:
    from trading_core.config import load_config

    return load_config().models.retrain_cron


model_retrain_schedule = dg.ScheduleDefinition(
    name="model_retrain_schedule", cron_schedule=_cron(), target=model_train_job, execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING, description="Weekly retrain on the latest window.")

model_drift_schedule = dg.ScheduleDefinition(
    name="model_drift_schedule", cron_schedule="0 2 * * *", target=model_drift_job, execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING, description="Nightly drift checks of the champion.")


def next_retrain(checks: list[tuple[str, str]], cursor: dict[str, object]) -> tuple[str | None, dict[str, object]]:
    """Episode logic, pure: ``checks`` are (check_id, status) oldest first, newer than the cursor's
    last seen. A drift episode starts at the first ``fail`` after a non-fail and lasts until a
    check is no longer ``fail``; the returned run key (the episode's first check id) is given
    once per episode, so a storm of failing checks launches one retrain."""
    in_episode = bool(cursor.get("in_episode", False))
    key = None
    last = cursor.get("last_check")
    for check_id, status in checks:
        last = check_id
        if status == "fail" and not in_episode:
            in_episode, key = True, f"drift-episode-{check_id}"
        elif status != "fail":
            in_episode = False
    return key, {"in_episode": in_episode, "last_check": last}


@dg.sensor(job=model_train_job, minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Retrain once per drift episode (a failing drift check after a passing one).")
def drift_retrain_sensor(context: dg.SensorEvaluationContext, trading_config: TradingConfigResource,
                         warehouse: WarehouseResource) -> dg.SensorResult | dg.SkipReason:
    from trading_core.warehouse import ml as store

    cursor = json.loads(context.cursor) if context.cursor else {}
    cfg = trading_config.load()
    wh = warehouse.get()
    with wh.connect(read_only=True) as con:
        rows = store.latest_drift_checks(con, cfg.models.tracking.registered_model, limit=50)
    checks = [(r["check_id"], r["status"]) for r in reversed(rows.to_dicts())]
    seen = cursor.get("last_check")
    if seen is not None:
        ids = [c for c, _ in checks]
        checks = checks[ids.index(seen) + 1:] if seen in ids else checks
    if not checks:
        return dg.SkipReason("no new drift checks")
    key, new_cursor = next_retrain(checks, cursor)
    runs = [dg.RunRequest(run_key=key, tags={"trading/trigger": "drift"})] if key else []
    return dg.SensorResult(run_requests=runs, cursor=json.dumps(new_cursor))


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[model_dataset, model_candidates, champion_model], asset_checks=[champion_drift_checks],
                          jobs=[model_train_job, model_drift_job, model_promote_job, model_rollback_job],
                          schedules=[model_retrain_schedule, model_drift_schedule], sensors=[drift_retrain_sensor])
