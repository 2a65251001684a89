"""What the Dagster UI shows after ``make run``: checks that describe the stored data whoever loaded
it, a freshness text that agrees with its metadata, and downstream assets (serving snapshot,
features) that wait for the catch-up to settle and then materialise once.

Real sample bars behind the fake provider of conftest.py, a temporary instance and warehouse.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

import dagster as dg
import pytest

from pipelines.defs.features.assets import features_assets
from pipelines.defs.ingest.assets import build_ingest_asset, ingest_assets
from pipelines.defs.ingest.partitions import configured_universes
from pipelines.defs.ingest.sensors import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from pipelines.defs.serving.assets import serving_snapshot
from trading_core.config import load_config
from trading_core.market_data.ingest import ingest_series

if TYPE_CHECKING:
    from conftest import Env

pytestmark = pytest.mark.integration


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_valid_check_lists_rows_quarantined_by_a_load_before_dagster(env: Env, instance: dg.DagsterInstance) -> None:
    # As `trading ingest sample` does before Dagster starts: the real ^VIX of 1999 has an open
    # outside its high/low on 1999-04-01, which validation holds out in market.quarantine.
    env.warehouse.migrate()
    ingest_series(env.warehouse, env.provider, venue="yahoo", symbol="^VIX", timeframe="1d",
                  start=datetime(1999, 1, 4, tzinfo=UTC), end=datetime(1999, 6, 1, tzinfo=UTC),
                  validation=load_config().market_data.validation, calendar="equity")
    result = dg.materialize([ingest_assets()["equities_bars"]], resources=env.resources, instance=instance,
                            partition_key="1999-04-01", raise_on_error=False)
    assert result.success
    valid = _checks(result)["equities_bars_valid"]
    assert valid.passed  # this run refused nothing, and market.bars holds only validated bars
    assert valid.metadata["rows_held_in_quarantine"].value == 1
    held = valid.metadata["held_in_quarantine"].value
    assert held["^VIX"]["rules"] == {"ohlc.open_outside_range": 1}  # type: ignore[index]
    assert valid.description is not None
    assert "^VIX 1 (ohlc.open_outside_range 1; 1999-04-01 .. 1999-04-01)" in valid.description
    # A window without held rows says so.
    other = dg.materialize([ingest_assets()["equities_bars"]], resources=env.resources, instance=instance,
                           partition_key="1999-05-01", raise_on_error=False)
    desc = _checks(other)["equities_bars_valid"].description
    assert desc is not None and "no row of this window is held in quarantine" in desc


def test_freshness_text_and_reference_metadata_agree(env: Env, instance: dg.DagsterInstance) -> None:
    result = dg.materialize([ingest_assets()["equities_bars"]], resources=env.resources, instance=instance,
                            partition_key="2018-12-01", raise_on_error=False)
    fresh = _checks(result)["equities_bars_fresh"]
    assert fresh.passed
    refs = fresh.metadata["reference"].value
    # The month ends 2019-01-01, which is also where ^GSPC's sample history ends (last bar 12-31).
    assert refs == {s: "2019-01-01T00:00:00+00:00" for s in ("^GSPC", "^IXIC", "^VIX")}
    assert fresh.description is not None
    assert "end of the sample history" in fresh.description and "2019-01-01T00:00:00+00:00" in fresh.description


def test_serving_and_features_wait_for_the_catch_up_and_request_once(env: Env, instance: dg.DagsterInstance) -> None:
    by_name = {u.name: u for u in configured_universes()}
    crypto, equities, daily = by_name["crypto"], by_name["equities"], by_name["crypto_daily"]
    # Short universes (4 days, 2 months, 2 months of the sample) under the configured names, so the
    # serving snapshot and the features assets depend on them.
    small = {"crypto": build_ingest_asset(crypto.model_copy(update={"start": date(2019, 10, 14)})),
             "equities": build_ingest_asset(equities.model_copy(update={"start": date(2024, 5, 1)})),
             "crypto_daily": build_ingest_asset(daily.model_copy(update={"start": date(2019, 9, 1)}))}
    defs = dg.Definitions(assets=[*small.values(), serving_snapshot, *features_assets().values()],
                          resources=env.resources)
    watched = [dg.AssetKey("serving_snapshot"), dg.AssetKey("crypto_features"), dg.AssetKey("equities_features"),
               dg.AssetKey("crypto_daily_features")]

    def requested(cursor: object = None) -> tuple[dict[dg.AssetKey, int], object]:
        r = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)  # type: ignore[arg-type]
        return {k: r.get_num_requested(k) for k in watched}, r.cursor

    counts, cursor = requested()
    assert set(counts.values()) == {0}  # nothing materialised yet: every upstream partition missing

    def catch_up(asset: dg.AssetsDefinition, first: str, last: str) -> None:
        tags = {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last}
        assert dg.materialize([asset], resources=env.resources, instance=instance, tags=tags).success

    catch_up(small["crypto"], "2019-10-14", "2019-10-17")
    catch_up(small["crypto_daily"], "2019-09-01", "2019-10-01")
    counts, cursor = requested(cursor)
    assert counts[dg.AssetKey("serving_snapshot")] == 0  # equities still missing
    assert counts[dg.AssetKey("crypto_features")] == 1 and counts[dg.AssetKey("crypto_daily_features")] == 1
    catch_up(small["equities"], "2024-05-01", "2024-06-01")
    counts, cursor = requested(cursor)
    assert counts[dg.AssetKey("serving_snapshot")] == 1 and counts[dg.AssetKey("equities_features")] == 1
    counts, cursor = requested(cursor)
    assert set(counts.values()) == {0}  # once: no second request without new bars
