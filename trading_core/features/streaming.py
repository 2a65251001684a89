"""Incremental (per-bar) indicator states, vectorised over N columns, equal to the batch functions.

Each class is built as ``XxxState(n_cols, **the batch function's parameters)``, takes one bar with
``update(*inputs)`` (each input a (n_cols,) float array, in the batch function's argument order)
and returns that bar's value(s) in the batch function's output order: one (n_cols,) array, or a
tuple of them. Fed the bars of a series one at a time, the outputs equal the batch function on
that series bit for bit, NaN warm-up included, because both call the same compiled scalar step of
``trading_core.features.indicators`` (and, for the price levels, the same kernels of
``trading_core.features.levels``). ``state()`` gives every value a state carries (plain values
and NumPy arrays, copies); ``load_state`` puts them into a freshly built state of the same
parameters, which then continues exactly as the original would have.

Cost per bar: O(1) for the recursive indicators (SMA, EMA, Wilder, ATR, RSI, MACD, ADX), O(window)
for the finite-window ones, which keep the last W inputs in a *mirrored ring* (each value written
at ``i % W`` and ``i % W + W``, so the last W values are always one contiguous slice in time
order) and evaluate the batch window kernel on it; their batch value at bar t depends only on bars
[t - W + 1, t], so this is exact.

=======================  ======================================  =================================
class                    batch function                          update(...) ->
=======================  ======================================  =================================
SmaState(n)              indicators.sma                          (x) -> sma
EmaState(n)              indicators.ema                          (x) -> ema
WilderState(n)           indicators._wilder_nb (first=0)         (x) -> average
AtrState(n=14)           indicators.atr                          (high, low, close) -> atr
RsiState(n=14)           indicators.rsi                          (close) -> rsi
MacdState(12, 26, 9)     indicators.macd                         (close) -> (line, signal, hist)
BollingerState(20, 2.0)  indicators.bollinger                    (close) -> (mid, upper, lower,
                                                                 pctb, width)
AdxState(n=14)           indicators.adx                          (high, low, close) -> (adx, +DI,
                                                                 -DI)
MaSlopeState(n, k)       indicators.ma_slope                     (x, scale=None) -> slope
RealisedVolState(20,     indicators.realised_vol                 (close) -> rvol
252.0)
RollingPercentileState   indicators.rolling_percentile           (x) -> rank
(n)
RollingMaxState(n)       indicators.rolling_max                  (x) -> highest
RollingMinState(n)       indicators.rolling_min                  (x) -> lowest
VolumeProfileState       levels.volume_profile                   (high, low, close, volume) ->
(n=100, bins=24, .7)                                             (poc, vah, val)
SupportResistanceState   levels.support_resistance               (high, low, close) -> (support,
(k=5, n=250, .01, 1)                                             resistance)
FibonacciState(k=5,      levels.fibonacci                        (high, low) -> (n_cols, R)
n=250, ratios)
=======================  ======================================  =================================
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numba as nb
import numpy as np
from numpy.typing import NDArray

from . import indicators as ind
from .indicators import (
    ADX_STATE,
    adx_step,
    bollinger_value,
    ewm_step,
    log_return,
    ma_slope_value,
    rsi_value,
    sma_step,
    true_range_step,
    wilder_step,
    window_max,
    window_min,
    window_pct,
    window_std,
)
from .levels import FIB_RATIOS, _fib_nb, _pivots_nb, _sr_nb, _volume_profile_nb

F64 = NDArray[np.float64]

__all__ = [
    "AdxState",
    "AtrState",
    "BollingerState",
    "EmaState",
    "FibonacciState",
    "IndicatorState",
    "MaSlopeState",
    "MacdState",
    "RealisedVolState",
    "RollingMaxState",
    "RollingMinState",
    "RollingPercentileState",
    "RsiState",
    "SmaState",
    "SupportResistanceState",
    "VolumeProfileState",
    "WilderState",
]


# ############# Compiled per-bar kernels (loops over columns around the shared scalar steps) ##### #


@nb.njit(cache=True)
def _ring_push(ring: F64, count: int, w: int, x: F64) -> int:
    """Write bar ``count`` into the mirrored ring (n_cols, 2w); return the start of the last
    ``w`` values (valid once ``count + 1 >= w``)."""
    p = count % w
    for j in range(x.shape[0]):
        ring[j, p] = x[j]
        ring[j, p + w] = x[j]
    return p + 1


@nb.njit(cache=True)
def _sma_update_nb(x: F64, ring: F64, total: F64, nans: NDArray[np.int64], count: int, n: int,
                   out: F64) -> None:
    p = count % n
    drop = count >= n
    for j in range(x.shape[0]):
        total[j], nans[j] = sma_step(total[j], nans[j], x[j], ring[j, p] if drop else 0.0, drop)
        ring[j, p] = x[j]
        out[j] = total[j] / n if count >= n - 1 and nans[j] == 0 else np.nan


@nb.njit(cache=True)
def _ewm_update_nb(x: F64, e: F64, seen: NDArray[np.int64], alpha: float, minp: int, out: F64) -> None:
    for j in range(x.shape[0]):
        v = x[j]
        e[j], seen[j] = ewm_step(e[j], seen[j], v, alpha)
        out[j] = e[j] if not np.isnan(v) and seen[j] >= minp else np.nan


@nb.njit(cache=True)
def _wilder_update_nb(x: F64, a: F64, s: F64, count: int, n: int, out: F64) -> None:
    for j in range(x.shape[0]):
        a[j], s[j] = wilder_step(a[j], s[j], count, x[j], n)
        out[j] = a[j] if count >= n - 1 else np.nan


@nb.njit(cache=True)
def _atr_update_nb(h: F64, lo: F64, c: F64, pc: F64, a: F64, s: F64, count: int, n: int, out: F64) -> None:
    for j in range(h.shape[0]):
        tr = true_range_step(h[j], lo[j], pc[j], count > 0)
        a[j], s[j] = wilder_step(a[j], s[j], count, tr, n)
        out[j] = a[j] if count >= n - 1 else np.nan
        pc[j] = c[j]


@nb.njit(cache=True)
def _rsi_update_nb(c: F64, pc: F64, e: F64, seen: NDArray[np.int64], count: int, n: int, out: F64) -> None:
    alpha = 1.0 / n
    for j in range(c.shape[0]):
        d = c[j] - pc[j] if count > 0 else 0.0
        up = d if d > 0 else 0.0
        dn = -d if d < 0 else 0.0
        e[j, 0], seen[j, 0] = ewm_step(e[j, 0], seen[j, 0], up, alpha)
        e[j, 1], seen[j, 1] = ewm_step(e[j, 1], seen[j, 1], dn, alpha)
        out[j] = rsi_value(e[j, 0] if seen[j, 0] >= n else np.nan, e[j, 1] if seen[j, 1] >= n else np.nan)
        pc[j] = c[j]


@nb.njit(cache=True)
def _macd_update_nb(c: F64, e: F64, seen: NDArray[np.int64], fast: int, slow: int, signal: int,
                    line: F64, sig: F64, hist: F64) -> None:
    af, a_s, ag = 2.0 / (fast + 1.0), 2.0 / (slow + 1.0), 2.0 / (signal + 1.0)
    for j in range(c.shape[0]):
        v = c[j]
        e[j, 0], seen[j, 0] = ewm_step(e[j, 0], seen[j, 0], v, af)
        e[j, 1], seen[j, 1] = ewm_step(e[j, 1], seen[j, 1], v, a_s)
        ok = not np.isnan(v)
        lv = (e[j, 0] if ok and seen[j, 0] >= fast else np.nan) - (e[j, 1] if ok and seen[j, 1] >= slow else np.nan)
        e[j, 2], seen[j, 2] = ewm_step(e[j, 2], seen[j, 2], lv, ag)
        line[j] = lv
        sig[j] = e[j, 2] if not np.isnan(lv) and seen[j, 2] >= signal else np.nan
        hist[j] = line[j] - sig[j]


@nb.njit(cache=True)
def _bollinger_update_nb(c: F64, ring: F64, total: F64, nans: NDArray[np.int64], count: int, n: int, k: float,
                         out: F64) -> None:
    p = count % n
    drop = count >= n
    for j in range(c.shape[0]):
        total[j], nans[j] = sma_step(total[j], nans[j], c[j], ring[j, p] if drop else 0.0, drop)
        ring[j, p] = c[j]
        ring[j, p + n] = c[j]
        if count < n - 1:
            out[:, j] = np.nan
            continue
        m = total[j] / n if nans[j] == 0 else np.nan
        sd = window_std(ring[j], p + 1, n, 0)
        out[0, j] = m
        out[1, j], out[2, j], out[3, j], out[4, j] = bollinger_value(c[j], m, sd, k)


@nb.njit(cache=True)
def _adx_update_nb(h: F64, lo: F64, c: F64, st: F64, n: int, out: F64) -> None:
    for j in range(h.shape[0]):
        out[0, j], out[1, j], out[2, j] = adx_step(st[j], h[j], lo[j], c[j], n)


@nb.njit(cache=True)
def _slope_update_nb(x: F64, ring: F64, total: F64, nans: NDArray[np.int64], hist: F64, count: int, n: int,
                     k: int, scale: F64, scaled: bool, out: F64) -> None:
    p = count % n
    q = count % k
    drop = count >= n
    for j in range(x.shape[0]):
        total[j], nans[j] = sma_step(total[j], nans[j], x[j], ring[j, p] if drop else 0.0, drop)
        ring[j, p] = x[j]
        m = total[j] / n if count >= n - 1 and nans[j] == 0 else np.nan
        out[j] = ma_slope_value(m, hist[j, q], k, scale[j], scaled) if count >= k else np.nan
        hist[j, q] = m


@nb.njit(cache=True)
def _rvol_update_nb(c: F64, pc: F64, ring: F64, count: int, n: int, root: float, out: F64) -> None:
    p = count % n
    for j in range(c.shape[0]):
        r = log_return(c[j], pc[j]) if count > 0 else np.nan
        ring[j, p] = r
        ring[j, p + n] = r
        out[j] = window_std(ring[j], p + 1, n, 1) * root if count >= n - 1 else np.nan
        pc[j] = c[j]


@nb.njit(cache=True)
def _window_update_nb(x: F64, ring: F64, count: int, n: int, kind: int, out: F64) -> None:
    """kind 0: percentile rank, 1: max, 2: min."""
    lo = _ring_push(ring, count, n, x)
    for j in range(x.shape[0]):
        if count < n - 1:
            out[j] = np.nan
        elif kind == 0:
            out[j] = window_pct(ring[j], lo, n)
        elif kind == 1:
            out[j] = window_max(ring[j], lo, n)
        else:
            out[j] = window_min(ring[j], lo, n)


@nb.njit(cache=True)
def _vp_update_nb(h: F64, lo: F64, c: F64, v: F64, rings: F64, count: int, n: int, bins: int, va: float,
                  out: F64) -> None:
    """``rings`` (4, n_cols, 2n): high, low, close, volume."""
    p = count % n
    for j in range(h.shape[0]):
        rings[0, j, p] = rings[0, j, p + n] = h[j]
        rings[1, j, p] = rings[1, j, p + n] = lo[j]
        rings[2, j, p] = rings[2, j, p + n] = c[j]
        rings[3, j, p] = rings[3, j, p + n] = v[j]
        if count < n - 1:
            out[:, j] = np.nan
            continue
        a, b = p + 1, p + 1 + n
        poc, vah, val = _volume_profile_nb(rings[0, j, a:b], rings[1, j, a:b], rings[2, j, a:b],
                                           rings[3, j, a:b], n, bins, va)
        out[0, j] = poc[n - 1]
        out[1, j] = vah[n - 1]
        out[2, j] = val[n - 1]


@nb.njit(cache=True)
def _pivot_push_nb(h: F64, lo: F64, rings: F64, flags: NDArray[np.bool_], count: int, w: int, k: int) -> int:
    """Push bar ``count`` (high, low) into the mirrored rings (2, n_cols, 2w) and confirm the swing
    pivot of bar ``count - k`` with the batch kernel on its 2k + 1 bars; flags (2, n_cols, 2w) are
    (pivot high, pivot low), set for bars ``<= count - k``. Returns the ring index of bar count."""
    p = count % w
    for j in range(h.shape[0]):
        rings[0, j, p] = h[j]
        rings[0, j, p + w] = h[j]
        rings[1, j, p] = lo[j]
        rings[1, j, p + w] = lo[j]
        flags[0, j, p] = False
        flags[0, j, p + w] = False
        flags[1, j, p] = False
        flags[1, j, p + w] = False
        if count >= 2 * k:
            a, b = p + w - 2 * k, p + w + 1
            ph, pl = _pivots_nb(rings[0, j, a:b], rings[1, j, a:b], k)
            q = (count - k) % w
            flags[0, j, q] = ph[k]
            flags[0, j, q + w] = ph[k]
            flags[1, j, q] = pl[k]
            flags[1, j, q + w] = pl[k]
    return p + w


@nb.njit(cache=True)
def _sr_update_nb(h: F64, lo: F64, c: F64, rings: F64, flags: NDArray[np.bool_], count: int, w: int, k: int,
                  n: int, tol: float, min_touches: int, out: F64) -> None:
    last = _pivot_push_nb(h, lo, rings, flags, count, w, k)
    # Pivot bars of the batch window of bar t: [max(0, t - n + 1), t - k], as ring positions.
    first = last - min(count, n - 1)
    stop = last - k
    for j in range(h.shape[0]):
        m = 0
        for i in range(first, stop + 1):
            if flags[0, j, i] or flags[1, j, i]:
                m += 1
        if m == 0:
            out[0, j] = np.nan
            out[1, j] = np.nan
            continue
        # The batch kernel on just those pivot bars (+ one bar holding the close): its last bar
        # pools exactly these pivots (k=1, n=m+1), sorts and clusters them as for bar t.
        hh = np.zeros(m + 1)
        ll = np.zeros(m + 1)
        cc = np.zeros(m + 1)
        fh = np.zeros(m + 1, dtype=np.bool_)
        fl = np.zeros(m + 1, dtype=np.bool_)
        m = 0
        for i in range(first, stop + 1):
            if flags[0, j, i] or flags[1, j, i]:
                hh[m] = rings[0, j, i]
                ll[m] = rings[1, j, i]
                fh[m] = flags[0, j, i]
                fl[m] = flags[1, j, i]
                m += 1
        cc[m] = c[j]
        sup, res = _sr_nb(hh, ll, cc, fh, fl, 1, m + 1, tol, min_touches)
        out[0, j] = sup[m]
        out[1, j] = res[m]


@nb.njit(cache=True)
def _fib_update_nb(h: F64, lo: F64, rings: F64, flags: NDArray[np.bool_], count: int, w: int, k: int, n: int,
                   ratios: F64, out: F64) -> None:
    last = _pivot_push_nb(h, lo, rings, flags, count, w, k)
    m = min(count + 1, n)  # the batch value at t depends on pivots of bars (t - n, t - k] only
    a, b = last - m + 1, last + 1
    for j in range(h.shape[0]):
        lv = _fib_nb(rings[0, j, a:b], rings[1, j, a:b], flags[0, j, a:b], flags[1, j, a:b], k, n, ratios)
        out[j] = lv[m - 1]


# ############# States ############# #


def _col(x: Any, n_cols: int) -> F64:
    a = np.ascontiguousarray(x, dtype=np.float64)
    if a.shape != (n_cols,):
        a = np.ascontiguousarray(np.broadcast_to(a, (n_cols,)), dtype=np.float64)
    return a


class IndicatorState:
    """Base: ``n_cols`` columns, ``count`` bars seen, the arrays named in ``_arrays``."""

    _arrays: ClassVar[tuple[str, ...]] = ()

    def __init__(self, n_cols: int) -> None:
        if n_cols < 1:
            raise ValueError("n_cols must be >= 1")
        self.n_cols = int(n_cols)
        self.count = 0

    def params(self) -> dict[str, Any]:
        """The construction parameters (stored in ``state()`` and checked by ``load_state``)."""
        return {}

    def state(self) -> dict[str, Any]:
        out: dict[str, Any] = {"n_cols": self.n_cols, "count": self.count, **self.params()}
        for name in self._arrays:
            out[name] = getattr(self, name).copy()
        return out

    def load_state(self, state: dict[str, Any]) -> None:
        for key, want in {"n_cols": self.n_cols, **self.params()}.items():
            got = state.get(key)
            if got is None or not np.array_equal(np.asarray(got), np.asarray(want)):
                raise ValueError(f"{type(self).__name__}: state has {key}={got!r}, this one {want!r}")
        for name in self._arrays:
            mine = getattr(self, name)
            arr = np.asarray(state[name])
            if arr.shape != mine.shape:
                raise ValueError(f"{type(self).__name__}: state {name} has shape {arr.shape}, "
                                 f"expected {mine.shape}")
            mine[...] = arr
        self.count = int(state["count"])


class SmaState(IndicatorState):
    """``indicators.sma``: the running sum, O(1) per bar."""

    _arrays = ("ring", "total", "nans")

    def __init__(self, n_cols: int, n: int) -> None:
        super().__init__(n_cols)
        if n < 1:
            raise ValueError("n must be >= 1")
        self.n = int(n)
        self.ring = np.zeros((n_cols, self.n))
        self.total = np.zeros(n_cols)
        self.nans = np.zeros(n_cols, np.int64)

    def params(self) -> dict[str, Any]:
        return {"n": self.n}

    def update(self, x: Any) -> F64:
        out = np.empty(self.n_cols)
        _sma_update_nb(_col(x, self.n_cols), self.ring, self.total, self.nans, self.count, self.n, out)
        self.count += 1
        return out


class EmaState(IndicatorState):
    """``indicators.ema``: alpha 2 / (n + 1), seeded with the first value, NaN for n - 1 bars."""

    _arrays = ("e", "seen")

    def __init__(self, n_cols: int, n: int) -> None:
        super().__init__(n_cols)
        if n < 1:
            raise ValueError("n must be >= 1")
        self.n = int(n)
        self.e = np.full(n_cols, np.nan)
        self.seen = np.zeros(n_cols, np.int64)

    def params(self) -> dict[str, Any]:
        return {"n": self.n}

    def update(self, x: Any) -> F64:
        out = np.empty(self.n_cols)
        _ewm_update_nb(_col(x, self.n_cols), self.e, self.seen, 2.0 / (self.n + 1.0), self.n, out)
        self.count += 1
        return out


class WilderState(IndicatorState):
    """Wilder's average of any series (mean of the first n values, then (a (n-1) + x) / n)."""

    _arrays = ("a", "s")

    def __init__(self, n_cols: int, n: int) -> None:
        super().__init__(n_cols)
        if n < 1:
            raise ValueError("n must be >= 1")
        self.n = int(n)
        self.a = np.full(n_cols, np.nan)
        self.s = np.zeros(n_cols)

    def params(self) -> dict[str, Any]:
        return {"n": self.n}

    def update(self, x: Any) -> F64:
        out = np.empty(self.n_cols)
        _wilder_update_nb(_col(x, self.n_cols), self.a, self.s, self.count, self.n, out)
        self.count += 1
        return out


