"""Suite-wide guards: every test gets its own data directory and never touches the network.

pytest-socket (configured in pyproject) refuses any non-loopback connection.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from trading_core.config import PROJECT_ROOT

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")

SAMPLE_DIR = PROJECT_ROOT / ".cache" / "sample-packages"


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point TRADING_DATA_DIR at a fresh folder so no test writes the real data/ directory."""
    data = tmp_path_factory.mktemp("data")
    monkeypatch.setenv("TRADING_DATA_DIR", str(data))
    monkeypatch.delenv("TRADING_WAREHOUSE", raising=False)
    monkeypatch.setenv("TRADING_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    return data


@pytest.fixture
def sample_dir() -> Path:
    """Where `make install` downloads the packages that carry the real sample history."""
    if not (SAMPLE_DIR / ".complete").exists() and not any(SAMPLE_DIR.glob("*.whl")):
        pytest.fail(f"sample packages missing in {SAMPLE_DIR}: run `make install`")
    return SAMPLE_DIR


def _sample_series(venue: str, symbol: str, timeframe: str) -> pl.DataFrame:
    from trading_core.market_data.providers.sample import SampleProvider

    return SampleProvider(SAMPLE_DIR).fetch_ohlcv(
        venue, symbol, timeframe, datetime(1980, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC))


@pytest.fixture(scope="session")
def sp500() -> pl.DataFrame:
    """Real ^GSPC daily OHLCV 1999-2018 (canonical frame) from the sample data."""
    return _sample_series("yahoo", "^GSPC", "1d")


@pytest.fixture(scope="session")
def nasdaq() -> pl.DataFrame:
    """Real ^IXIC (Nasdaq Composite) daily OHLCV from the sample data."""
    return _sample_series("yahoo", "^IXIC", "1d")


@pytest.fixture(scope="session")
def vix() -> pl.DataFrame:
    """Real ^VIX daily OHLC 1990-2024 from the sample data."""
    return _sample_series("yahoo", "^VIX", "1d")


@pytest.fixture(scope="session")
def btc_1h() -> pl.DataFrame:
    """Real Coinbase BTC/USD hourly bars 2017-07 .. 2019-10 from the sample data."""
    return _sample_series("coinbase", "BTC/USD", "1h")
