"""A read-through cache of the warehouse's bars for one stress run.

A stress run reads the same few series hundreds of times (every strategy x risk mode x window,
their warm-up history, VIX for the market filter, the coverage of every window); opening DuckDB
for each read costs more than the simulation of a short window. ``CachedBars`` reads each series
once, whole, in one short read-only open, and serves every later slice from memory. It exposes
only bar reads (``read_bars``, ``series``, ``series_range``): no ``connect``, so nothing run on it
can write, and the backtest runner skips its optional regime slices (a stress report has none).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl

__all__ = ["CachedBars"]


class CachedBars:
    """Bars of ``warehouse``, each series read once per instance."""

    def __init__(self, warehouse: Any) -> None:
        self.warehouse = warehouse
        self.path = getattr(warehouse, "path", None)
        self._frames: dict[tuple[str, str, str], pl.DataFrame] = {}
        self._series: list[Any] | None = None

    def read_bars(self, venue: str, symbol: str, timeframe: str, start: datetime | None = None,
                  end: datetime | None = None) -> pl.DataFrame:
        key = (venue, symbol, timeframe)
        frame = self._frames.get(key)
        if frame is None:
            frame = self._frames[key] = self.warehouse.read_bars(venue, symbol, timeframe, None, None)
        if start is not None:
            frame = frame.filter(pl.col("ts") >= start)
        if end is not None:
            frame = frame.filter(pl.col("ts") < end)
        return frame

    def series(self) -> list[Any]:
        if self._series is None:
            self._series = list(self.warehouse.series())
        return self._series

    def series_range(self, venue: str, symbol: str, timeframe: str) -> Any:
        return next((r for r in self.series() if (r.venue, r.symbol, r.timeframe) == (venue, symbol, timeframe)), None)
