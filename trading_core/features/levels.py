"""Price levels: rolling volume profile, swing pivots, clustered support/resistance, Fibonacci.

All of them look only at the past: a swing pivot at bar ``i`` needs ``k`` bars on each side, so it
becomes known (and usable) only at bar ``i + k``. Using it earlier would leak the future into
backtests, which is the classic way these features flatter a strategy.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numpy.typing import NDArray

from .indicators import F64, _f64

__all__ = ["FIB_RATIOS", "fibonacci", "support_resistance", "swing_pivots", "volume_profile"]

FIB_RATIOS: tuple[float, ...] = (0.236, 0.382, 0.5, 0.618, 0.786)


@nb.njit(cache=True)
def _volume_profile_nb(h: F64, lo: F64, c: F64, v: F64, n: int, bins: int,
                       va: float) -> tuple[F64, F64, F64]:
    size = h.shape[0]
    poc = np.full(size, np.nan)
    vah = np.full(size, np.nan)
    val = np.full(size, np.nan)
    hist = np.zeros(bins)
    for t in range(n - 1, size):
        top = -np.inf
        bot = np.inf
        total = 0.0
        for j in range(t - n + 1, t + 1):
            top = max(top, h[j])
            bot = min(bot, lo[j])
            total += v[j]
        if not (top > bot) or not (total > 0):
            continue
        width = (top - bot) / bins
        hist[:] = 0.0
        for j in range(t - n + 1, t + 1):
            tp = (h[j] + lo[j] + c[j]) / 3.0
            b = int((tp - bot) / width)
            b = min(max(b, 0), bins - 1)
            hist[b] += v[j]
        p = 0
        for b in range(1, bins):
            if hist[b] > hist[p]:
                p = b
        lo_b = p
        hi_b = p
        acc = hist[p]
        target = va * total
        while acc < target and (lo_b > 0 or hi_b < bins - 1):
            up = hist[hi_b + 1] if hi_b < bins - 1 else -1.0
            dn = hist[lo_b - 1] if lo_b > 0 else -1.0
            if up >= dn:
                hi_b += 1
                acc += up
            else:
                lo_b -= 1
                acc += dn
        poc[t] = bot + (p + 0.5) * width
        vah[t] = bot + (hi_b + 1) * width
        val[t] = bot + lo_b * width
    return poc, vah, val


def volume_profile(high: NDArray, low: NDArray, close: NDArray, volume: NDArray, n: int = 100,
                   bins: int = 24, value_area: float = 0.7) -> tuple[F64, F64, F64]:
    """Rolling volume profile of the last ``n`` bars: (point of control, value-area high, low).

    The window's [min low, max high] is cut into ``bins`` equal bins and each bar's volume goes to
    the bin of its typical price (h+l+c)/3 (spreading it over the bar's range would cost ``bins``
    times more for little gain at this resolution). POC is the centre of the heaviest bin; the value
    area grows from the POC one bin at a time towards the heavier neighbour until it holds
    ``value_area`` of the volume; VAH/VAL are its outer bin edges. NaN in warm-up (``n - 1`` bars)
    and where the window has no volume (e.g. an index such as ^VIX).
    """
    if not 0 < value_area <= 1:
        raise ValueError("value_area must be in (0, 1]")
    return _volume_profile_nb(_f64(high), _f64(low), _f64(close), _f64(volume), n, bins,
                              value_area)


@nb.njit(cache=True)
def _pivots_nb(h: F64, lo: F64, k: int) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    size = h.shape[0]
    ph = np.zeros(size, dtype=np.bool_)
    pl = np.zeros(size, dtype=np.bool_)
    for i in range(k, size - k):
        is_h = True
        is_l = True
        for j in range(i - k, i + k + 1):
            if j == i:
                continue
            # Strict on the left, non-strict on the right: a flat top counts once, at its start.
            if (j < i and h[j] >= h[i]) or (j > i and h[j] > h[i]):
                is_h = False
            if (j < i and lo[j] <= lo[i]) or (j > i and lo[j] < lo[i]):
                is_l = False
        ph[i] = is_h
        pl[i] = is_l
    return ph, pl


def swing_pivots(high: NDArray, low: NDArray, k: int = 5) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Masks of swing highs and lows: the extreme of the ``2k + 1`` bars centred on them.

    Marked at the pivot bar itself; it is CONFIRMED only ``k`` bars later (see module doc).
    """
    return _pivots_nb(_f64(high), _f64(low), k)