class AtrState(IndicatorState):
    """``indicators.atr`` (= ``risk.trailing.wilder_atr``)."""

    _arrays = ("pc", "a", "s")

    def __init__(self, n_cols: int, n: int = 14) -> None:
        super().__init__(n_cols)
        if n < 1:
            raise ValueError("n must be >= 1")
        self.n = int(n)
        self.pc = np.full(n_cols, np.nan)
        self.a = np.full(n_cols, np.nan)
        self.s = np.zeros(n_cols)

    def params(self) -> dict[str, Any]:
        return {"n": self.n}

    def update(self, high: Any, low: Any, close: Any) -> F64:
        k = self.n_cols
        out = np.empty(k)
        _atr_update_nb(_col(high, k), _col(low, k), _col(close, k), self.pc, self.a, self.s, self.count,
                       self.n, out)
        self.count += 1
        return out


class RsiState(IndicatorState):
    """``indicators.rsi``: Wilder-smoothed gains and losses (alpha 1 / n)."""

    _arrays = ("pc", "e", "seen")

    def __init__(self, n_cols: int, n: int = 14) -> None:
        super().__init__(n_cols)
        self.n = int(n)
        self.pc = np.full(n_cols, np.nan)
        self.e = np.full((n_cols, 2), np.nan)
        self.seen = np.zeros((n_cols, 2), np.int64)

    def params(self) -> dict[str, Any]:
        return {"n": self.n}

    def update(self, close: Any) -> F64:
        out = np.empty(self.n_cols)
        _rsi_update_nb(_col(close, self.n_cols), self.pc, self.e, self.seen, self.count, self.n, out)
        self.count += 1
        return out


