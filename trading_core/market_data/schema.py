"""The canonical OHLCV frame every provider produces and the warehouse stores.

``ts`` is the bar's open time in UTC at millisecond precision; prices and volume are float64.
"""

from __future__ import annotations

import polars as pl

OHLCV_COLUMNS: tuple[str, ...] = ("ts", "open", "high", "low", "close", "volume")
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")

OHLCV_SCHEMA: dict[str, pl.DataType] = {
    "ts": pl.Datetime("ms", "UTC"),
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "volume": pl.Float64(),
}


def empty_ohlcv() -> pl.DataFrame:
    """An empty frame with the canonical schema."""
    return pl.DataFrame(schema=OHLCV_SCHEMA)
