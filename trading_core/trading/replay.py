"""Feeds for a Trader: stored bars replayed in order, and signals computed in one batch call.

``ReplaySignals`` hands the Trader row t of a strategy's batch ``signals()``. It is the fast
path of stepped backtests (one vectorised call instead of T stream updates) and is only valid
because every strategy's stream is pinned, by a test, to equal its batch signals bar for bar
(``strategies.streaming``); row t of the batch never depends on a later bar.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..strategies.streaming import BarSlice, bar_slices

__all__ = ["ReplaySignals", "bar_slices"]


class ReplaySignals:
    """A ``SignalStream`` over precomputed (T, C) entries/exits, one row per ``update``."""

    def __init__(self, entries: np.ndarray, exits: np.ndarray) -> None:
        e = np.ascontiguousarray(np.asarray(entries, dtype=np.bool_))
        self.entries = e.reshape(e.shape[0], -1)
        self.exits = np.ascontiguousarray(np.asarray(exits, dtype=np.bool_)).reshape(self.entries.shape)
        self.columns = int(self.entries.shape[1])
        self.t = 0

    def update(self, bar: BarSlice) -> tuple[np.ndarray, np.ndarray]:
        t = self.t
        if t >= self.entries.shape[0]:
            raise IndexError("the replayed signals have no more rows than the bars they were computed on")
        self.t = t + 1
        return self.entries[t], self.exits[t]

    def state(self) -> dict[str, Any]:
        return {"t": self.t}

    def load_state(self, state: dict[str, Any]) -> None:
        self.t = int(state["t"])
