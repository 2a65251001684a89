"""Fibonacci retracement: buy a confirmed pullback to a retracement level of the last up-swing.

The swing is the latest pair of CONFIRMED pivots from ``trading_core.features.levels.fibonacci``
(a pivot is known ``pivot_k`` bars after it). After an up-swing (pivot low, then pivot high):

* entry when flat, the bar's low reached the ``level`` retracement (0.382, 0.5 or 0.618) and the
  bar confirms: it closed back above the level (and, with ``confirm_bullish``, above its open),
  while still above the 78.6% retracement;
* exit at the swing high known at entry (close >= it) or below the 78.6% level known at entry
  (close < it) -- both frozen when the position opens, so a later swing does not move them.

Tends to work in established up-trends with orderly pullbacks; fails when a pullback becomes a
reversal (the 78.6% stop limits that loss).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import Field, field_validator

from ..features.levels import fibonacci
from ..features.streaming import FibonacciState
from ._common import HoldState, StreamBase, hold
from .base import BoolArray, SingleVariantStrategy, StrategyParams, as_bars
from .streaming import BarSlice

_RATIOS = (0.0, 0.382, 0.5, 0.618, 0.786, 1.0)
_LEVELS = (0.382, 0.5, 0.618)


class FibonacciRetracementParams(StrategyParams):
    """Retracement level to buy, pivot width and swing lookback."""

    level: float = Field(default=0.618, description="retracement to buy: 0.382, 0.5 or 0.618")
    pivot_k: int = Field(default=5, ge=1, description="bars each side of a swing pivot")
    lookback: int = Field(default=250, ge=10, description="both swing ends must be within this many bars")
    confirm_bullish: bool = Field(default=True, description="also require close > open on the entry bar")

    @field_validator("level", mode="before")
    @classmethod
    def _level(cls, v: Any) -> Any:
        """CLI values arrive as text ("0.5", "61.8"); percentages are accepted too."""
        try:
            f = float(v)
        except (TypeError, ValueError):
            return v
        f = round(f / 100 if f > 1 else f, 3)
        if f not in _LEVELS:
            raise ValueError(f"level {v!r} must be 0.382, 0.5 or 0.618 (or 38.2, 50, 61.8)")
        return f


class FibonacciRetracement(SingleVariantStrategy[FibonacciRetracementParams]):
    """One variant; stop and target frozen at entry by the position-state loop."""

    name: ClassVar[str] = "fibonacci_retracement"
    Params: ClassVar[type[StrategyParams]] = FibonacciRetracementParams

    def warmup_bars(self) -> int:
        return 2 * self.params.pivot_k + 1

    def signals(self, bars: Any) -> tuple[BoolArray, BoolArray]:
        b = as_bars(bars)
        p = self.params
        shape = b.close.shape
        lvl = np.full(shape, np.nan)
        high_px = np.full(shape, np.nan)
        stop = np.full(shape, np.nan)
        for j in range(b.n_symbols):
            f = fibonacci(b.high[:, j], b.low[:, j], k=p.pivot_k, n=p.lookback, ratios=_RATIOS)
            with np.errstate(invalid="ignore"):
                up = f[:, 0] > f[:, 5]  # ratio 0 is the swing high only after an up-swing
            lvl[up, j] = f[up, _RATIOS.index(p.level)]
            high_px[up, j] = f[up, 0]
            stop[up, j] = f[up, 4]
        with np.errstate(invalid="ignore"):
            entry = (b.low <= lvl) & (b.close > lvl) & (b.close > stop)
            if p.confirm_bullish:
                entry &= b.close > b.open
        never = np.zeros(shape, dtype=np.bool_)
        return hold(entry, never, b.close, stop_px=np.nextafter(stop, -np.inf), target_px=high_px)

    def stream(self, n_symbols: int) -> FibonacciRetracementStream:
        return FibonacciRetracementStream(self.params, n_symbols)


class FibonacciRetracementStream(StreamBase):
    """``FibonacciState`` on the strategy's ratios and ``HoldState`` (stop/target frozen at entry)."""

    def __init__(self, params: FibonacciRetracementParams, n_symbols: int) -> None:
        super().__init__(n_symbols)
        self.p = params
        self.fib = FibonacciState(n_symbols, k=params.pivot_k, n=params.lookback, ratios=_RATIOS)
        self.hold = HoldState(n_symbols)

    def parts(self) -> dict[str, Any]:
        return {"fib": self.fib, "hold": self.hold}

    def update(self, bar: BarSlice) -> tuple[BoolArray, BoolArray]:
        f = self.fib.update(bar.high, bar.low)
        nan = np.full(self.columns, np.nan)
        with np.errstate(invalid="ignore"):
            up = f[:, 0] > f[:, 5]
            lvl = np.where(up, f[:, _RATIOS.index(self.p.level)], nan)
            high_px = np.where(up, f[:, 0], nan)
            stop = np.where(up, f[:, 4], nan)
            entry = (bar.low <= lvl) & (bar.close > lvl) & (bar.close > stop)
            if self.p.confirm_bullish:
                entry &= bar.close > bar.open
        self.t += 1
        return self.hold.update_simple(entry, np.zeros(self.columns, np.bool_), bar.close,
                                       stop_px=np.nextafter(stop, -np.inf), target_px=high_px)
