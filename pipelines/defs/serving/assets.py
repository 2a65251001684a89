"""``serving_snapshot``: the market tables copied into ``data/serving/market_data.duckdb``.

Readers (Streamlit, the CLI's status commands) never open the live warehouse: a reader blocks the
writer in DuckDB. This asset copies the tables they need into a new file and renames it over the
old one (``Warehouse.publish``), so a reader always sees a whole snapshot.

It runs by automation after the ingest assets update, only when their blocking checks passed (an
invalid batch is never published), no upstream partition is missing and no ingest run is in flight
(``ingest/automation.py``): after ``make run`` it publishes ONCE, when the catch-up has settled,
not after every catch-up chunk.
"""

from __future__ import annotations

import dagster as dg

from ..ingest.automation import after_bars_settle
from ..ingest.partitions import asset_name, configured_universes
from ..resources import WarehouseResource

# Not "market.duckdb": DuckDB names the catalog after the file, which would shadow the schema.
SNAPSHOT_FILE = "market_data.duckdb"
SNAPSHOT_TABLES = ["market.bars", "market.ingest_batches", "market.quality_issues", "market.quarantine"]

SERVING_CONDITION = after_bars_settle()


@dg.asset(
    name="serving_snapshot",
    group_name="serving",
    deps=[asset_name(u) for u in configured_universes()],
    pool="duckdb_writer",  # opens the live warehouse read-write to attach the snapshot file
    kinds={"duckdb"},
    automation_condition=SERVING_CONDITION,
    description="Read snapshot of the market tables for the UIs, swapped in atomically.",
    metadata={"tables": dg.MetadataValue.json(SNAPSHOT_TABLES)},
)
def serving_snapshot(warehouse: WarehouseResource) -> dg.MaterializeResult:
    wh = warehouse.get()
    dest = wh.publish(warehouse.serving_path(SNAPSHOT_FILE), SNAPSHOT_TABLES)
    series = wh.series()
    return dg.MaterializeResult(metadata={
        "path": dg.MetadataValue.path(str(dest)),
        "series": len(series),
        "dagster/row_count": sum(s.bars for s in series),
        "size_bytes": dest.stat().st_size,
    })


serving_automation_sensor = dg.AutomationConditionSensorDefinition(
    "serving_automation_sensor",
    target=dg.AssetSelection.groups("serving"),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Evaluates the automation conditions of the serving assets.",
)
