"""Dagster: the pipeline-health sensor reads real runs and asset-check results from a temporary
instance and stores them (the app's JSON document and the warehouse's ops tables); a busy
warehouse skips only the upsert."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
from app_support import HEALTH_DEFS, run_health_jobs, run_prices_job

from pipelines.definitions import defs
from pipelines.defs.reports.pipeline_health import pipeline_health_sensor
from pipelines.defs.resources import TradingConfigResource
from trading_core.ops.pipeline_health import health_path, read_pipeline_health
from trading_core.warehouse import Warehouse
from trading_core.warehouse.ops_health import read_asset_checks, read_pipeline_runs


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "data"
    monkeypatch.setenv("TRADING_DATA_DIR", str(d))
    Warehouse(d / "warehouse.duckdb").migrate()
    return d


def _tick(inst: dg.DagsterInstance) -> dg.SkipReason:
    ctx = dg.build_sensor_context(instance=inst, definitions=HEALTH_DEFS,
                                  resources={"trading_config": TradingConfigResource()})
    out = pipeline_health_sensor(ctx)
    assert isinstance(out, dg.SkipReason)
    return out


def test_definitions_register_the_pipeline_health_sensor() -> None:
    assert defs().resolve_sensor_def("pipeline_health_sensor").minimum_interval_seconds == 30


def test_a_tick_stores_runs_with_the_failing_step_and_checks_failing_first(data_dir: Path) -> None:
    with dg.instance_for_test() as inst:
        run_health_jobs(inst)
        out = _tick(inst)
    assert "1 failed in 24 h" in str(out.skip_message) and "upserted" in str(out.skip_message)
    health = read_pipeline_health(health_path(data_dir))
    assert health is not None
    latest = {r.job: r for r in health.latest_per_job()}
    assert latest["broken_job"].status == "FAILURE" and latest["broken_job"].session_id == "s-health-1"
    assert latest["prices_job"].status == "SUCCESS" and latest["prices_job"].duration_s is not None
    (failed,) = health.failures()
    assert failed.failed_step == "explode" and "provider answered 503" in (failed.failure or "")
    checks = health.checks_by_urgency()
    assert [(c.check_name, c.passed, c.severity) for c in checks] == [("no_gaps", False, "WARN"),
                                                                       ("rows_positive", True, "ERROR")]
    assert checks[0].description == "2 missing bars at 2019-01-03" and checks[0].evaluated_at is not None
    with Warehouse(data_dir / "warehouse.duckdb").connect(read_only=True) as con:
        runs, stored = read_pipeline_runs(con), read_asset_checks(con)
    assert sorted(runs["status"].to_list()) == ["FAILURE", "SUCCESS"]
    assert "provider answered 503" in runs.filter(runs["job"] == "broken_job")["failure"][0]
    assert stored["check_name"].to_list() == ["no_gaps", "rows_positive"]  # failing first


def test_a_second_tick_upserts_by_run_id_and_check(data_dir: Path) -> None:
    with dg.instance_for_test() as inst:
        run_health_jobs(inst)
        _tick(inst)
        run_prices_job(inst)
        _tick(inst)
    with Warehouse(data_dir / "warehouse.duckdb").connect(read_only=True) as con:
        runs, stored = read_pipeline_runs(con), read_asset_checks(con)
    assert runs.height == 3 and runs["run_id"].n_unique() == 3
    assert stored.height == 2  # one row per (asset, check), the latest evaluation
    health = read_pipeline_health(health_path(data_dir))
    assert health is not None and len(health.runs) == 3


_HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def test_a_busy_warehouse_skips_the_upsert_but_not_the_document(data_dir: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(data_dir / "warehouse.duckdb"), "20"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with dg.instance_for_test() as inst:
            run_health_jobs(inst)
            t0 = time.monotonic()
            out = _tick(inst)
            took = time.monotonic() - t0
    finally:
        holder.kill()
        holder.wait()
    assert "warehouse: skipped: busy" in str(out.skip_message)
    assert took < 10  # the tick waited only the short lock deadline
    health = read_pipeline_health(health_path(data_dir))
    assert health is not None and {r.job for r in health.runs} == {"broken_job", "prices_job"}
    with Warehouse(data_dir / "warehouse.duckdb").connect(read_only=True) as con:
        assert read_pipeline_runs(con).height == 0