class MacdState(IndicatorState):
    """``indicators.macd`` -> (line, signal, hist)."""

    _arrays = ("e", "seen")

    def __init__(self, n_cols: int, fast: int = 12, slow: int = 26, signal: int = 9) -> None:
        super().__init__(n_cols)
        self.fast, self.slow, self.signal = int(fast), int(slow), int(signal)
        self.e = np.full((n_cols, 3), np.nan)
        self.seen = np.zeros((n_cols, 3), np.int64)

    def params(self) -> dict[str, Any]:
        return {"fast": self.fast, "slow": self.slow, "signal": self.signal}

    def update(self, close: Any) -> tuple[F64, F64, F64]:
        k = self.n_cols
        line, sig, hist = np.empty(k), np.empty(k), np.empty(k)
        _macd_update_nb(_col(close, k), self.e, self.seen, self.fast, self.slow, self.signal, line, sig, hist)
        self.count += 1
        return line, sig, hist


class BollingerState(IndicatorState):
    """``indicators.bollinger`` -> (mid, upper, lower, pctb, width); O(n) per bar (two-pass std)."""

    _arrays = ("ring", "total", "nans")

    def __init__(self, n_cols: int, n: int = 20, k: float = 2.0) -> None:
        super().__init__(n_cols)
        if n < 1:
            raise ValueError("n must be >= 1")
        self.n, self.k = int(n), float(k)
        self.ring = np.zeros((n_cols, 2 * self.n))
        self.total = np.zeros(n_cols)
        self.nans = np.zeros(n_cols, np.int64)

    def params(self) -> dict[str, Any]:
        return {"n": self.n, "k": self.k}

    def update(self, close: Any) -> tuple[F64, F64, F64, F64, F64]:
        out = np.empty((5, self.n_cols))
        _bollinger_update_nb(_col(close, self.n_cols), self.ring, self.total, self.nans, self.count, self.n,
                             self.k, out)
        self.count += 1
        return out[0], out[1], out[2], out[3], out[4]


