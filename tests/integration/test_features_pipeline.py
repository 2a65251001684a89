"""Feature assets end to end: bars ingested by the real ingest asset from real sample history,
then ``<universe>_features`` materialised into the same temporary warehouse, with its checks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import dagster as dg
import pytest

from pipelines.definitions import defs
from pipelines.defs.features.assets import features_assets
from pipelines.defs.ingest.assets import ingest_assets
from pipelines.defs.ingest.sensors import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from trading_core.features.regimes import REGIMES
from trading_core.market_data.ingest import ingest_series

if TYPE_CHECKING:
    from conftest import Env

pytestmark = pytest.mark.integration


def _range(start: str, end: str) -> dict[str, str]:
    return {ASSET_PARTITION_RANGE_START_TAG: start, ASSET_PARTITION_RANGE_END_TAG: end}


def test_feature_assets_are_defined_downstream_of_bars_with_pool_and_checks() -> None:
    graph = defs().resolve_asset_graph()
    for universe in ("crypto", "equities"):
        node = graph.get(dg.AssetKey(f"{universe}_features"))
        assert dg.AssetKey(f"{universe}_bars") in node.parent_keys
        assert node.pools == {"duckdb_writer"}
        assert node.automation_condition is not None
        # One run brings the whole series up to date, so the asset is not partitioned: the UI shows
        # no partition "missing" that the tables in fact hold.
        assert node.partitions_def is None
    names = {k.name for k in graph.asset_check_keys}
    assert {"equities_features_coverage", "equities_features_no_nan", "equities_features_regimes"} <= names


def test_equities_features_materialise_with_checks_passing(env: Env, instance: dg.DagsterInstance) -> None:
    # Years of history are stored first (as `trading ingest sample` does before Dagster starts), so
    # a one-month partition range is enough: the features asset brings the whole series up to date.
    env.warehouse.migrate()
    for symbol in ("^GSPC", "^VIX"):
        ingest_series(env.warehouse, env.provider, venue="yahoo", symbol=symbol, timeframe="1d",
                      start=datetime(2009, 1, 1, tzinfo=UTC), end=datetime(2012, 12, 1, tzinfo=UTC),
                      calendar="equity")
    tags = _range("2012-12-03", "2012-12-31")
    assets = [ingest_assets()["equities_bars"], features_assets()["equities_features"]]
    result = dg.materialize(assets, resources=env.resources, instance=instance, tags=tags, raise_on_error=False)
    assert result.success
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["equities_features_coverage"].passed
    assert checks["equities_features_no_nan"].passed
    assert checks["equities_features_regimes"].passed
    with env.warehouse.connect(read_only=True) as con:
        bars = con.execute("SELECT count(*) FROM market.bars WHERE symbol = '^GSPC'").fetchall()[0][0]
        feats = con.execute("SELECT count(*) FROM features.indicators WHERE symbol = '^GSPC'").fetchall()[0][0]
        labels = {r[0] for r in con.execute("SELECT DISTINCT regime FROM features.regimes").fetchall()}
    assert bars == feats > 700
    assert labels <= set(REGIMES) and len(labels) >= 2
    # A re-run is incremental and idempotent: nothing new, the checks still pass.
    again = dg.materialize([features_assets()["equities_features"]], resources=env.resources, instance=instance,
                           tags=tags, raise_on_error=False)
    assert again.success
    assert all(e.passed for e in again.get_asset_check_evaluations()
               if e.check_name != "equities_features_regimes")
