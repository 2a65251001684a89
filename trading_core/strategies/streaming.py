"""The streaming strategy contract: a strategy decides one bar at a time, from bars up to that one.

Why: a paper session sees one new bar at a time and cannot recompute ``signals()`` over a growing
history every bar, and a trading loop that consumed precomputed (T, P) signals could read the
future by accident. So every strategy also provides ``stream(n_symbols)``: a ``SignalStream``
whose ``update`` takes one bar (one timestamp across the symbols) and returns that bar's entry and
exit flags. The contract, pinned for every registered strategy by a test: fed the same bars one
at a time, the stream's flags at each bar equal row t of the batch ``signals()`` on that history,
bit for bit, and the stream's ``state()`` restores (``load_state``) to an identical continuation.

``warmup_bars()`` stays the explicit warm-up: the bars a stream must be fed before its first flag
can be true (the history a live session loads before it trades).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .base import Bars, BoolArray, FloatArray

__all__ = ["BarSlice", "SignalStream", "stream_signals", "bar_slices"]


@dataclass(frozen=True)
class BarSlice:
    """One timestamp across S symbols: ``ts`` epoch ms (bar open, UTC), prices (S,) float64."""

    ts: int
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray

    @property
    def n_symbols(self) -> int:
        return int(self.close.shape[0])


@runtime_checkable
class SignalStream(Protocol):
    """Per-bar signals of one strategy on S symbols: ``columns`` = V x S (variant-major, as
    ``signals()``); ``update`` returns (entries, exits), each bool (columns,)."""

    columns: int

    def update(self, bar: BarSlice) -> tuple[BoolArray, BoolArray]: ...

    def state(self) -> dict[str, Any]:
        """Everything the stream carries, as plain values and NumPy arrays (no objects)."""
        ...

    def load_state(self, state: dict[str, Any]) -> None: ...


def bar_slices(bars: Bars) -> list[BarSlice]:
    """The rows of ``bars`` as slices, in order (a replay feed)."""
    return [BarSlice(int(bars.ts[t]), bars.open[t], bars.high[t], bars.low[t], bars.close[t], bars.volume[t])
            for t in range(bars.n_bars)]


def stream_signals(stream: SignalStream, bars: Bars) -> tuple[BoolArray, BoolArray]:
    """Feed ``bars`` one at a time; the (T, columns) flags, comparable with ``signals(bars)``."""
    T = bars.n_bars
    ent = np.zeros((T, stream.columns), np.bool_)
    ex = np.zeros((T, stream.columns), np.bool_)
    for t, b in enumerate(bar_slices(bars)):
        ent[t], ex[t] = stream.update(b)
    return ent, ex
