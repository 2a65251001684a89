"""MACD signal-line crossover with an optional histogram threshold.

Rules: histogram = MACD line - signal line. Entry when the histogram crosses above
``+threshold x close`` (threshold 0: the classic line-over-signal crossover); exit when it crosses
below ``-threshold x close``. Expressing the threshold as a fraction of price keeps one value
meaningful across instruments and decades. Stateless, like ``ma_crossover``; a ``grid`` of
``fast:slow:signal`` triples runs one portfolio per triple.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import Field, field_validator, model_validator

from ..features.indicators import macd
from ..features.streaming import MacdState
from ._common import StreamBase, crosses_above, parse_grid, per_column, tile_cols
from .base import BoolArray, StrategyParams, as_bars
from .streaming import BarSlice


class MacdParams(StrategyParams):
    """EMA windows of the MACD and the histogram dead band."""

    fast: int = Field(default=12, ge=1, description="fast EMA window")
    slow: int = Field(default=26, ge=2, description="slow EMA window, > fast")
    signal: int = Field(default=9, ge=1, description="signal-line EMA window")
    threshold: float = Field(default=0.0, ge=0, lt=1, description="histogram dead band as a fraction of close")
    grid: tuple[tuple[int, int, int], ...] | None = Field(
        default=None, description="fast:slow:signal triples separated by commas, e.g. 12:26:9,8:17:9")

    @field_validator("grid", mode="before")
    @classmethod
    def _parse_grid(cls, v: Any) -> Any:
        return parse_grid(v, 3, (int, int, int), "fast:slow:signal")

    @model_validator(mode="after")
    def _order(self) -> MacdParams:
        for f, s, g in self.triples():
            if not 1 <= f < s or g < 1:
                raise ValueError(f"need 1 <= fast < slow and signal >= 1, got {f}:{s}:{g}")
        return self

    def triples(self) -> list[tuple[int, int, int]]:
        return list(self.grid) if self.grid is not None else [(self.fast, self.slow, self.signal)]


class Macd:
    """Entries/exits at histogram crossings; no signal before the signal line exists."""

    name: ClassVar[str] = "macd"
    Params: ClassVar[type[StrategyParams]] = MacdParams

    def __init__(self, params: MacdParams | None = None) -> None:
        self.params: MacdParams = params or MacdParams()

    def variants(self) -> list[dict[str, Any]]:
        return [{"fast": f, "slow": s, "signal": g, "threshold": self.params.threshold}
                for f, s, g in self.params.triples()]

    def warmup_bars(self) -> int:
        return max(s + g for _, s, g in self.params.triples())

    def signals(self, bars: Any) -> tuple[BoolArray, BoolArray]:
        b = as_bars(bars)
        triples = self.params.triples()
        hist = np.concatenate(
            [per_column(lambda c, f=f, s=s, g=g: macd(c, f, s, g)[2], b.close) for f, s, g in triples], axis=1)
        band = self.params.threshold * tile_cols(b.close, len(triples))
        return crosses_above(hist, band), crosses_above(-band, hist)

    def stream(self, n_symbols: int) -> MacdStream:
        return MacdStream(self.params, n_symbols)


class MacdStream(StreamBase):
    """One ``MacdState`` per triple; crossings against the previous bar's histogram and band."""

    _arrays = ("prev_hist", "prev_band")

    def __init__(self, params: MacdParams, n_symbols: int) -> None:
        triples = params.triples()
        super().__init__(len(triples) * n_symbols)
        self.threshold = params.threshold
        self.macd = [MacdState(n_symbols, f, s, g) for f, s, g in triples]
        self.prev_hist = np.full(self.columns, np.nan)
        self.prev_band = np.full(self.columns, np.nan)

    def parts(self) -> dict[str, Any]:
        return {f"macd{i}": st for i, st in enumerate(self.macd)}

    def update(self, bar: BarSlice) -> tuple[BoolArray, BoolArray]:
        hist = np.concatenate([st.update(bar.close)[2] for st in self.macd])
        band = self.threshold * np.tile(bar.close, len(self.macd))
        with np.errstate(invalid="ignore"):
            entries = (hist > band) & (self.prev_hist <= self.prev_band)
            exits = (-band > hist) & (-self.prev_band <= self.prev_hist)
        self.prev_hist, self.prev_band = hist, band
        self.t += 1
        return entries, exits
