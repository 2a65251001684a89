"""Model assets: ``model_dataset`` -> ``model_candidates`` (walk-forward, register challenger,
promotion rule) -> ``champion_model`` (the alias, with drift checks in checks.py).

Training and registry writes run in pool ``mlflow`` (limit 1: SQLite takes one writer); the
dataset record is a warehouse write (pool ``duckdb_writer``).
"""

import dagster as dg

from trading_core.ml import lifecycle as lc
from trading_core.ml.dataset import build_dataset

from ..ingest.partitions import configured_universes
from ..resources import TradingConfigResource, WarehouseResource
from .resources import MlflowResource


def _features_dep() -> list[str]:
    """The features asset of the universe that lists the configured model series."""
    from trading_core.config import load_config

    m = load_config().models
    return [f"{u.name}_features" for u in configured_universes()
            if u.venue == m.venue and m.symbol in u.symbols and u.timeframe == m.timeframe]


@dg.asset(group_name="models", deps=_features_dep(), pool="duckdb_writer", kinds={"duckdb", "polars"},
          description="Labelled, point-in-time dataset of the model series from the stored features (ml.datasets).")
def model_dataset(trading_config: TradingConfigResource, warehouse: WarehouseResource) -> dg.MaterializeResult:
    from trading_core.warehouse import ml as store

    m = trading_config.load().models
    wh = warehouse.get()
    ds = build_dataset(wh, m.venue, m.symbol, m.timeframe, m.label)
    desc = ds.describe()
    with wh.connect() as con:
        store.write_dataset(con, desc)
    return dg.MaterializeResult(metadata={"rows": ds.rows, "content_hash": ds.content_hash,
                                          "feature_version": ds.feature_version,
                                          "range": f"{desc['start']}..{desc['end']}"})


@dg.asset(group_name="models", deps=[model_dataset], pool="mlflow", kinds={"mlflow", "sklearn", "xgboost"},
          description="Walk-forward of baseline, RF, XGBoost and ensemble; the chosen one registered as "
                      "challenger and the promotion rule applied (decision in ml.promotion_decisions).")
def model_candidates(context: dg.AssetExecutionContext, trading_config: TradingConfigResource,
                     warehouse: WarehouseResource, mlflow: MlflowResource) -> dg.MaterializeResult:
    out = lc.train(trading_config.load().models, warehouse.get(), mlflow.registry(), dagster_run_id=context.run_id)
    scores = {k: {m: round(v, 4) for m, v in s.items() if m in ("auc", "balanced_accuracy", "log_loss", "accuracy")}
              for k, s in out["scores"].items()}
    return dg.MaterializeResult(metadata={
        "version": out["version"], "chosen": out["chosen"], "promoted": out["decision"]["promoted"],
        "reasons": dg.MetadataValue.json(out["decision"]["reasons"]), "scores": dg.MetadataValue.json(scores),
        "notes": dg.MetadataValue.json(out["notes"]), "mlflow_run_id": out["run_id"]})


@dg.asset(group_name="models", deps=[model_candidates], pool="mlflow", kinds={"mlflow"},
          description="The registered champion (alias `champion`); bootstraps one when the registry has none.")
def champion_model(context: dg.AssetExecutionContext, trading_config: TradingConfigResource,
                   warehouse: WarehouseResource, mlflow: MlflowResource) -> dg.MaterializeResult:
    reg = mlflow.registry()
    out = lc.ensure_champion(trading_config.load().models, warehouse.get(), reg, dagster_run_id=context.run_id)
    shown = lc.show(reg)
    return dg.MaterializeResult(metadata={"version": shown["version"], "kind": shown["kind"],
                                          "artifact_sha256": shown["artifact_sha256"], "bootstrap": out["status"],
                                          "aliases": dg.MetadataValue.json(reg.aliases())})