class AdxState(IndicatorState):
    """``indicators.adx`` -> (adx, plus_di, minus_di)."""

    _arrays = ("st",)

    def __init__(self, n_cols: int, n: int = 14) -> None:
        super().__init__(n_cols)
        self.n = int(n)
        self.st = np.zeros((n_cols, ADX_STATE))

    def params(self) -> dict[str, Any]:
        return {"n": self.n}

    def update(self, high: Any, low: Any, close: Any) -> tuple[F64, F64, F64]:
        k = self.n_cols
        out = np.empty((3, k))
        _adx_update_nb(_col(high, k), _col(low, k), _col(close, k), self.st, self.n, out)
        self.count += 1
        return out[0], out[1], out[2]


class MaSlopeState(IndicatorState):
    """``indicators.ma_slope(x, n, k, scale)``: ``update(x, scale=None)``, the scale (e.g. ATR)
    given per bar like the batch function's ``scale`` array."""

    _arrays = ("ring", "total", "nans", "hist")

    def __init__(self, n_cols: int, n: int, k: int) -> None:
        super().__init__(n_cols)
        if k < 1:
            raise ValueError("k must be >= 1")
        if n < 1:
            raise ValueError("n must be >= 1")
        self.n, self.k = int(n), int(k)
        self.ring = np.zeros((n_cols, self.n))
        self.total = np.zeros(n_cols)
        self.nans = np.zeros(n_cols, np.int64)
        self.hist = np.full((n_cols, self.k), np.nan)

    def params(self) -> dict[str, Any]:
        return {"n": self.n, "k": self.k}

    def update(self, x: Any, scale: Any = None) -> F64:
        c = self.n_cols
        out = np.empty(c)
        s = np.zeros(c) if scale is None else _col(scale, c)
        _slope_update_nb(_col(x, c), self.ring, self.total, self.nans, self.hist, self.count, self.n, self.k, s,
                         scale is not None, out)
        self.count += 1
        return out


