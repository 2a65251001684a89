"""What a simulation returns: ``SimResult`` and the one-pass packing of kernel records into
``FILL_DTYPE`` / ``EVENT_DTYPE`` arrays (shared by batch and streaming)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trading_core.engine import enums as E
from trading_core.engine.cpu import pack_events_nb, pack_fills_nb


@dataclass
class SimResult:
    """Everything one simulation produced; arrays are (T, P) unless stated."""

    fills: np.ndarray  # FILL_DTYPE, sorted by portfolio then execution order
    events: np.ndarray  # EVENT_DTYPE: the order log (accepted, rejected, canceled, expired, filled, ...)
    equity: np.ndarray
    cash: np.ndarray
    position: np.ndarray  # (T, P) traded symbol for signals; (T, P, S) for order streams
    final_equity: np.ndarray  # (P,)
    fees_paid: np.ndarray  # (P,)
    borrow_paid: np.ndarray  # (P,)
    model_hash: str
    device: str
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def rejections(self) -> np.ndarray:
        """Refused orders with their ``RejectReason`` code in ``reason``."""
        return self.events[self.events["kind"] == E.EventKind.REJECTED]

    def trades(self, portfolio: int) -> list[Any]:
        """Round trips of one portfolio from its fills: the one builder (``trading.trips``), so a
        backtest, a paper session and this result agree on every trade."""
        from ..trading.trips import round_trips

        last = self.meta.get("last_close")
        return round_trips(self.fills[self.fills["portfolio"] == portfolio], last_close=last)

    def to_frames(self) -> dict[str, Any]:
        """pandas views: fills, events, equity, cash (index = bar), built once on demand."""
        import pandas as pd

        frames = {
            "fills": pd.DataFrame(self.fills),
            "events": pd.DataFrame(self.events),
            "equity": pd.DataFrame(self.equity),
            "cash": pd.DataFrame(self.cash),
        }
        if self.position.ndim == 2:
            frames["position"] = pd.DataFrame(self.position)
        return frames


def pack_fills(fi: np.ndarray, ff: np.ndarray, ai: np.ndarray) -> np.ndarray:
    """Fill records of every portfolio (portfolio, then execution order), written by one compiled pass."""
    n = int(np.minimum(ai[:, E.AI_NFILL], fi.shape[1]).sum())
    out = np.empty(n, E.FILL_DTYPE)
    k = len(E.FILL_DTYPE.names or ())
    pack_fills_nb(fi, ff, ai, out.view(np.int64).reshape(n, k), out.view(np.float64).reshape(n, k))
    return out


def pack_events(ei: np.ndarray, ai: np.ndarray) -> np.ndarray:
    """Event records of every portfolio (portfolio, then log order), written by one compiled pass."""
    n = int(np.minimum(ai[:, E.AI_NEV], ei.shape[1]).sum())
    out = np.empty(n, E.EVENT_DTYPE)
    pack_events_nb(ei, ai, out.view(np.int64).reshape(n, len(E.EVENT_DTYPE.names or ())))
    return out
