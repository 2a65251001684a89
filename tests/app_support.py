"""A data directory seeded the way a user's gets it, for the app's tests and the browser test.

Everything is produced by really running the platform on the offline sample history: the
warehouse (``paper_support.sample_warehouse``), features and regimes (``update_features``), the
serving snapshot (``Warehouse.publish``, as the Dagster ``serving_snapshot`` asset does), one
ingest batch with findings and a quarantined row (the validator on real bars with a broken one),
a stored backtest (``run_backtest``), one completed replay session (``SessionRunner``), one
session that was requested but never launched, and pipeline health read from a real temporary
Dagster instance (a job whose asset has a passing and a warning check, and a job that fails).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import dagster as dg
import polars as pl
from paper_support import PaperEnv, btc_request

SNAPSHOT_TABLES = ["market.bars", "market.ingest_batches", "market.quality_issues", "market.quarantine"]


@dataclass(frozen=True)
class Seeded:
    root: Path
    completed: str  # a replay session that ran to its end
    pending: str  # a session with only its start request
    backtest: str  # run id of a stored backtest


def _bad_batch(env: PaperEnv) -> None:
    """Real ETH-like bars cut from BTC history with one high below its low: validated and stored
    the way ingestion stores a batch (accepted rows, the finding, the quarantined row)."""
    from trading_core.config import load_config
    from trading_core.market_data.validation import validate_bars

    bars = env.warehouse.read_bars("coinbase", "BTC/USD", "1h", datetime(2019, 5, 1, tzinfo=UTC),
                                   datetime(2019, 5, 3, tzinfo=UTC))
    broken = bars.with_columns(pl.when(pl.int_range(pl.len()) == 10).then(pl.col("low") * 0.5)
                               .otherwise(pl.col("high")).alias("high"))
    report = validate_bars(broken, timeframe="1h", now=datetime(2020, 1, 1, tzinfo=UTC),
                           config=load_config().market_data.validation)
    env.warehouse.write_report(venue="coinbase", symbol="ETH/USD", timeframe="1h", source="sample", report=report)


@dg.asset(check_specs=[dg.AssetCheckSpec("rows_positive", asset="prices"),
                       dg.AssetCheckSpec("no_gaps", asset="prices")])
def prices() -> dg.MaterializeResult:
    """A tiny asset with one passing check and one failing warning check."""
    yield dg.MaterializeResult(check_results=[
        dg.AssetCheckResult(check_name="rows_positive", passed=True, description="24 rows"),
        dg.AssetCheckResult(check_name="no_gaps", passed=False, severity=dg.AssetCheckSeverity.WARN,
                            description="2 missing bars at 2019-01-03"),
    ])


@dg.op
def explode() -> None:
    raise RuntimeError("provider answered 503 for BTC/USD")


@dg.job(tags={"trading/session_id": "s-health-1"})
def broken_job() -> None:
    explode()


HEALTH_DEFS = dg.Definitions(assets=[prices], jobs=[broken_job, dg.define_asset_job("prices_job", selection=[prices])])


def run_prices_job(inst: dg.DagsterInstance) -> None:
    assert HEALTH_DEFS.resolve_job_def("prices_job").execute_in_process(instance=inst).success


def run_health_jobs(inst: dg.DagsterInstance) -> None:
    """One successful asset job (a passing and a warning check) and one failing job."""
    run_prices_job(inst)
    assert not broken_job.execute_in_process(instance=inst, raise_on_error=False).success


def seed_pipeline_health(root: Path) -> None:
    """What the pipeline_health_sensor records after those two runs (its own collectors and store)."""
    from pipelines.defs.reports.pipeline_health import collect_checks, collect_runs
    from trading_core.ops.pipeline_health import record_pipeline_health

    with dg.instance_for_test() as inst:
        run_health_jobs(inst)
        now = datetime.now(UTC)
        runs = collect_runs(inst, ["prices_job", "broken_job"], now)
        checks = collect_checks(inst, HEALTH_DEFS.resolve_asset_graph().asset_check_keys)
    record_pipeline_health(root, root / "warehouse.duckdb", runs, checks, now)


def seed(root: Path, cache_root: Path) -> Seeded:
    """Build the seeded data directory at ``root`` (about 15 s on a quiet machine)."""
    from trading_core.backtest import run_backtest
    from trading_core.features.pipeline import update_features

    env = PaperEnv(root, cache_root)
    for venue, symbol, tf, cal in (("coinbase", "BTC/USD", "1h", "crypto"), ("yahoo", "^GSPC", "1d", "equity")):
        update_features(env.warehouse, venue, symbol, tf, calendar=cal)  # type: ignore[arg-type]
    _bad_batch(env)
    env.warehouse.publish(root / "serving" / "market_data.duckdb", SNAPSHOT_TABLES)
    bt = run_backtest(btc_request(datetime(2019, 1, 1, tzinfo=UTC), datetime(2019, 3, 1, tzinfo=UTC), persist=True,
                                  risk=None), env.warehouse, run_id="bt-seeded-btc")
    done = env.session(btc_request(datetime(2019, 1, 1, tzinfo=UTC), datetime(2019, 2, 1, tzinfo=UTC)),
                       name="seeded-replay")
    env.run(done)
    pending = env.session(btc_request(datetime(2019, 2, 1, tzinfo=UTC), datetime(2019, 3, 1, tzinfo=UTC)),
                          name="waiting")
    seed_pipeline_health(root)
    return Seeded(root, done, pending, bt.run_id)


@cache
def _template(cache_root: str) -> Seeded:
    return seed(Path(cache_root) / "seeded", Path(cache_root))


def seeded_copy(dest: Path, cache_root: Path) -> Seeded:
    """A fresh copy of the seeded data directory at ``dest`` (built once per ``cache_root``)."""
    t = _template(str(cache_root))
    shutil.copytree(t.root, dest)
    return Seeded(dest, t.completed, t.pending, t.backtest)
