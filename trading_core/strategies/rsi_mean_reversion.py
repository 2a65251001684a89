"""RSI mean reversion: buy an oversold close, sell when RSI recovers or after a maximum hold.

Rules (per symbol, long only, decided at each bar's close): flat and RSI(window) < ``lower`` ->
entry; long and (RSI > ``upper`` or bars held >= ``max_bars`` when ``max_bars`` > 0) -> exit.
RSI is Wilder's (``trading_core.features.indicators.rsi``). A ``grid`` of
``window:lower:upper`` triples runs one portfolio per triple.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import Field, field_validator, model_validator

from ..features.indicators import rsi
from ..features.streaming import RsiState
from ._common import HoldState, StreamBase, hold, parse_grid, per_column, tile_cols
from .base import BoolArray, StrategyParams, as_bars
from .streaming import BarSlice


class RsiMeanReversionParams(StrategyParams):
    """RSI window and thresholds; ``max_bars`` 0 disables the time exit."""

    window: int = Field(default=14, ge=2, description="RSI window in bars")
    lower: float = Field(default=30.0, gt=0, lt=100, description="enter when RSI is below this")
    upper: float = Field(default=70.0, gt=0, lt=100, description="exit when RSI is above this")
    max_bars: int = Field(default=0, ge=0, description="exit after this many bars held (0: never)")
    grid: tuple[tuple[int, float, float], ...] | None = Field(
        default=None, description="window:lower:upper triples separated by commas, e.g. 14:30:70,7:20:80")

    @field_validator("grid", mode="before")
    @classmethod
    def _parse_grid(cls, v: Any) -> Any:
        return parse_grid(v, 3, (int, float, float), "window:lower:upper")

    @model_validator(mode="after")
    def _order(self) -> RsiMeanReversionParams:
        for w, lo, up in self.triples():
            if w < 2 or not 0 < lo < up < 100:
                raise ValueError(f"need window >= 2 and 0 < lower < upper < 100, got {w}:{lo:g}:{up:g}")
        return self

    def triples(self) -> list[tuple[int, float, float]]:
        return list(self.grid) if self.grid is not None else [(self.window, self.lower, self.upper)]


class RsiMeanReversion:
    """Entries/exits from the position-state loop so ``max_bars`` counts from the actual entry."""

    name: ClassVar[str] = "rsi_mean_reversion"
    Params: ClassVar[type[StrategyParams]] = RsiMeanReversionParams

    def __init__(self, params: RsiMeanReversionParams | None = None) -> None:
        self.params: RsiMeanReversionParams = params or RsiMeanReversionParams()

    def variants(self) -> list[dict[str, Any]]:
        return [{"window": w, "lower": lo, "upper": up, "max_bars": self.params.max_bars}
                for w, lo, up in self.params.triples()]

    def warmup_bars(self) -> int:
        return max(w for w, _, _ in self.params.triples())

    def signals(self, bars: Any) -> tuple[BoolArray, BoolArray]:
        b = as_bars(bars)
        triples = self.params.triples()
        cache = {w: per_column(rsi, b.close, n=w) for w in {t[0] for t in triples}}
        with np.errstate(invalid="ignore"):
            entry = np.concatenate([cache[w] < lo for w, lo, _ in triples], axis=1)
            exit_ = np.concatenate([cache[w] > up for w, _, up in triples], axis=1)
        return hold(entry, exit_, tile_cols(b.close, len(triples)), max_bars=self.params.max_bars)

    def stream(self, n_symbols: int) -> RsiMeanReversionStream:
        return RsiMeanReversionStream(self.params, n_symbols)


class RsiMeanReversionStream(StreamBase):
    """One ``RsiState`` per distinct window; the position state machine per bar (``HoldState``)."""

    def __init__(self, params: RsiMeanReversionParams, n_symbols: int) -> None:
        self.triples = params.triples()
        super().__init__(len(self.triples) * n_symbols)
        self.windows = sorted({w for w, _, _ in self.triples})
        self.rsi = {w: RsiState(n_symbols, n=w) for w in self.windows}
        self.hold = HoldState(self.columns, max_bars=params.max_bars)

    def parts(self) -> dict[str, Any]:
        return {"hold": self.hold, **{f"rsi{w}": st for w, st in self.rsi.items()}}

    def update(self, bar: BarSlice) -> tuple[BoolArray, BoolArray]:
        now = {w: st.update(bar.close) for w, st in self.rsi.items()}
        with np.errstate(invalid="ignore"):
            entry = np.concatenate([now[w] < lo for w, lo, _ in self.triples])
            exit_ = np.concatenate([now[w] > up for w, _, up in self.triples])
        self.t += 1
        return self.hold.update_simple(entry, exit_, np.tile(bar.close, len(self.triples)))
