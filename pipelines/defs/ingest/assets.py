"""One ingest asset per configured universe: ``<universe>_bars``, partitioned by UTC day or month.

Each run ingests its partition window ``[start, end)`` for every symbol through
``trading_core.market_data.ingest.ingest_series``, which fetches only what the store lacks,
validates the batch and writes it in one transaction. ``BackfillPolicy.single_run()`` turns a
backfill (or the catch-up sensor's request) over hundreds of partitions into ONE run with one fetch
per symbol, so loading 20 years does not cost thousands of runs (partitions.py says why a universe
has hundreds of partitions, and why offline they span exactly the sample history).

The asset writes through the warehouse resource and returns a ``MaterializeResult`` (no IO
manager: a returned DataFrame would be pickled into Dagster's storage). Its checks are evaluated
from the same ingest results, see ``checks.py``.
"""


from datetime import UTC, datetime, timedelta

import dagster as dg

from trading_core.config import UniverseConfig
from trading_core.errors import TransientProviderError, WarehouseBusy
from trading_core.market_data.ingest import IngestResult, calendar_of, ingest_series
from trading_core.market_data.providers.sample import coverage
from trading_core.timeframes import timeframe_ms
from trading_core.warehouse.bars import quarantined_rows

from ..resources import MarketDataResource, TradingConfigResource, WarehouseResource
from .checks import check_specs, freshness_result, rule_counts, validity_result
from .partitions import (
    asset_name,
    configured_universes,
    freshness_tolerance,
    partition_unit,
    partitions_for,
    universe_start,
    utc,
)

# Network-class failures are retried by Dagster with exponential, jittered backoff (2, 4, 8 s
# +-jitter); everything else is turned into a non-retryable Failure, because a bad symbol, an
# authentication error or a refused batch fails again with the same input.
INGEST_RETRY = dg.RetryPolicy(max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL,
                              jitter=dg.Jitter.PLUS_MINUS)
RETRYABLE: tuple[type[BaseException], ...] = (TransientProviderError, WarehouseBusy)

_LIVE_KINDS = {"ccxt": "ccxt", "yfinance": "yfinance"}


def _kinds(universe: UniverseConfig) -> set[str]:
    """duckdb plus the live provider (Dagster allows at most three kinds per asset)."""
    live = [_LIVE_KINDS[p] for p in universe.providers if p in _LIVE_KINDS]
    return {"duckdb", "polars", *live[:1]}


def _symbol_table(results: list[IngestResult]) -> str:
    head = ("| symbol | source | read | inserted | revised | unchanged | dropped | quarantined | "
            "rules |\n|---|---|---|---|---|---|---|---|---|\n")
    rows = "".join(
        f"| {r.symbol} | {r.source} | {r.rows_read} | {r.inserted} | {r.revised} | {r.unchanged} | "
        f"{r.dropped} | {r.quarantined} | "
        f"{', '.join(f'{k}={v}' for k, v in sorted(r.rule_counts.items())) or '-'} |\n"
        for r in results)
    return head + rows


def _reference(venue: str, symbol: str, timeframe: str, *, end: datetime, now: datetime, offline: bool,
               bar: timedelta) -> datetime:
    """The time a symbol's last stored bar is measured against (checks.py): the window end or now,
    and offline the close of the sample's last bar, whichever is earliest."""
    ref = min(end, now)
    span = coverage(venue, symbol, timeframe) if offline else None
    return min(ref, span[1] + bar) if span else ref


