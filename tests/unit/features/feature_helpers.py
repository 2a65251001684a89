"""Helpers of the feature tests (a uniquely named module: several folders have a conftest)."""

from __future__ import annotations

import polars as pl

from trading_core.warehouse import Warehouse


def load_bars(wh: Warehouse, venue: str, symbol: str, timeframe: str, bars: pl.DataFrame) -> None:
    """Put bars straight into market.bars (the ingest path is not under test here)."""
    with wh.connect() as con:
        con.register("_b", bars)
        con.execute("INSERT INTO market.bars SELECT $v, $s, $tf, ts, open, high, low, close, volume, 0, 't' "
                    "FROM _b", {"v": venue, "s": symbol, "tf": timeframe})
        con.unregister("_b")
