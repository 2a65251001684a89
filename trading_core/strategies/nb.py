"""Numba kernels of the indicators the rule strategies need (2-D: bars x columns).

Contract (as in vectorbt's ``nb`` modules): NumPy arrays and Numba types only, 2-D ``(T, N)`` in
and out, float64, NaN until an indicator has its full window. Jitted names end in ``_nb``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..features.indicators import ewm_step, sma_step


@njit(cache=True)
def sma_nb(x: np.ndarray, window: int) -> np.ndarray:
    """Simple moving average over ``window`` bars (pandas ``rolling(window).mean()``), per column.

    The running sum of ``features.indicators.sma_step`` (O(T) per column; the one SMA arithmetic
    of the library: ``features.indicators.sma`` and the streaming ``SmaState`` use it too); a NaN
    anywhere in the window gives NaN.
    """
    n_rows, n_cols = x.shape
    out = np.full((n_rows, n_cols), np.nan)
    for j in range(n_cols):
        total = 0.0
        nans = 0
        for i in range(n_rows):
            drop = i >= window
            total, nans = sma_step(total, nans, x[i, j], x[i - window, j] if drop else 0.0, drop)
            if i >= window - 1 and nans == 0:
                out[i, j] = total / window
    return out


@njit(cache=True)
def ema_nb(x: np.ndarray, window: int) -> np.ndarray:
    """Exponential moving average, alpha = 2 / (window + 1), seeded with the first value, per column.

    ``features.indicators.ewm_step`` (as ``features.indicators.ema``): pandas
    ``ewm(span=window, adjust=False, min_periods=window).mean()`` on finite input; a NaN bar leaves
    the state unchanged and outputs NaN.
    """
    n_rows, n_cols = x.shape
    out = np.full((n_rows, n_cols), np.nan)
    alpha = 2.0 / (window + 1.0)
    for j in range(n_cols):
        y = np.nan
        seen = 0
        for i in range(n_rows):
            v = x[i, j]
            y, seen = ewm_step(y, seen, v, alpha)
            if not np.isnan(v) and seen >= window:
                out[i, j] = y
    return out


def crossed_above(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """True at bar t when ``a`` is above ``b`` at t and was at or below it at t-1 (both defined)."""
    out = np.zeros(a.shape, dtype=np.bool_)
    with np.errstate(invalid="ignore"):
        out[1:] = (a[1:] > b[1:]) & (a[:-1] <= b[:-1])
    return out


_CHUNK = 32768  # bars per pass of the fused crossover kernel: two parallel regions per pass
_ROWS = 256  # bars per parallel work item when writing the crossovers


@njit(cache=True, parallel=True)
def ma_cross_signals_nb(x: np.ndarray, windows: np.ndarray, fast_w: np.ndarray, slow_w: np.ndarray,
                        ema: bool, chunk: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Entries/exits of a grid of moving-average crossovers in one pass, no (T, P) float matrices.

    ``x`` is (T, S) closes; ``windows`` the distinct windows; ``fast_w``/``slow_w`` (n_pairs,) index
    into ``windows``. Column ``i * S + s`` is pair ``i`` on asset ``s`` (the layout of
    ``np.concatenate([ma[f] for f, _ in pairs], axis=1)``). Each distinct window's average is
    computed once per asset, a chunk of bars at a time, with the very steps of ``sma_nb`` /
    ``ema_nb`` (``sma_step`` / ``ewm_step``; running state carried across chunks), and the
    crossovers (``crossed_above``) are written straight into the boolean outputs. Bit-identical to the NumPy path. Few, large parallel
    regions: on a loaded machine every region start waits for all threads to be scheduled.
    ``chunk`` (bars per pass, 0 = automatic) only changes memory and speed, never the result.
    """
    T, S = x.shape
    W = windows.shape[0]
    NP = fast_w.shape[0]
    P = NP * S
    WS = W * S
    entries = np.zeros((T, P), dtype=np.bool_)
    exits = np.zeros((T, P), dtype=np.bool_)
    # running state per (window, asset)
    tot = np.zeros(WS)
    nans = np.zeros(WS, dtype=np.int64)
    seen = np.zeros(WS, dtype=np.int64)
    ys = np.full(WS, np.nan)
    # chunk: at least _CHUNK bars, more when few (window, asset) columns (buffer <= ~32 MB)
    if chunk <= 0:
        chunk = max(_CHUNK, (1 << 22) // max(WS, 1))
    CH = min(T, chunk)
    # buf[col, 0] = last bar of the previous chunk; buf[col, 1:] = this chunk
    buf = np.full((WS, CH + 1), np.nan)
    for c0 in range(0, T, chunk):
        c1 = min(T, c0 + chunk)
        n = c1 - c0
        for col in prange(WS):
            w = col // S
            s = col - w * S
            window = windows[w]
            if ema:
                alpha = 2.0 / (window + 1.0)
                y = ys[col]
                k = seen[col]
                for i in range(c0, c1):
                    v = x[i, s]
                    y, k = ewm_step(y, k, v, alpha)
                    buf[col, i - c0 + 1] = y if (k >= window and not np.isnan(v)) else np.nan
                ys[col] = y
                seen[col] = k
            else:
                total = tot[col]
                nn = nans[col]
                for i in range(c0, c1):
                    drop = i >= window
                    total, nn = sma_step(total, nn, x[i, s], x[i - window, s] if drop else 0.0, drop)
                    if i >= window - 1 and nn == 0:
                        buf[col, i - c0 + 1] = total / window
                    else:
                        buf[col, i - c0 + 1] = np.nan
                tot[col] = total
                nans[col] = nn
        r0 = 1 if c0 == 0 else 0  # crossed_above is False on the first bar
        n_blk = (n - r0 + _ROWS - 1) // _ROWS
        for b in prange(n_blk):
            lo = r0 + b * _ROWS
            hi = min(n, lo + _ROWS)
            for i in range(NP):
                fo = fast_w[i] * S
                so = slow_w[i] * S
                for s in range(S):
                    col = i * S + s
                    for r in range(lo, hi):
                        f = buf[fo + s, r + 1]
                        sl = buf[so + s, r + 1]
                        fp = buf[fo + s, r]
                        sp = buf[so + s, r]
                        entries[c0 + r, col] = f > sl and fp <= sp
                        exits[c0 + r, col] = sl > f and sp <= fp
        for col in range(WS):
            buf[col, 0] = buf[col, n]
    return entries, exits
