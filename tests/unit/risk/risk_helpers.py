"""Helpers of the risk tests (a module of its own: `conftest` is not importable by name)."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from trading_core.warehouse import Warehouse


class RecordingEngine:
    """Stands in for the next stage: records exactly what the risk layer let through."""

    def __init__(self) -> None:
        self.received: list[Any] = []

    def submit(self, orders: Any) -> None:
        self.received.extend(list(orders))


def pass_to_engine(orders: np.ndarray, allowed: np.ndarray, engine: RecordingEngine) -> None:
    """What a backtest runner does with a Verification: only allowed orders move on."""
    engine.submit(orders[allowed])



def insert_bars(wh: Warehouse, venue: str, symbol: str, timeframe: str, bars: pl.DataFrame) -> None:
    """Test setup: put bars straight into market.bars (the ingest path is tested elsewhere)."""
    with wh.connect() as con:
        con.register("b", bars.select("ts", "open", "high", "low", "close", "volume"))
        con.execute("INSERT INTO market.bars SELECT $v, $s, $tf, ts, open, high, low, close, volume, 0, 'test' "
                    "FROM b", {"v": venue, "s": symbol, "tf": timeframe})
        con.unregister("b")