class RealisedVolState(IndicatorState):
    """``indicators.realised_vol``: sample std of the last n log returns x sqrt(periods_per_year)."""

    _arrays = ("pc", "ring")

    def __init__(self, n_cols: int, n: int = 20, periods_per_year: float = 252.0) -> None:
        super().__init__(n_cols)
        if n < 1:
            raise ValueError("n must be >= 1")
        self.n, self.periods_per_year = int(n), float(periods_per_year)
        self._root = math.sqrt(self.periods_per_year)
        self.pc = np.full(n_cols, np.nan)
        self.ring = np.full((n_cols, 2 * self.n), np.nan)

    def params(self) -> dict[str, Any]:
        return {"n": self.n, "periods_per_year": self.periods_per_year}

    def update(self, close: Any) -> F64:
        out = np.empty(self.n_cols)
        _rvol_update_nb(_col(close, self.n_cols), self.pc, self.ring, self.count, self.n, self._root, out)
        self.count += 1
        return out


class _WindowState(IndicatorState):
    _arrays = ("ring",)
    _kind: ClassVar[int] = 0

    def __init__(self, n_cols: int, n: int) -> None:
        super().__init__(n_cols)
        if n < 1:
            raise ValueError("n must be >= 1")
        self.n = int(n)
        self.ring = np.full((n_cols, 2 * self.n), np.nan)

    def params(self) -> dict[str, Any]:
        return {"n": self.n}

    def update(self, x: Any) -> F64:
        out = np.empty(self.n_cols)
        _window_update_nb(_col(x, self.n_cols), self.ring, self.count, self.n, self._kind, out)
        self.count += 1
        return out


