"""Buy and hold: enter at the first bar's close, never exit. The baseline every strategy must beat."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ._common import StreamBase
from .base import BoolArray, StrategyParams, as_bars
from .streaming import BarSlice


class BuyAndHoldParams(StrategyParams):
    """No parameters."""


class BuyAndHold:
    """One variant; the entry is signalled at bar 0, so the position is held over every later bar."""

    name: ClassVar[str] = "buy_and_hold"
    Params: ClassVar[type[StrategyParams]] = BuyAndHoldParams

    def __init__(self, params: BuyAndHoldParams | None = None) -> None:
        self.params = params or BuyAndHoldParams()

    def variants(self) -> list[dict[str, Any]]:
        return [{}]

    def warmup_bars(self) -> int:
        return 0

    def signals(self, bars: Any) -> tuple[BoolArray, BoolArray]:
        b = as_bars(bars)
        entries = np.zeros((b.n_bars, b.n_symbols), dtype=np.bool_)
        if b.n_bars:
            entries[0] = True
        return entries, np.zeros_like(entries)

    def stream(self, n_symbols: int) -> BuyAndHoldStream:
        return BuyAndHoldStream(n_symbols)


class BuyAndHoldStream(StreamBase):
    """Entry on the first bar fed, nothing after."""

    def update(self, bar: BarSlice) -> tuple[BoolArray, BoolArray]:
        entries = np.full(self.columns, self.t == 0, dtype=np.bool_)
        self.t += 1
        return entries, np.zeros(self.columns, np.bool_)
