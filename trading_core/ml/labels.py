"""Labels: forward-return direction and the triple barrier (take-profit / stop / time).

A label at bar t looks forward by design; what matters is that it is *known* only at
``label_end[t]`` (the bar whose close decides it), which walk-forward purging uses, and that no
row is labelled whose decision lies past the last bar (those rows are dropped, not guessed).
"""

from __future__ import annotations

import numba as nb
import numpy as np
import numpy.typing as npt

__all__ = ["direction_labels", "triple_barrier_labels"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


def direction_labels(close: F64, horizon: int) -> tuple[F64, I64]:
    """(label, label_end): 1.0 when close[t + horizon] > close[t] else 0.0, NaN past the end;
    label_end[t] = t + horizon (-1 where unknown)."""
    n = close.shape[0]
    y = np.full(n, np.nan)
    end = np.full(n, -1, np.int64)
    if n > horizon:
        y[: n - horizon] = (close[horizon:] > close[: n - horizon]).astype(np.float64)
        end[: n - horizon] = np.arange(horizon, n, dtype=np.int64)
    return y, end


@nb.njit(cache=True)
def _barrier_nb(high: F64, low: F64, close: F64, atr: F64, horizon: int, tp: float, sl: float,
                y: F64, end: I64) -> None:
    n = close.shape[0]
    for t in range(n - horizon):
        a = atr[t]
        if not np.isfinite(a) or a <= 0:
            continue
        up, dn = close[t] + tp * a, close[t] - sl * a
        lab, stop = -1.0, t + horizon
        for k in range(t + 1, t + horizon + 1):
            hit_up, hit_dn = high[k] >= up, low[k] <= dn
            if hit_up and hit_dn:  # both inside one bar: the order is unknown, count the stop
                lab, stop = 0.0, k
                break
            if hit_up:
                lab, stop = 1.0, k
                break
            if hit_dn:
                lab, stop = 0.0, k
                break
        if lab < 0:
            lab = 1.0 if close[t + horizon] > close[t] else 0.0
        y[t] = lab
        end[t] = stop


def triple_barrier_labels(high: F64, low: F64, close: F64, atr: F64, horizon: int, tp_atr: float,
                          sl_atr: float) -> tuple[F64, I64]:
    """(label, label_end): 1.0 when the bar's high reaches close + tp_atr x ATR before its low
    reaches close - sl_atr x ATR within ``horizon`` bars (a timeout takes the sign of the return);
    NaN where ATR is undefined or the horizon passes the last bar."""
    n = close.shape[0]
    y = np.full(n, np.nan)
    end = np.full(n, -1, np.int64)
    _barrier_nb(np.ascontiguousarray(high, np.float64), np.ascontiguousarray(low, np.float64),
                np.ascontiguousarray(close, np.float64), np.ascontiguousarray(atr, np.float64),
                int(horizon), float(tp_atr), float(sl_atr), y, end)
    return y, end