class RollingPercentileState(_WindowState):
    """``indicators.rolling_percentile``: rank of the bar's value among the last n."""

    _kind = 0


class RollingMaxState(_WindowState):
    """``indicators.rolling_max`` (YAML ``highest``)."""

    _kind = 1


class RollingMinState(_WindowState):
    """``indicators.rolling_min`` (YAML ``lowest``)."""

    _kind = 2


class VolumeProfileState(IndicatorState):
    """``levels.volume_profile`` -> (poc, vah, val): the batch kernel on the last n bars."""

    _arrays = ("rings",)

    def __init__(self, n_cols: int, n: int = 100, bins: int = 24, value_area: float = 0.7) -> None:
        super().__init__(n_cols)
        if not 0 < value_area <= 1:
            raise ValueError("value_area must be in (0, 1]")
        self.n, self.bins, self.value_area = int(n), int(bins), float(value_area)
        self.rings = np.full((4, n_cols, 2 * self.n), np.nan)

    def params(self) -> dict[str, Any]:
        return {"n": self.n, "bins": self.bins, "value_area": self.value_area}

    def update(self, high: Any, low: Any, close: Any, volume: Any) -> tuple[F64, F64, F64]:
        k = self.n_cols
        out = np.empty((3, k))
        _vp_update_nb(_col(high, k), _col(low, k), _col(close, k), _col(volume, k), self.rings, self.count, self.n,
                      self.bins, self.value_area, out)
        self.count += 1
        return out[0], out[1], out[2]


