"""The ingest code location end to end: definitions, materialisation into a temporary warehouse,
blocking checks, idempotent re-runs, retries, the schedule and the catch-up sensor.

Bars are real sample history served by a fake provider (see conftest.py); every run uses a
temporary Dagster instance and a temporary warehouse.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import dagster as dg
import polars as pl
import pytest

from pipelines.definitions import defs
from pipelines.defs.ingest.assets import ingest_assets
from pipelines.defs.ingest.sensors import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    catch_up_requests,
)
from pipelines.defs.serving.assets import SNAPSHOT_FILE, serving_snapshot
from trading_core.errors import ProviderError, TransientProviderError
from trading_core.warehouse.snapshots import open_snapshot

if TYPE_CHECKING:
    from conftest import Env

pytestmark = pytest.mark.integration

ASSETS = {"crypto_bars", "equities_bars", "serving_snapshot", "crypto_features", "equities_features"}
CHECKS = {("crypto_bars", "crypto_bars_valid"), ("crypto_bars", "crypto_bars_fresh"),
          ("equities_bars", "equities_bars_valid"), ("equities_bars", "equities_bars_fresh"),
          *((f"{u}_features", f"{u}_features_{c}") for u in ("crypto", "equities")
            for c in ("coverage", "no_nan", "regimes"))}
DAY = "2019-10-16"  # a full day of hourly BTC/USD bars in the sample


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def _materialize(env: Env, instance: dg.DagsterInstance, *, partition_key: str | None = DAY,
                 tags: dict[str, str] | None = None, with_snapshot: bool = True,
                 asset: str = "crypto_bars") -> dg.ExecuteInProcessResult:
    assets = [ingest_assets()[asset], *([serving_snapshot] if with_snapshot else [])]
    return dg.materialize(assets, resources=env.resources, instance=instance,
                          partition_key=partition_key, tags=tags, raise_on_error=False)


def test_definitions_load_with_pinned_names() -> None:
    d = defs()
    graph = d.resolve_asset_graph()
    # Other domains (models, stress, reports) add their own and pin them in their own tests.
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} >= ASSETS
    assert {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys} >= CHECKS
    # Offline (the default config) the partitions are exactly the sample history: days for the
    # hourly crypto bars, months for the daily equity bars (^VIX runs to 2024-06-20).
    for universe, first, last, count in (("crypto", "2017-07-01", "2019-10-17", 839),
                                         ("equities", "1999-01-01", "2024-06-01", 306),
                                         ("crypto_daily", "2014-12-01", "2019-10-01", 59)):
        job = d.resolve_job_def(f"{universe}_ingest_job")
        assert job.partitions_def is not None
        keys = job.partitions_def.get_partition_keys(current_time=datetime(2030, 1, 1, tzinfo=UTC))
        assert (keys[0], keys[-1], len(keys)) == (first, last, count)
        schedule = d.resolve_schedule_def(f"{universe}_ingest_schedule")
        assert (schedule.cron_schedule, schedule.execution_timezone) == ("15 0 * * *", "UTC")
        assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
        node = graph.get(dg.AssetKey(f"{universe}_bars"))
        assert node.pools == {"duckdb_writer"}
        assert node.backfill_policy == dg.BackfillPolicy.single_run()
    assert graph.get(dg.AssetKey("serving_snapshot")).pools == {"duckdb_writer"}
    spec = {k.name: graph.get_check_spec(k) for k in graph.asset_check_keys}
    assert spec["crypto_bars_valid"].blocking and spec["equities_bars_valid"].blocking
    assert not spec["crypto_bars_fresh"].blocking  # a WARN must not hold the snapshot back
    sensors = {s.name: s for s in d.sensors or []}
    assert set(sensors) >= {"ingest_catch_up_sensor", "serving_automation_sensor", "features_automation_sensor",
                            "paper_requests_sensor", "paper_supervisor_sensor"}
    assert all(s.default_status == dg.DefaultSensorStatus.RUNNING for s in sensors.values())


def test_live_partitions_run_to_now_and_intraday_equities_skip_weekends() -> None:
    from pipelines.defs.ingest.partitions import configured_universes, partitions_for

    now = datetime(2026, 12, 2, 12, tzinfo=UTC)
    by_name = {u.name: u for u in configured_universes()}
    crypto, equities = by_name["crypto"], by_name["equities"]
    live = partitions_for(crypto, "live").get_partition_keys(current_time=now)
    assert (live[0], live[-1]) == ("2017-07-01", "2026-12-01")
    monthly = partitions_for(equities, "live").get_partition_keys(current_time=now)
    assert monthly[-1] == "2026-12-01"  # the running month is a partition the schedule refreshes
    hourly = equities.model_copy(update={"timeframe": "1h", "start": datetime(2019, 1, 1).date()})
    keys = partitions_for(hourly, "live").get_partition_keys(current_time=datetime(2019, 1, 8, tzinfo=UTC))
    assert "2019-01-05" not in keys and "2019-01-04" in keys  # Saturday excluded


def test_partition_lands_rows_checks_pass_and_snapshot_publishes(env: Env, instance: dg.DagsterInstance) -> None:
    result = _materialize(env, instance)
    assert result.success
    checks = _checks(result)
    assert checks["crypto_bars_valid"].passed and checks["crypto_bars_fresh"].passed
    md = result.asset_materializations_for_node("crypto_bars")[0].metadata
    assert md["rows_inserted"].value == 24
    bars = env.warehouse.read_bars("coinbase", "BTC/USD", "1h")
    assert bars.height == 24 and bars["ts"].min() == datetime(2019, 10, 16, tzinfo=UTC)
    snap = env.serving / SNAPSHOT_FILE
    assert snap.exists()
    con = open_snapshot(snap)
    try:
        assert con.execute("SELECT count(*) FROM market.bars").fetchall()[0][0] == 24
    finally:
        con.close()


def test_rematerialization_is_idempotent(env: Env, instance: dg.DagsterInstance) -> None:
    assert _materialize(env, instance, with_snapshot=False).success
    before = env.warehouse.digest()
    calls = len(env.provider.calls)
    again = _materialize(env, instance, with_snapshot=False)
    assert again.success
    md = again.asset_materializations_for_node("crypto_bars")[0].metadata
    assert md["rows_inserted"].value == 0 and md["rows_revised"].value == 0
    assert env.warehouse.digest() == before
    assert len(env.provider.calls) == calls  # the stored range needs no fetch at all


def test_rerun_of_a_stored_window_succeeds_with_a_note(env: Env, instance: dg.DagsterInstance) -> None:
    assert _materialize(env, instance, with_snapshot=False).success
    result = _materialize(env, instance, with_snapshot=False)
    assert result.success
    md = result.asset_materializations_for_node("crypto_bars")[0].metadata
    assert md["rows_inserted"].value == 0 and "no new bars" in str(md["note"].value)
    assert all(e.passed for e in result.get_asset_check_evaluations())


def test_equity_month_partition_ingests_every_symbol(env: Env, instance: dg.DagsterInstance) -> None:
    result = _materialize(env, instance, partition_key="2018-12-01", asset="equities_bars",
                          with_snapshot=False)
    assert result.success and all(e.passed for e in result.get_asset_check_evaluations())
    for symbol in ("^GSPC", "^IXIC", "^VIX"):
        month = env.provider.bars[symbol].filter(
            (pl.col("ts") >= datetime(2018, 12, 1, tzinfo=UTC)) & (pl.col("ts") < datetime(2019, 1, 1, tzinfo=UTC)))
        assert env.warehouse.read_bars("yahoo", symbol, "1d").height == month.height == 19


def _high_below_low(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 5).then(pl.col("low") - 50).otherwise(pl.col("high")).alias("high"))


def _conflicting_duplicate(frame: pl.DataFrame) -> pl.DataFrame:
    return pl.concat([frame, frame.slice(3, 1).with_columns(pl.col("close") * 1.07,
                                                            pl.col("high") * 1.07)])


@pytest.mark.parametrize("corrupt", [_high_below_low, _conflicting_duplicate],
                         ids=["high_below_low", "conflicting_duplicate"])
def test_bad_batch_fails_blocking_check_and_stops_snapshot(env: Env, instance: dg.DagsterInstance,
                                                           corrupt) -> None:  # type: ignore[no-untyped-def]
    env.provider.corrupt = corrupt
    result = _materialize(env, instance)
    valid = _checks(result)["crypto_bars_valid"]
    assert not valid.passed and valid.severity == dg.AssetCheckSeverity.ERROR
    assert valid.metadata["blocking_rules"].value  # rule codes are listed
    assert not result.asset_materializations_for_node("serving_snapshot")
    assert not (env.serving / SNAPSHOT_FILE).exists()
    issues = env.warehouse.query("SELECT rule, action FROM market.quality_issues")
    assert issues.height >= 1
    quarantined = env.warehouse.query("SELECT count(*) AS n FROM market.quarantine")["n"][0]
    rejected = env.warehouse.query(
        "SELECT count(*) AS n FROM market.ingest_batches WHERE status = 'rejected'")["n"][0]
    assert quarantined + rejected >= 1


def test_transient_error_is_retried_and_provider_error_is_not(env: Env, instance: dg.DagsterInstance) -> None:
    env.provider.fail_with = [TransientProviderError("timeout")]
    assert _materialize(env, instance, with_snapshot=False).success
    assert len(env.provider.calls) == 2

    env.provider.calls.clear()
    env.provider.fail_with = [ProviderError("BadSymbol BTC/USD"), ProviderError("again")]
    result = _materialize(env, instance, partition_key="2019-10-15", with_snapshot=False)
    assert not result.success
    assert len(env.provider.calls) == 1  # no retry: the same input fails the same way


def test_range_run_ingests_many_partitions_with_one_fetch(env: Env, instance: dg.DagsterInstance) -> None:
    tags = {ASSET_PARTITION_RANGE_START_TAG: "2019-10-10", ASSET_PARTITION_RANGE_END_TAG: "2019-10-16"}
    result = _materialize(env, instance, partition_key=None, tags=tags, with_snapshot=False)
    assert result.success
    assert len(env.provider.calls) == 1
    assert len(instance.get_materialized_partitions(dg.AssetKey("crypto_bars"))) == 7
    assert env.warehouse.read_bars("coinbase", "BTC/USD", "1h").height == 7 * 24


def test_schedule_ticks_request_the_partition_of_the_day_that_ended(instance: dg.DagsterInstance) -> None:
    d = defs()
    repo = d.get_repository_def()
    expected = {
        ("crypto_ingest_schedule", datetime(2019, 10, 17, 0, 15, tzinfo=UTC)): "2019-10-16",
        ("equities_ingest_schedule", datetime(2019, 10, 19, 0, 15, tzinfo=UTC)): "2019-10-01",
        ("equities_ingest_schedule", datetime(2019, 11, 1, 0, 15, tzinfo=UTC)): "2019-10-01",
    }
    for (name, when), key in expected.items():
        ctx = dg.build_schedule_context(instance=instance, scheduled_execution_time=when, repository_def=repo)
        data = d.resolve_schedule_def(name).evaluate_tick(ctx)
        assert [r.partition_key for r in data.run_requests or []] == [key], (name, when)
    # Offline, past the end of the sample history there is nothing to ingest: skipped, with why.
    ctx = dg.build_schedule_context(instance=instance, scheduled_execution_time=datetime(2026, 12, 2, 0, 15, tzinfo=UTC),
                                    repository_def=repo)
    data = d.resolve_schedule_def("crypto_ingest_schedule").evaluate_tick(ctx)
    assert not data.run_requests
    assert "offline" in str(data.skip_message) and "2019-10-17" in str(data.skip_message)


def test_catch_up_sensor_requests_oldest_chunk_then_the_next(env: Env, instance: dg.DagsterInstance) -> None:
    now = datetime(2019, 10, 17, 12, tzinfo=UTC)
    requests, _ = catch_up_requests(instance, now, chunk=3)
    by_job = {r.job_name: r.tags for r in requests}
    assert by_job["crypto_ingest_job"][ASSET_PARTITION_RANGE_START_TAG] == "2017-07-01"
    assert by_job["crypto_ingest_job"][ASSET_PARTITION_RANGE_END_TAG] == "2017-07-03"
    assert (by_job["equities_ingest_job"][ASSET_PARTITION_RANGE_START_TAG],
            by_job["equities_ingest_job"][ASSET_PARTITION_RANGE_END_TAG]) == ("1999-01-01", "1999-03-01")
    assert _materialize(env, instance, partition_key=None, with_snapshot=False,
                        tags=by_job["crypto_ingest_job"]).success
    requests, _ = catch_up_requests(instance, now, chunk=3)
    crypto = next(r for r in requests if r.job_name == "crypto_ingest_job")
    assert (crypto.tags[ASSET_PARTITION_RANGE_START_TAG], crypto.tags[ASSET_PARTITION_RANGE_END_TAG]) == (
        "2017-07-04", "2017-07-06")
    # With the default chunk, the whole offline history of each universe is ONE run.
    requests, _ = catch_up_requests(instance, now)
    crypto = next(r for r in requests if r.job_name == "crypto_ingest_job")
    assert (crypto.tags[ASSET_PARTITION_RANGE_START_TAG], crypto.tags[ASSET_PARTITION_RANGE_END_TAG]) == (
        "2017-07-04", "2019-10-16")  # the newest partition belongs to the schedule for its first hour
    # The sensor itself evaluates within the loaded definitions.
    sensor = defs().resolve_sensor_def("ingest_catch_up_sensor")
    data = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, definitions=defs()))
    assert {r.job_name for r in data.run_requests or []} == {"crypto_ingest_job", "equities_ingest_job",
                                                             "crypto_daily_ingest_job"}


def test_real_sample_provider_through_the_default_resource(env: Env, instance: dg.DagsterInstance,
                                                           sample_dir) -> None:  # type: ignore[no-untyped-def]
    """The production wiring: MarketDataResource -> build_provider -> the offline sample provider."""
    from pipelines.defs.resources import MarketDataResource

    env.resources["market_data"] = MarketDataResource(mode="offline")
    result = _materialize(env, instance, with_snapshot=False)
    assert result.success and all(e.passed for e in result.get_asset_check_evaluations())
    assert env.warehouse.read_bars("coinbase", "BTC/USD", "1h").height == 24
