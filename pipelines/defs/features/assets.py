"""One feature asset per configured universe: ``<universe>_features``, downstream of its bars.

NOT partitioned: one run calls ``trading_core.features.pipeline.update_features`` for every symbol
(incremental: only bars not yet covered, with the look-back the indicators need), which brings the
WHOLE series up to date, and then evaluates the checks in checks.py over the whole stored series.
A daily-partitioned features asset showed thousands of partitions "missing" forever although one
run had computed them all; what the UI shows now is what the tables hold. Writes go through the
``duckdb_writer`` pool like every warehouse writer. Automation (``ingest/automation.py``): once the
bars' catch-up has settled and their blocking checks passed, so features are computed once after
``make run`` and never on a batch the validation contract refused.
"""

from datetime import UTC, datetime

import dagster as dg

from trading_core.config import UniverseConfig
from trading_core.errors import WarehouseBusy
from trading_core.features.compute import lookback_bars
from trading_core.features.pipeline import FeaturePipelineConfig, series_spec, update_features

from ..ingest.automation import after_bars_settle
from ..ingest.partitions import asset_name, configured_universes, universe_start
from ..resources import TradingConfigResource, WarehouseResource
from .checks import check_specs, evaluate

FEATURE_RETRY = dg.RetryPolicy(max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL,
                               jitter=dg.Jitter.PLUS_MINUS)


def features_asset_name(universe: UniverseConfig) -> str:
    return f"{universe.name}_features"


def build_features_asset(universe: UniverseConfig) -> dg.AssetsDefinition:
    name = features_asset_name(universe)
    upstream = asset_name(universe)

    @dg.asset(
        name=name,
        group_name="features",
        deps=[upstream],
        description=(f"Indicators and regime labels of {', '.join(universe.symbols)} "
                     f"({universe.venue}, {universe.timeframe}) in features.indicators / features.regimes."),
        pool="duckdb_writer",
        retry_policy=FEATURE_RETRY,
        kinds={"duckdb", "polars"},
        check_specs=check_specs(name),
        automation_condition=after_bars_settle(),
        metadata={"venue": universe.venue, "timeframe": universe.timeframe,
                  "symbols": dg.MetadataValue.json(list(universe.symbols)),
                  "tables": "features.indicators, features.regimes"},
        tags={"trading/universe": universe.name},
    )
    def _features(context: dg.AssetExecutionContext, trading_config: TradingConfigResource,
                  warehouse: WarehouseResource) -> dg.MaterializeResult:
        cfg = trading_config.load()
        current = cfg.universe(universe.name)
        pipeline_cfg = FeaturePipelineConfig(regimes=cfg.regimes)
        wh = warehouse.get()
        results = []
        for symbol in current.symbols:
            try:
                results.append(update_features(wh, current.venue, symbol, current.timeframe, pipeline_cfg,
                                               calendar=current.asset_class))
            except WarehouseBusy:
                raise
            except Exception as e:
                raise dg.Failure(description=f"{current.venue} {symbol} {current.timeframe}: {e}",
                                 allow_retries=False) from e
        warmup = lookback_bars(series_spec(pipeline_cfg.features, current.timeframe, current.asset_class))
        # The whole stored series is what the asset holds, so that is what the checks judge.
        start, end = universe_start(current), datetime.now(UTC)
        with wh.connect(read_only=True) as con:
            checks = evaluate(con, name, current.venue, list(current.symbols), current.timeframe, start, end,
                              warmup)
        return dg.MaterializeResult(
            metadata={"window": f"[{start.isoformat()}, {end.isoformat()})",
                      "per_symbol": dg.MetadataValue.json({r.symbol: {
                          "mode": r.mode, "bars_read": r.bars_read, "features": r.features_written,
                          "regimes": r.regimes_written} for r in results}),
                      "feature_version": results[0].feature_version if results else "",
                      "regime_version": results[0].regime_version if results else ""},
            check_results=checks)

    return _features


def features_assets() -> dict[str, dg.AssetsDefinition]:
    return {features_asset_name(u): build_features_asset(u) for u in configured_universes()}


# Without a sensor evaluating them, the features assets' automation conditions never fire.
features_automation_sensor = dg.AutomationConditionSensorDefinition(
    "features_automation_sensor",
    target=dg.AssetSelection.groups("features"),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Updates features and regimes once new bars have settled and passed their blocking checks.",
)


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=list(features_assets().values()), sensors=[features_automation_sensor])