class _PivotState(IndicatorState):
    """Swing pivots confirmed k bars late, over a ring of the last ``max(n, 2k + 1)`` bars."""

    _arrays = ("rings", "flags")

    def __init__(self, n_cols: int, k: int, n: int) -> None:
        super().__init__(n_cols)
        if k < 1 or n < 1:
            raise ValueError("k and n must be >= 1")
        self.k, self.n = int(k), int(n)
        self.w = max(self.n, 2 * self.k + 1)
        self.rings = np.full((2, n_cols, 2 * self.w), np.nan)
        self.flags = np.zeros((2, n_cols, 2 * self.w), np.bool_)


class SupportResistanceState(_PivotState):
    """``levels.support_resistance`` -> (support, resistance)."""

    def __init__(self, n_cols: int, k: int = 5, n: int = 250, tol: float = 0.01, min_touches: int = 1) -> None:
        super().__init__(n_cols, k, n)
        self.tol, self.min_touches = float(tol), int(min_touches)

    def params(self) -> dict[str, Any]:
        return {"k": self.k, "n": self.n, "tol": self.tol, "min_touches": self.min_touches}

    def update(self, high: Any, low: Any, close: Any) -> tuple[F64, F64]:
        c = self.n_cols
        out = np.empty((2, c))
        _sr_update_nb(_col(high, c), _col(low, c), _col(close, c), self.rings, self.flags, self.count, self.w,
                      self.k, self.n, self.tol, self.min_touches, out)
        self.count += 1
        return out[0], out[1]


