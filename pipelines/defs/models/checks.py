"""Drift checks on ``champion_model``: feature drift (PSI, KS), prediction drift, performance
decay, measured together by ``ml.lifecycle.drift_check`` (stored in ml.drift_*) and reported with
severity WARN or ERROR from the ``models.drift`` thresholds."""

from collections.abc import Iterator

import dagster as dg

from trading_core.ml import lifecycle as lc

from ..resources import TradingConfigResource, WarehouseResource
from .assets import champion_model
from .resources import MlflowResource

CHECKS = ("features_are_stable", "predictions_are_stable", "live_accuracy_holds")
_STATUS_KEY = {"features_are_stable": "feature_status", "predictions_are_stable": "prediction_status",
               "live_accuracy_holds": "performance_status"}


def check_result(name: str, status: str, metadata: dict[str, object]) -> dg.AssetCheckResult:
    severity = dg.AssetCheckSeverity.ERROR if status == "fail" else dg.AssetCheckSeverity.WARN
    return dg.AssetCheckResult(asset_key=champion_model.key, check_name=name, passed=status == "ok",
                               severity=severity, metadata={"status": status, **metadata})


@dg.multi_asset_check(specs=[dg.AssetCheckSpec(n, asset=champion_model) for n in CHECKS], pool="duckdb_writer",
                      description="Drift of the champion: reference = its training rows, current = the latest window.")
def champion_drift_checks(trading_config: TradingConfigResource, warehouse: WarehouseResource,
                          mlflow: MlflowResource) -> Iterator[dg.AssetCheckResult]:
    out = lc.drift_check(trading_config.load().models, warehouse.get(), mlflow.registry())
    s = out["summary"]
    meta = {"features_are_stable": {"max_psi": s["feature"]["max_psi"], "features_failing": s["feature"]["fail"],
                                    "min_ks_pvalue": s["feature"]["min_ks_pvalue"]},
            "predictions_are_stable": {"psi": s["prediction"]["psi"]},
            "live_accuracy_holds": {k: v for k, v in s["performance"].items() if isinstance(v, int | float)}}
    for name in CHECKS:
        yield check_result(name, out[_STATUS_KEY[name]], {"check_id": out["check_id"], "version": out["version"],
                                                          **meta[name]})