@nb.njit(cache=True)
def _sr_nb(h: F64, lo: F64, c: F64, ph: NDArray[np.bool_], pl: NDArray[np.bool_], k: int, n: int,
           tol: float, min_touches: int) -> tuple[F64, F64]:
    size = c.shape[0]
    sup = np.full(size, np.nan)
    res = np.full(size, np.nan)
    buf = np.empty(2 * n)
    for t in range(size):
        m = 0
        # Pivots inside the window whose confirmation bar (i + k) is not after t.
        for i in range(max(0, t - n + 1), t - k + 1):
            if ph[i]:
                buf[m] = h[i]
                m += 1
            if pl[i]:
                buf[m] = lo[i]
                m += 1
        if m == 0:
            continue
        lv = np.sort(buf[:m])
        best_s = np.nan
        best_r = np.nan
        start = 0
        while start < m:
            s = lv[start]
            cnt = 1
            end = start + 1
            while end < m and lv[end] <= (s / cnt) * (1.0 + tol):
                s += lv[end]
                cnt += 1
                end += 1
            if cnt >= min_touches:
                level = s / cnt
                if level <= c[t]:
                    best_s = level  # ascending order: the last one below is the nearest
                elif np.isnan(best_r):
                    best_r = level
            start = end
        sup[t] = best_s
        res[t] = best_r
    return sup, res


def support_resistance(high: NDArray, low: NDArray, close: NDArray, k: int = 5, n: int = 250,
                       tol: float = 0.01, min_touches: int = 1) -> tuple[F64, F64]:
    """Nearest support (at or below close) and resistance (above close) from clustered pivots.

    Confirmed swing highs and lows of the last ``n`` bars are pooled (a broken resistance becomes
    support), sorted, and grouped while each price is within ``tol`` (fraction) of the group's
    running mean; a group with at least ``min_touches`` pivots is a level at its mean price.
    NaN where no level exists on that side.
    """
    h, lo, c = _f64(high), _f64(low), _f64(close)
    ph, pl = _pivots_nb(h, lo, k)
    return _sr_nb(h, lo, c, ph, pl, k, n, tol, min_touches)


@nb.njit(cache=True)
def _fib_nb(h: F64, lo: F64, ph: NDArray[np.bool_], pl: NDArray[np.bool_], k: int, n: int,
            ratios: F64) -> F64:
    size = h.shape[0]
    out = np.full((size, ratios.shape[0]), np.nan)
    last_h = -1
    last_l = -1
    for t in range(size):
        i = t - k  # the pivot candidate confirmed at this bar
        if i >= 0:
            if ph[i]:
                last_h = i
            if pl[i]:
                last_l = i
        if last_h < 0 or last_l < 0 or last_h <= t - n or last_l <= t - n:
            continue
        hi = h[last_h]
        low = lo[last_l]
        rng = hi - low
        for r in range(ratios.shape[0]):
            if last_h > last_l:  # up-swing: retracements measured down from the high
                out[t, r] = hi - ratios[r] * rng
            else:  # down-swing: retracements measured up from the low
                out[t, r] = low + ratios[r] * rng
    return out


def fibonacci(high: NDArray, low: NDArray, k: int = 5, n: int = 250,
              ratios: tuple[float, ...] = FIB_RATIOS) -> F64:
    """Fibonacci retracement levels of the last confirmed swing, shape ``(len, len(ratios))``.

    The swing runs between the latest confirmed pivot high and pivot low (both within the last
    ``n`` bars). After an up-swing (low then high) level r is ``high - r (high - low)``; after a
    down-swing it is ``low + r (high - low)``. NaN until both ends exist in the window.
    """
    h, lo = _f64(high), _f64(low)
    ph, pl = _pivots_nb(h, lo, k)
    return _fib_nb(h, lo, ph, pl, k, n, np.asarray(ratios, dtype=np.float64))