class FibonacciState(_PivotState):
    """``levels.fibonacci`` -> (n_cols, len(ratios)) retracement levels of the last swing."""

    def __init__(self, n_cols: int, k: int = 5, n: int = 250, ratios: tuple[float, ...] = FIB_RATIOS) -> None:
        super().__init__(n_cols, k, n)
        self.ratios = tuple(float(r) for r in ratios)
        self._ratios = np.asarray(self.ratios, dtype=np.float64)

    def params(self) -> dict[str, Any]:
        return {"k": self.k, "n": self.n, "ratios": self.ratios}

    def update(self, high: Any, low: Any) -> F64:
        c = self.n_cols
        out = np.empty((c, len(self.ratios)))
        _fib_update_nb(_col(high, c), _col(low, c), self.rings, self.flags, self.count, self.w, self.k, self.n,
                       self._ratios, out)
        self.count += 1
        return out


# The batch functions by state class (what the tests compare against).
BATCH: dict[type[IndicatorState], Any] = {
    SmaState: ind.sma,
    EmaState: ind.ema,
    AtrState: ind.atr,
    RsiState: ind.rsi,
    MacdState: ind.macd,
    BollingerState: ind.bollinger,
    AdxState: ind.adx,
    MaSlopeState: ind.ma_slope,
    RealisedVolState: ind.realised_vol,
    RollingPercentileState: ind.rolling_percentile,
    RollingMaxState: ind.rolling_max,
    RollingMinState: ind.rolling_min,
}
