"""Moving-average crossover: long when the fast average crosses above the slow one, flat when it
crosses back below. A grid of (fast, slow) pairs runs as one portfolio per pair and symbol.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from ..features.streaming import EmaState, SmaState
from ._common import StreamBase
from .base import BoolArray, FloatArray, StrategyParams, as_bars
from .nb import crossed_above, ema_nb, ma_cross_signals_nb, sma_nb  # noqa: F401 (crossed_above re-exported)
from .streaming import BarSlice


class MaCrossoverParams(StrategyParams):
    """``fast``/``slow`` windows in bars; ``grid`` (e.g. ``"10:50,20:100"``) replaces them."""

    fast: int = Field(default=10, ge=1, description="fast window in bars")
    slow: int = Field(default=50, ge=2, description="slow window in bars, > fast")
    kind: Literal["sma", "ema"] = Field(default="sma", description="moving-average type")
    grid: tuple[tuple[int, int], ...] | None = Field(
        default=None, description="fast:slow pairs separated by commas, e.g. 10:50,20:100")

    @field_validator("grid", mode="before")
    @classmethod
    def _parse_grid(cls, v: Any) -> Any:
        if isinstance(v, str):
            pairs = []
            for part in v.replace(" ", "").split(","):
                if not part:
                    continue
                bits = part.replace("/", ":").split(":")
                if len(bits) != 2:
                    raise ValueError(f"grid pair {part!r} is not fast:slow")
                try:
                    pairs.append((int(bits[0]), int(bits[1])))
                except ValueError:
                    raise ValueError(f"grid pair {part!r} is not two integers fast:slow") from None
            return tuple(pairs)
        return v

    @model_validator(mode="after")
    def _fast_below_slow(self) -> MaCrossoverParams:
        for fast, slow in self.pairs():
            if fast < 1 or slow < 2:
                raise ValueError(f"windows must be fast >= 1 and slow >= 2, got {fast}:{slow}")
            if fast >= slow:
                raise ValueError(f"fast window must be below slow window, got {fast}:{slow}")
        if self.grid is not None and not self.grid:
            raise ValueError("grid is empty")
        return self

    def pairs(self) -> list[tuple[int, int]]:
        return list(self.grid) if self.grid is not None else [(self.fast, self.slow)]


def moving_average(close: FloatArray, window: int, kind: str) -> FloatArray:
    """(T, S) moving average of ``kind`` ('sma' or 'ema') computed by the numba kernels."""
    x = np.ascontiguousarray(close, dtype=np.float64)
    if kind == "sma":
        return sma_nb(x, window)
    if kind == "ema":
        return ema_nb(x, window)
    raise ValueError(f"unknown moving average {kind!r}; expected 'sma' or 'ema'")


class MaCrossover:
    """Entries where fast crosses above slow, exits where it crosses below; no signal in warm-up."""

    name: ClassVar[str] = "ma_crossover"
    Params: ClassVar[type[StrategyParams]] = MaCrossoverParams

    def __init__(self, params: MaCrossoverParams | None = None) -> None:
        self.params: MaCrossoverParams = params or MaCrossoverParams()

    def variants(self) -> list[dict[str, Any]]:
        return [{"fast": f, "slow": s, "kind": self.params.kind} for f, s in self.params.pairs()]

    def warmup_bars(self) -> int:
        return max(s for _, s in self.params.pairs())

    def signals(self, bars: Any) -> tuple[BoolArray, BoolArray]:
        b = as_bars(bars)
        pairs = self.params.pairs()
        if self.params.kind not in ("sma", "ema"):
            raise ValueError(f"unknown moving average {self.params.kind!r}; expected 'sma' or 'ema'")
        # One fused pass: each distinct window's average is computed once per asset and the
        # crossovers are written straight into the (T, P) booleans (no (T, P) float matrices).
        windows = sorted({w for pair in pairs for w in pair})
        pos = {w: i for i, w in enumerate(windows)}
        x = np.ascontiguousarray(b.close, dtype=np.float64)
        return ma_cross_signals_nb(x, np.asarray(windows, dtype=np.int64),
                                   np.asarray([pos[f] for f, _ in pairs], dtype=np.int64),
                                   np.asarray([pos[s] for _, s in pairs], dtype=np.int64),
                                   self.params.kind == "ema")

    def stream(self, n_symbols: int) -> MaCrossoverStream:
        return MaCrossoverStream(self.params, n_symbols)


class MaCrossoverStream(StreamBase):
    """Per bar: one ``SmaState``/``EmaState`` per distinct window (the arithmetic of
    ``ma_cross_signals_nb``) and the crossover against the previous bar's averages."""

    _arrays = ("prev",)

    def __init__(self, params: MaCrossoverParams, n_symbols: int) -> None:
        pairs = params.pairs()
        super().__init__(len(pairs) * n_symbols)
        self.windows = sorted({w for pair in pairs for w in pair})
        pos = {w: i for i, w in enumerate(self.windows)}
        self.fast = np.asarray([pos[f] for f, _ in pairs], dtype=np.int64)
        self.slow = np.asarray([pos[s] for _, s in pairs], dtype=np.int64)
        make = SmaState if params.kind == "sma" else EmaState
        self.ma = [make(n_symbols, w) for w in self.windows]
        self.prev = np.full((len(self.windows), n_symbols), np.nan)

    def parts(self) -> dict[str, Any]:
        return {f"ma{w}": st for w, st in zip(self.windows, self.ma, strict=True)}

    def update(self, bar: BarSlice) -> tuple[BoolArray, BoolArray]:
        now = np.stack([st.update(bar.close) for st in self.ma])
        f, sl = now[self.fast].reshape(-1), now[self.slow].reshape(-1)
        fp, sp = self.prev[self.fast].reshape(-1), self.prev[self.slow].reshape(-1)
        with np.errstate(invalid="ignore"):
            entries = (f > sl) & (fp <= sp)
            exits = (sl > f) & (sp <= fp)
        self.prev = now
        self.t += 1
        return entries, exits
