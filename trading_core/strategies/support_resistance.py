"""Support/resistance: trade bounces off support or breakouts through resistance.

Levels come from ``trading_core.features.levels.support_resistance``: clustered swing pivots
that are CONFIRMED (a pivot needs ``pivot_k`` bars on its right), nearest support at or below the
close and nearest resistance above it.

* ``bounce``: flat, a support exists and the bar's low came within ``tolerance`` of it while the
  close held at or above it -> entry. Exit at the resistance known at entry (close >= it x
  (1 - tolerance)) or when the close breaks the support (close <= support x (1 - tolerance)).
* ``breakout``: flat and the close clears the resistance known at the PREVIOUS close by more than
  ``tolerance`` (the previous close was at or below it) -> entry. Exit when the close falls back
  below the broken level by more than ``tolerance``, or below the nearest support known at the
  previous close by more than ``tolerance`` (a trailing exit: that support rises as new swing lows
  are confirmed, so winners are eventually closed too).

Bounces tend to work in ranges; breakouts in trending markets after a consolidation.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from ..features.levels import support_resistance
from ..features.streaming import SupportResistanceState
from ._common import HoldState, StreamBase, hold, per_column, prev
from .base import BoolArray, SingleVariantStrategy, StrategyParams, as_bars
from .streaming import BarSlice


class SupportResistanceParams(StrategyParams):
    """Mode, proximity tolerance and the level detector's settings."""

    mode: Literal["bounce", "breakout"] = Field(default="bounce", description="trade bounces or breakouts")
    tolerance: float = Field(default=0.01, ge=0, lt=0.5, description="proximity to a level as a fraction of it")
    pivot_k: int = Field(default=5, ge=1, description="bars each side of a swing pivot")
    lookback: int = Field(default=250, ge=10, description="bars of pivots pooled into levels")
    cluster_tol: float = Field(default=0.01, gt=0, lt=0.5, description="pivots within this fraction form one level")
    min_touches: int = Field(default=1, ge=1, description="pivots a level needs")


class SupportResistance(SingleVariantStrategy[SupportResistanceParams]):
    """One variant; entries/exits from the position-state loop with levels frozen at entry."""

    name: ClassVar[str] = "support_resistance"
    Params: ClassVar[type[StrategyParams]] = SupportResistanceParams

    def warmup_bars(self) -> int:
        return 2 * self.params.pivot_k + 1

    def signals(self, bars: Any) -> tuple[BoolArray, BoolArray]:
        b = as_bars(bars)
        p = self.params
        sup, res = per_column(support_resistance, b.high, b.low, b.close, k=p.pivot_k, n=p.lookback,
                              tol=p.cluster_tol, min_touches=p.min_touches)
        tol = p.tolerance
        never = np.zeros(b.close.shape, dtype=np.bool_)
        with np.errstate(invalid="ignore"):
            if p.mode == "bounce":
                entry = (b.low <= sup * (1 + tol)) & (b.close >= sup)
                return hold(entry, never, b.close, stop_px=sup * (1 - tol), target_px=res * (1 - tol))
            r1 = prev(res)
            entry = (b.close > r1 * (1 + tol)) & (prev(b.close) <= r1)
            # Trailing exit: the support known at the previous close rises as new pivot lows form.
            trail = b.close < prev(sup) * (1 - tol)
            return hold(entry, trail, b.close, stop_px=r1 * (1 - tol))

    def stream(self, n_symbols: int) -> SupportResistanceStream:
        return SupportResistanceStream(self.params, n_symbols)


class SupportResistanceStream(StreamBase):
    """``SupportResistanceState`` plus the previous bar's levels and close, and ``HoldState``."""

    _arrays = ("prev_sup", "prev_res", "prev_close")

    def __init__(self, params: SupportResistanceParams, n_symbols: int) -> None:
        super().__init__(n_symbols)
        self.p = params
        self.levels = SupportResistanceState(n_symbols, k=params.pivot_k, n=params.lookback, tol=params.cluster_tol,
                                             min_touches=params.min_touches)
        self.hold = HoldState(n_symbols)
        self.prev_sup = np.full(n_symbols, np.nan)
        self.prev_res = np.full(n_symbols, np.nan)
        self.prev_close = np.full(n_symbols, np.nan)

    def parts(self) -> dict[str, Any]:
        return {"levels": self.levels, "hold": self.hold}

    def update(self, bar: BarSlice) -> tuple[BoolArray, BoolArray]:
        sup, res = self.levels.update(bar.high, bar.low, bar.close)
        tol = self.p.tolerance
        close = bar.close
        with np.errstate(invalid="ignore"):
            if self.p.mode == "bounce":
                entry = (bar.low <= sup * (1 + tol)) & (close >= sup)
                out = self.hold.update_simple(entry, np.zeros(self.columns, np.bool_), close,
                                              stop_px=sup * (1 - tol), target_px=res * (1 - tol))
            else:
                r1 = self.prev_res
                entry = (close > r1 * (1 + tol)) & (self.prev_close <= r1)
                trail = close < self.prev_sup * (1 - tol)
                out = self.hold.update_simple(entry, trail, close, stop_px=r1 * (1 - tol))
        self.prev_sup, self.prev_res, self.prev_close = sup, res, np.array(close, dtype=np.float64)
        self.t += 1
        return out
