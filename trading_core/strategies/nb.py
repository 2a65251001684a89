"""Numba kernels of the indicators the rule strategies need (2-D: bars x columns).

Contract (as in vectorbt's ``nb`` modules): NumPy arrays and Numba types only, 2-D ``(T, N)`` in
and out, float64, NaN until an indicator has its full window. Jitted names end in ``_nb``.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def sma_nb(x: np.ndarray, window: int) -> np.ndarray:
    """Simple moving average over ``window`` bars (pandas ``rolling(window).mean()``).

    A running sum makes it O(T) per column; a NaN anywhere in the window gives NaN.
    """
    n_rows, n_cols = x.shape
    out = np.full((n_rows, n_cols), np.nan)
    for j in range(n_cols):
        total = 0.0
        nans = 0
        for i in range(n_rows):
            v = x[i, j]
            if np.isnan(v):
                nans += 1
            else:
                total += v
            if i >= window:
                old = x[i - window, j]
                if np.isnan(old):
                    nans -= 1
                else:
                    total -= old
            if i >= window - 1 and nans == 0:
                out[i, j] = total / window
    return out


@njit(cache=True)
def ema_nb(x: np.ndarray, window: int) -> np.ndarray:
    """Exponential moving average, alpha = 2 / (window + 1), seeded with the first value.

    Same as pandas ``ewm(span=window, adjust=False, min_periods=window).mean()`` on finite input;
    a NaN bar leaves the state unchanged and outputs NaN.
    """
    n_rows, n_cols = x.shape
    out = np.full((n_rows, n_cols), np.nan)
    alpha = 2.0 / (window + 1.0)
    for j in range(n_cols):
        y = np.nan
        seen = 0
        for i in range(n_rows):
            v = x[i, j]
            if np.isnan(v):
                continue
            y = v if seen == 0 else alpha * v + (1.0 - alpha) * y
            seen += 1
            if seen >= window:
                out[i, j] = y
    return out


def crossed_above(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """True at bar t when ``a`` is above ``b`` at t and was at or below it at t-1 (both defined)."""
    out = np.zeros(a.shape, dtype=np.bool_)
    with np.errstate(invalid="ignore"):
        out[1:] = (a[1:] > b[1:]) & (a[:-1] <= b[:-1])
    return out
