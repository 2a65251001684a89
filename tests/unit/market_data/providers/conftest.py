"""Fixtures for provider tests: real bars from the sample packages and a fake clock.

Every fake venue is fed from the embedded real history (offline-data-and-testing.md section 5), so
a test that passes here has parsed real prices, not hand-made ones.
"""

from __future__ import annotations

import polars as pl
import pytest
from provider_fakes import FAR_FUTURE, FAR_PAST, FakeClock

from trading_core.market_data.providers.sample import DEFAULT_SAMPLE_DIR, SampleProvider


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def sample_provider() -> SampleProvider:
    if not any(DEFAULT_SAMPLE_DIR.glob("*.whl")):
        pytest.fail(f"sample packages missing in {DEFAULT_SAMPLE_DIR}: run `make install`")
    return SampleProvider(DEFAULT_SAMPLE_DIR)


@pytest.fixture(scope="session")
def btc_1h(sample_provider: SampleProvider) -> pl.DataFrame:
    """All 20,111 real Coinbase BTC/USD hourly bars (2017-07-01 11:00 .. 2019-10-17 09:00 UTC)."""
    return sample_provider.fetch_ohlcv("coinbase", "BTC/USD", "1h", FAR_PAST, FAR_FUTURE)


@pytest.fixture(scope="session")
def gspc_1d(sample_provider: SampleProvider) -> pl.DataFrame:
    return sample_provider.fetch_ohlcv("yahoo", "^GSPC", "1d", FAR_PAST, FAR_FUTURE)