def build_ingest_asset(universe: UniverseConfig) -> dg.AssetsDefinition:
    """The partitioned ingest asset of one universe (name and partitions fixed at load time)."""
    name = asset_name(universe)
    bar = timedelta(milliseconds=timeframe_ms(universe.timeframe))

    @dg.asset(
        name=name,
        group_name="ingest",
        description=(f"{universe.timeframe} OHLCV bars of {', '.join(universe.symbols)} on "
                     f"{universe.venue}, one UTC {partition_unit(universe)} per partition, validated "
                     "and written idempotently to market.bars."),
        partitions_def=partitions_for(universe),
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool="duckdb_writer",
        retry_policy=INGEST_RETRY,
        kinds=_kinds(universe),
        check_specs=check_specs(name),
        metadata={"venue": universe.venue, "timeframe": universe.timeframe,
                  "symbols": dg.MetadataValue.json(list(universe.symbols)),
                  "table": "market.bars"},
        tags={"trading/universe": universe.name},
    )
    def _ingest(
        context: dg.AssetExecutionContext,
        trading_config: TradingConfigResource,
        warehouse: WarehouseResource,
        market_data: MarketDataResource,
    ) -> dg.MaterializeResult:
        window = context.partition_time_window
        # A month partition may begin before the universe's first day; nothing before it is asked for.
        start, end = max(utc(window.start), universe_start(universe)), utc(window.end)
        now = datetime.now(UTC)
        cfg = trading_config.load()
        try:
            current = cfg.universe(universe.name)
        except Exception as e:  # the config changed under a running code location
            raise dg.Failure(f"universe {universe.name!r} is no longer configured: {e}",
                             allow_retries=False) from e
        md = market_data.market_config(cfg.market_data)
        wh = warehouse.get()
        provider = market_data.provider(current, md, now=now)
        results: list[IngestResult] = []
        for symbol in current.symbols:
            context.log.info("ingesting %s %s %s over [%s, %s)", current.venue, symbol,
                             current.timeframe, start.isoformat(), end.isoformat())
            try:
                results.append(ingest_series(
                    wh, provider, venue=current.venue, symbol=symbol, timeframe=current.timeframe,
                    start=start, end=end, now=now, validation=md.validation,
                    calendar=calendar_of(current.asset_class)))
            except RETRYABLE:
                raise  # RetryPolicy: the write is idempotent, so a retried step converges
            except Exception as e:
                raise dg.Failure(
                    description=f"{current.venue} {symbol} {current.timeframe}: {e}",
                    metadata={"symbol": symbol, "error": type(e).__name__},
                    allow_retries=False,
                ) from e
        offline = md.mode == "offline"
        with wh.connect(read_only=True) as con:
            held = quarantined_rows(con, current.venue, current.symbols, current.timeframe, start, end)
        ranges = {s: wh.series_range(current.venue, s, current.timeframe) for s in current.symbols}
        last_bars = {s: (utc(r.last_ts) if r else None) for s, r in ranges.items()}
        references = {s: _reference(current.venue, s, current.timeframe, end=end, now=now, offline=offline, bar=bar)
                      for s in current.symbols}
        totals = {k: sum(getattr(r, k) for r in results)
                  for k in ("rows_read", "inserted", "revised", "unchanged", "dropped", "quarantined")}
        empty = [r.symbol for r in results if r.rows_read == 0]
        metadata: dict[str, dg.RawMetadataValue] = {
            "window": f"[{start.isoformat()}, {end.isoformat()})",
            "mode": md.mode,
            "sources": dg.MetadataValue.json(sorted({r.source for r in results})),
            **{f"rows_{k}" if not k.startswith("rows") else k: v for k, v in totals.items()},
            "rule_counts": dg.MetadataValue.json(rule_counts(results)),
            "per_symbol": dg.MetadataValue.md(_symbol_table(results)),
            "dagster/row_count": sum(r.bars for r in ranges.values() if r),
        }
        if empty:
            # Not an error: a re-run (or the catch-up after `trading ingest sample`) finds nothing
            # new to fetch, markets close on holidays, ^GSPC's sample ends before ^VIX's.
            metadata["note"] = (f"no new bars for {', '.join(empty)} in this window (already "
                                "stored, outside the source's history, or no trading)")
        return dg.MaterializeResult(
            metadata=metadata,
            check_results=[
                validity_result(name, results, held),
                freshness_result(name, last_bars=last_bars, references=references, bar=bar,
                                 tolerance=freshness_tolerance(current), offline=offline),
            ],
        )

    return _ingest


def ingest_assets() -> dict[str, dg.AssetsDefinition]:
    """The ingest asset of every configured universe, keyed by asset name."""
    return {asset_name(u): build_ingest_asset(u) for u in configured_universes()}


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=list(ingest_assets().values()))
