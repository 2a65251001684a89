"""The stress assets: thin shells over ``trading_core.stress.suite``.

``crisis_stress`` has one static partition per crisis of the catalogue (``config/crises.yaml``):
each materialisation runs every configured strategy and buy-and-hold through that window with the
risk layer on and off, plus the configured Monte Carlo paths, and stores one ``stress`` run. A
window the warehouse does not hold materialises too, with status ``no data`` in its metadata and
rows -- reported, never skipped. ``parameter_stability`` runs the configured sweeps and
walk-forward folds. Both write the warehouse, so both take the ``duckdb_writer`` pool.
"""

from functools import cache

import dagster as dg

from trading_core.config import load_config

from ..resources import TradingConfigResource, WarehouseResource

STRESS_RETRY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


@cache
def crisis_names() -> tuple[str, ...]:
    """The catalogue's crisis names, read when definitions load (the static partitions)."""
    from trading_core.stress.catalogue import load_catalogue

    return tuple(c.name for c in load_catalogue(load_config().stress.crises_file).crises)


crisis_partitions = dg.StaticPartitionsDefinition(list(crisis_names()))


@dg.asset(
    name="crisis_stress",
    group_name="stress",
    partitions_def=crisis_partitions,
    pool="duckdb_writer",
    retry_policy=STRESS_RETRY,
    kinds={"duckdb", "numba", "plotly"},
    description="Survival report of every configured strategy and buy-and-hold through one crisis window, risk "
                "layer on and off, plus Monte Carlo paths; stress.runs / survival / montecarlo and figures in "
                "<data_dir>/stress/<run_id>/. Uncovered windows report 'no data'.",
    metadata={"tables": "stress.runs, stress.survival, stress.montecarlo, stress.montecarlo_percentiles"},
)
def crisis_stress(context: dg.AssetExecutionContext, trading_config: TradingConfigResource,
                  warehouse: WarehouseResource) -> dg.MaterializeResult:
    from trading_core.stress.suite import run_stress, select_crises

    cfg = trading_config.load()
    crisis = select_crises(cfg.stress, [context.partition_key])
    run = run_stress(cfg, warehouse.get(), crises=crisis, montecarlo=True, run_id=None)
    out = run.to_dict()
    statuses = sorted({w["status"] for w in out["windows"]})
    status = "no data" if statuses == ["no data"] else ("partial" if "ok" not in statuses else "ok")
    if status == "no data":
        context.log.warning(f"{context.partition_key}: no data in the warehouse for this window; "
                            + "; ".join(sorted({w['coverage']['note'] for w in out['windows']})))
    return dg.MaterializeResult(metadata={
        "status": status, "run_id": run.run_id,
        "windows": len(out["windows"]),
        "no_data_windows": sum(1 for w in out["windows"] if w["status"] == "no data"),
        "failed": sum(1 for w in out["windows"] if w["survived"] is False),
        "max_drawdown": dg.MetadataValue.json({
            f"{w['symbol']} {w['strategy']} risk {'on' if w['risk'] else 'off'}": w["max_drawdown"]
            for w in out["windows"]}),
        "montecarlo": dg.MetadataValue.json([
            {k: m.get(k) for k in ("symbol", "paths", "draws", "prob_ruin", "status", "note", "paths_per_s")}
            for m in out["montecarlo"]]),
        "figures": dg.MetadataValue.json(out["figures"]),
    })


@dg.asset(
    name="parameter_stability",
    group_name="stress",
    pool="duckdb_writer",
    retry_policy=STRESS_RETRY,
    kinds={"duckdb", "numba", "plotly"},
    description="Grid sweeps on the many-portfolio kernel and walk-forward optimisation of the configured sweeps: "
                "plateau score, optimum drift, in/out-of-sample metric, overfit flag (stress.stability, "
                "stress.optimisation_history) and a heatmap per sweep.",
    metadata={"tables": "stress.runs, stress.stability, stress.optimisation_history"},
)
def parameter_stability(context: dg.AssetExecutionContext, trading_config: TradingConfigResource,
                        warehouse: WarehouseResource) -> dg.MaterializeResult:
    from trading_core.stress.suite import run_stability_job

    cfg = trading_config.load()
    run = run_stability_job(cfg, warehouse.get())
    out = run.to_dict()
    return dg.MaterializeResult(metadata={
        "run_id": run.run_id,
        "sweeps": dg.MetadataValue.json([{k: s.get(k) for k in ("sweep", "status", "note", "best_params",
                                                                  "robust_params", "plateau_score", "optimum_drift",
                                                                  "overfit")} for s in out["stability"]]),
        "figures": dg.MetadataValue.json(out["figures"]),
    })


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[crisis_stress, parameter_stability])
