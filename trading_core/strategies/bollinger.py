"""Bollinger-band strategies: mean reversion (buy below the lower band, sell at the mid) and
breakout (buy a close above the upper band, sell below the mid).

Bands are ``trading_core.features.indicators.bollinger``: SMA(window) +- k population std. Both
are long only and run through the position-state loop, so each entry is a fresh position.
Mean reversion tends to work in ranging markets (equity indices on daily bars); breakout in
trending, momentum-driven ones (crypto, commodities) and loses in choppy ranges.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import Field, field_validator

from ..features.indicators import bollinger
from ..features.streaming import BollingerState
from ._common import HoldState, StreamBase, hold, parse_grid, per_column, tile_cols
from .base import BoolArray, StrategyParams, as_bars
from .streaming import BarSlice


class BollingerParams(StrategyParams):
    """Band window and width; ``grid`` of ``window:k`` pairs replaces them."""

    window: int = Field(default=20, ge=2, description="SMA / std window in bars")
    k: float = Field(default=2.0, gt=0, description="band width in standard deviations")
    grid: tuple[tuple[int, float], ...] | None = Field(
        default=None, description="window:k pairs separated by commas, e.g. 20:2,50:2.5")

    @field_validator("grid", mode="before")
    @classmethod
    def _parse_grid(cls, v: Any) -> Any:
        out = parse_grid(v, 2, (int, float), "window:k")
        if isinstance(out, tuple) and any(w < 2 or k <= 0 for w, k in out):
            raise ValueError("every grid pair needs window >= 2 and k > 0")
        return out

    def pairs(self) -> list[tuple[int, float]]:
        return list(self.grid) if self.grid is not None else [(self.window, self.k)]


class _BollingerBase:
    Params: ClassVar[type[StrategyParams]] = BollingerParams

    def __init__(self, params: BollingerParams | None = None) -> None:
        self.params: BollingerParams = params or BollingerParams()

    def variants(self) -> list[dict[str, Any]]:
        return [{"window": w, "k": k} for w, k in self.params.pairs()]

    def warmup_bars(self) -> int:
        return max(w for w, _ in self.params.pairs())

    def _bands(self, bars: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(close, mid, upper, lower), each (T, V x S)."""
        b = as_bars(bars)
        pairs = self.params.pairs()
        mids, ups, lows = [], [], []
        for w, k in pairs:
            mid, up, lo, _, _ = per_column(bollinger, b.close, n=w, k=k)
            mids.append(mid)
            ups.append(up)
            lows.append(lo)
        close = tile_cols(b.close, len(pairs))
        return close, np.concatenate(mids, 1), np.concatenate(ups, 1), np.concatenate(lows, 1)

    def stream(self, n_symbols: int) -> BollingerStream:
        return BollingerStream(self.params, n_symbols, breakout=isinstance(self, BollingerBreakout))


class BollingerMeanReversion(_BollingerBase):
    """Flat and close < lower band -> entry; long and close >= mid -> exit."""

    name: ClassVar[str] = "bollinger_mean_reversion"

    def signals(self, bars: Any) -> tuple[BoolArray, BoolArray]:
        close, mid, _, lower = self._bands(bars)
        with np.errstate(invalid="ignore"):
            return hold(close < lower, close >= mid, close)


class BollingerBreakout(_BollingerBase):
    """Flat and close > upper band -> entry; long and close < mid -> exit."""

    name: ClassVar[str] = "bollinger_breakout"

    def signals(self, bars: Any) -> tuple[BoolArray, BoolArray]:
        close, mid, upper, _ = self._bands(bars)
        with np.errstate(invalid="ignore"):
            return hold(close > upper, close < mid, close)


class BollingerStream(StreamBase):
    """One ``BollingerState`` per (window, k); the position state machine per bar."""

    def __init__(self, params: BollingerParams, n_symbols: int, *, breakout: bool) -> None:
        pairs = params.pairs()
        super().__init__(len(pairs) * n_symbols)
        self.breakout = breakout
        self.bands = [BollingerState(n_symbols, n=w, k=k) for w, k in pairs]
        self.hold = HoldState(self.columns)

    def parts(self) -> dict[str, Any]:
        return {"hold": self.hold, **{f"bb{i}": st for i, st in enumerate(self.bands)}}

    def update(self, bar: BarSlice) -> tuple[BoolArray, BoolArray]:
        outs = [st.update(bar.close) for st in self.bands]
        mid = np.concatenate([o[0] for o in outs])
        close = np.tile(bar.close, len(self.bands))
        with np.errstate(invalid="ignore"):
            if self.breakout:
                upper = np.concatenate([o[1] for o in outs])
                entry, exit_ = close > upper, close < mid
            else:
                lower = np.concatenate([o[2] for o in outs])
                entry, exit_ = close < lower, close >= mid
        self.t += 1
        return self.hold.update_simple(entry, exit_, close)
