"""Indicators as small pure functions on 1-D float arrays (NumPy in, NumPy out, same length).

Why arrays and not frames: every indicator is then usable from a notebook, a strategy, the
simulation core or the feature pipeline alike, and the recursive ones (EMA, Wilder smoothing) run
as Numba loops instead of Python. Conventions shared by all of them:

* Warm-up bars are NaN (never 0 and never a partial average), so nothing downstream mistakes an
  unready value for a signal. Each function documents its NaN warm-up length.
* Recursive indicators (EMA, MACD, RSI, ATR, ADX) follow the ``ta`` library's seeding so they can be
  cross-checked value for value; their value still depends on the seed for a while after the
  NaN warm-up. ``convergence_bars`` says how long, which is what incremental recomputation uses.
* Inputs are assumed finite and sorted by time (the warehouse guarantees both).

One source of arithmetic. Every indicator is written as a scalar *step* (``sma_step``,
``ewm_step``, ``wilder_step``, ``adx_step``, ``window_std`` ...): the batch functions here loop it
over the bars, and the per-bar states of ``trading_core.features.streaming`` (and the strategies'
2-D kernels in ``trading_core.strategies.nb``) call the very same compiled function, so a stream
fed bar by bar reproduces the batch value bit for bit. Transcendental functions (``log``, ``exp``)
are taken inside Numba on both sides for the same reason (NumPy's SIMD ``log`` differs from libm's
in the last bit on some CPUs).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]

__all__ = [
    "adx",
    "atr",
    "bollinger",
    "convergence_bars",
    "ema",
    "log_returns",
    "ma_slope",
    "macd",
    "realised_vol",
    "rolling_max",
    "rolling_min",
    "rolling_percentile",
    "rsi",
    "sma",
    "true_range",
]


def _f64(x: NDArray | list[float]) -> F64:
    return np.ascontiguousarray(x, dtype=np.float64)


def convergence_bars(alpha: float, tol: float = 1e-13) -> int:
    """Bars after which an exponential smoother has forgotten its seed to ``tol`` (relative).

    The seed's weight after k bars is ``(1 - alpha) ** k``; solving for ``tol`` gives the history a
    recomputation must include so that it reproduces a full recompute to ~``tol`` x price range.
    """
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    if alpha == 1.0:
        return 1
    return int(math.ceil(math.log(tol) / math.log(1.0 - alpha)))


# ############# Scalar steps (shared with features.streaming and strategies.nb) ############# #


@nb.njit(cache=True, inline="always")
def sma_step(total: float, nans: int, v: float, old: float, drop: bool) -> tuple[float, int]:
    """Running sum of a window: add ``v``, then (``drop``) remove ``old``, the value leaving the
    window; NaNs are counted, not summed. The value is ``total / n`` once the window is full and
    ``nans == 0``. O(1) per bar; the sum carries rounding from the series start (~1e-16 relative)."""
    if np.isnan(v):
        nans += 1
    else:
        total += v
    if drop:
        if np.isnan(old):
            nans -= 1
        else:
            total -= old
    return total, nans


@nb.njit(cache=True, inline="always")
def ewm_step(e: float, seen: int, v: float, alpha: float) -> tuple[float, int]:
    """Exponential smoother (pandas ``adjust=False``): seeded with the first non-NaN value, then
    ``alpha * v + (1 - alpha) * e``. A NaN ``v`` leaves the state unchanged (its output is NaN);
    the value is ``e`` once ``seen >= min_periods``."""
    if np.isnan(v):
        return e, seen
    if seen == 0:
        return v, 1
    return alpha * v + (1.0 - alpha) * e, seen + 1


@nb.njit(cache=True, inline="always")
def wilder_step(a: float, s: float, k: int, v: float, n: int) -> tuple[float, float]:
    """Wilder's average, ``k`` = values seen before ``v``: the first ``n`` are summed (``s``) and
    averaged at the n-th, then ``a = (a * (n - 1) + v) / n``. Defined once ``k >= n - 1``."""
    if k < n - 1:
        return a, s + v
    if k == n - 1:
        s += v
        return s / n, s
    return (a * (n - 1) + v) / n, s


@nb.njit(cache=True, inline="always")
def true_range_step(h: float, lo: float, pc: float, has_prev: bool) -> float:
    """``max(h - lo, |h - pc|, |lo - pc|)``; ``h - lo`` without a previous close."""
    tr = h - lo
    if has_prev:
        tr = max(tr, max(abs(h - pc), abs(lo - pc)))
    return tr


@nb.njit(cache=True, inline="always")
def rsi_value(au: float, ad: float) -> float:
    """RSI from the average gain and loss: 100 when there is no loss, NaN while either is NaN."""
    if np.isnan(au) or np.isnan(ad):
        return np.nan
    if ad == 0.0:
        return 100.0
    return 100.0 - 100.0 / (1.0 + au / ad)


@nb.njit(cache=True, inline="always", error_model="numpy")
def bollinger_value(c: float, mid: float, sd: float, k: float) -> tuple[float, float, float, float]:
    """(upper, lower, %b, width) from the close, the mid (SMA) and the population std."""
    upper = mid + k * sd
    lower = mid - k * sd
    span = upper - lower
    pctb = (c - lower) / span if span > 0 else np.nan
    return upper, lower, pctb, span / mid


@nb.njit(cache=True, error_model="numpy")
def window_std(x: F64, lo: int, n: int, ddof: int) -> float:
    """Two-pass std of ``x[lo : lo + n]`` (NaN if any value is NaN): exact and independent of where
    the series starts."""
    if n - ddof <= 0:
        return np.nan
    s = 0.0
    for j in range(lo, lo + n):
        if np.isnan(x[j]):
            return np.nan
        s += x[j]
    m = s / n
    ss = 0.0
    for j in range(lo, lo + n):
        ss += (x[j] - m) * (x[j] - m)
    return math.sqrt(ss / (n - ddof))


@nb.njit(cache=True)
def window_pct(x: F64, lo: int, n: int) -> float:
    """Percentile rank of the window's last value ``x[lo + n - 1]`` among ``x[lo : lo + n]``."""
    v = x[lo + n - 1]
    if np.isnan(v):
        return np.nan
    le = 0
    for j in range(lo, lo + n):
        if np.isnan(x[j]):
            return np.nan
        if x[j] <= v:
            le += 1
    return le / n


@nb.njit(cache=True)
def window_max(x: F64, lo: int, n: int) -> float:
    """Largest of ``x[lo : lo + n]`` (NaN if any is NaN, as ``np.max``)."""
    m = -np.inf
    for j in range(lo, lo + n):
        v = x[j]
        if np.isnan(v):
            return np.nan
        if v > m:
            m = v
    return m


@nb.njit(cache=True)
def window_min(x: F64, lo: int, n: int) -> float:
    """Smallest of ``x[lo : lo + n]`` (NaN if any is NaN, as ``np.min``)."""
    m = np.inf
    for j in range(lo, lo + n):
        v = x[j]
        if np.isnan(v):
            return np.nan
        if v < m:
            m = v
    return m


@nb.njit(cache=True, inline="always", error_model="numpy")
def log_return(c: float, pc: float) -> float:
    """``log(c / pc)`` (in Numba on every path, so batch and stream agree to the bit)."""
    return math.log(c / pc)


@nb.njit(cache=True, inline="always", error_model="numpy")
def ma_slope_value(m_now: float, m_then: float, k: int, scale: float, scaled: bool) -> float:
    """Slope per bar of an average over ``k`` bars: ``(m_now / m_then - 1) / k``, or with a scale
    ``(m_now - m_then) / (k * scale)`` (NaN where not finite)."""
    if scaled:
        v = (m_now - m_then) / (k * scale)
        return v if np.isfinite(v) else np.nan
    return (m_now / m_then - 1.0) / k


# ADX state vector: bars seen, previous high/low/close, Wilder sums of TR/+DM/-DM, the ADX average.
ADX_STATE = 8


@nb.njit(cache=True, error_model="numpy")
def adx_step(st: F64, h: float, lo: float, c: float, n: int) -> tuple[float, float, float]:
    """One bar of Wilder's ADX on the state vector ``st`` (``ADX_STATE`` zeros to start):
    returns (adx, +DI, -DI), NaN in warm-up (DI until bar ``n``, ADX until bar ``2n - 1``)."""
    t = int(st[0])
    st[0] = t + 1
    if t == 0:
        st[1] = h
        st[2] = lo
        st[3] = c
        return np.nan, np.nan, np.nan
    ph = st[1]
    pl = st[2]
    pc = st[3]
    tr = max(h, pc) - min(lo, pc)
    up = h - ph
    down = pl - lo
    pdm = up if (up > down and up > 0) else 0.0
    mdm = down if (down > up and down > 0) else 0.0
    st[1] = h
    st[2] = lo
    st[3] = c
    # Wilder sums seeded with the plain sum of bars 1..n (bar 0 has no previous close).
    if t <= n:
        st[4] += tr
        st[5] += pdm
        st[6] += mdm
    else:
        st[4] = st[4] - st[4] / n + tr
        st[5] = st[5] - st[5] / n + pdm
        st[6] = st[6] - st[6] / n + mdm
    if t < n:
        return np.nan, np.nan, np.nan
    s_tr = st[4]
    p = 100.0 * st[5] / s_tr if s_tr != 0 else 0.0
    m = 100.0 * st[6] / s_tr if s_tr != 0 else 0.0
    dx = 100.0 * abs(p - m) / (p + m) if p + m != 0 else 0.0
    first = 2 * n - 1
    if t < first:
        st[7] += dx
        return np.nan, p, m
    if t == first:
        st[7] = (st[7] + dx) / n
    else:
        st[7] = (st[7] * (n - 1) + dx) / n
    return st[7], p, m


# ############# Moving averages ############# #


@nb.njit(cache=True)
def _sma_nb(x: F64, n: int) -> F64:
    out = np.full(x.shape[0], np.nan)
    total = 0.0
    nans = 0
    for t in range(x.shape[0]):
        drop = t >= n
        total, nans = sma_step(total, nans, x[t], x[t - n] if drop else 0.0, drop)
        if t >= n - 1 and nans == 0:
            out[t] = total / n
    return out


def sma(x: NDArray, n: int) -> F64:
    """Simple moving average of the last ``n`` values (a running sum, O(1) per bar: the same
    arithmetic as the strategies' kernels and the streaming state). A NaN in the window gives NaN.
    Warm-up: ``n - 1`` NaN."""
    if n < 1:
        raise ValueError("n must be >= 1")
    return _sma_nb(_f64(x), n)


@nb.njit(cache=True)
def _ewm_nb(x: F64, alpha: float, min_periods: int) -> F64:
    """pandas ``ewm(alpha, adjust=False, min_periods)`` on finite input: seeded with the first
    non-NaN value, leading NaNs skipped (they are what an upstream warm-up produces); a NaN later
    on leaves the state unchanged and gives NaN at that bar."""
    out = np.full(x.shape[0], np.nan)
    e = np.nan
    seen = 0
    for t in range(x.shape[0]):
        v = x[t]
        e, seen = ewm_step(e, seen, v, alpha)
        if not np.isnan(v) and seen >= min_periods:
            out[t] = e
    return out


def ema(x: NDArray, n: int) -> F64:
    """Exponential moving average, ``alpha = 2 / (n + 1)``, seeded with the first value (``ta``'s
    and pandas' ``adjust=False`` convention). Warm-up: ``n - 1`` NaN; seed forgotten to 1e-13
    after ``convergence_bars(2 / (n + 1))`` bars."""
    if n < 1:
        raise ValueError("n must be >= 1")
    return _ewm_nb(_f64(x), 2.0 / (n + 1.0), n)


@nb.njit(cache=True)
def _ma_slope_nb(m: F64, k: int, s: F64, scaled: bool) -> F64:
    out = np.full(m.shape[0], np.nan)
    for t in range(k, m.shape[0]):
        out[t] = ma_slope_value(m[t], m[t - k], k, s[t], scaled)
    return out


def ma_slope(x: NDArray, n: int, k: int, scale: NDArray | None = None) -> F64:
    """Slope of the ``n``-bar SMA over the last ``k`` bars, per bar.

    Without ``scale``: fractional change per bar, ``(sma[t] / sma[t-k] - 1) / k`` (comparable
    across price levels). With ``scale`` (e.g. ATR): ``(sma[t] - sma[t-k]) / (k * scale[t])``,
    i.e. how many ATRs per bar the average moves, which is also comparable across timeframes and
    volatility levels; that is the form the regime rules use. Warm-up: ``n - 1 + k`` NaN (or
    more if ``scale`` is NaN longer).
    """
    if k < 1:
        raise ValueError("k must be >= 1")
    m = sma(x, n)
    s = np.zeros(m.shape[0]) if scale is None else _f64(scale)
    if s.shape != m.shape:
        raise ValueError("scale must have one value per bar")
    return _ma_slope_nb(m, k, s, scale is not None)


# ############# Momentum ############# #


@nb.njit(cache=True)
def _rsi_nb(c: F64, n: int) -> F64:
    out = np.full(c.shape[0], np.nan)
    alpha = 1.0 / n
    eu = np.nan
    ed = np.nan
    su = 0
    sd = 0
    for t in range(c.shape[0]):
        d = c[t] - c[t - 1] if t > 0 else 0.0
        up = d if d > 0 else 0.0
        dn = -d if d < 0 else 0.0
        eu, su = ewm_step(eu, su, up, alpha)
        ed, sd = ewm_step(ed, sd, dn, alpha)
        out[t] = rsi_value(eu if su >= n else np.nan, ed if sd >= n else np.nan)
    return out


def rsi(close: NDArray, n: int = 14) -> F64:
    """Wilder's RSI: average gain / average loss smoothed with ``alpha = 1 / n``.

    Seeding follows ``ta``: an ``adjust=False`` EWM over the changes where the first bar's
    (undefined) change counts as 0, not Wilder's original n-bar SMA seed; the two converge after
    ``convergence_bars(1 / n)`` bars. RSI is 100 when the average loss is 0. Warm-up: ``n - 1`` NaN.
    """
    return _rsi_nb(_f64(close), n)


@nb.njit(cache=True)
def _macd_nb(c: F64, fast: int, slow: int, signal: int) -> tuple[F64, F64, F64]:
    size = c.shape[0]
    line = np.full(size, np.nan)
    sig = np.full(size, np.nan)
    af, a_s, ag = 2.0 / (fast + 1.0), 2.0 / (slow + 1.0), 2.0 / (signal + 1.0)
    ef = np.nan
    es = np.nan
    eg = np.nan
    nf = 0
    ns = 0
    ng = 0
    for t in range(size):
        v = c[t]
        ef, nf = ewm_step(ef, nf, v, af)
        es, ns = ewm_step(es, ns, v, a_s)
        ok = not np.isnan(v)
        lv = (ef if ok and nf >= fast else np.nan) - (es if ok and ns >= slow else np.nan)
        eg, ng = ewm_step(eg, ng, lv, ag)
        line[t] = lv
        if not np.isnan(lv) and ng >= signal:
            sig[t] = eg
    return line, sig, line - sig


def macd(close: NDArray, fast: int = 12, slow: int = 26, signal: int = 9) -> tuple[F64, F64, F64]:
    """MACD line (EMA fast - EMA slow), signal (EMA of the line), histogram (line - signal).

    Warm-up: line ``slow - 1`` NaN, signal and histogram ``slow + signal - 2`` NaN.
    """
    return _macd_nb(_f64(close), fast, slow, signal)


# ############# Volatility ############# #


@nb.njit(cache=True)
def _bollinger_nb(c: F64, n: int, k: float) -> tuple[F64, F64, F64, F64, F64]:
    size = c.shape[0]
    mid = np.full(size, np.nan)
    upper = np.full(size, np.nan)
    lower = np.full(size, np.nan)
    pctb = np.full(size, np.nan)
    width = np.full(size, np.nan)
    total = 0.0
    nans = 0
    for t in range(size):
        drop = t >= n
        total, nans = sma_step(total, nans, c[t], c[t - n] if drop else 0.0, drop)
        if t < n - 1:
            continue
        m = total / n if nans == 0 else np.nan
        sd = window_std(c, t - n + 1, n, 0)
        mid[t] = m
        upper[t], lower[t], pctb[t], width[t] = bollinger_value(c[t], m, sd, k)
    return mid, upper, lower, pctb, width


def bollinger(close: NDArray, n: int = 20, k: float = 2.0) -> tuple[F64, F64, F64, F64, F64]:
    """Bollinger bands: (mid, upper, lower, %b, width).

    ``mid`` is the n-bar SMA, bands are ``mid +- k * std`` with the POPULATION std (ddof=0, as
    Bollinger and ``ta`` define it). ``%b = (close - lower) / (upper - lower)`` (NaN for a flat
    window), ``width = (upper - lower) / mid`` as a fraction (``ta``'s ``wband`` is this x 100).
    Warm-up: ``n - 1`` NaN.
    """
    if n < 1:
        raise ValueError("n must be >= 1")
    return _bollinger_nb(_f64(close), n, float(k))


@nb.njit(cache=True)
def _rolling_std_nb(x: F64, n: int, ddof: int) -> F64:
    """Two-pass std per window: exact and independent of where the series starts."""
    out = np.full(x.shape[0], np.nan)
    if n - ddof <= 0:
        return out
    for t in range(n - 1, x.shape[0]):
        out[t] = window_std(x, t - n + 1, n, ddof)
    return out


@nb.njit(cache=True)
def _true_range_nb(h: F64, lo: F64, c: F64) -> F64:
    tr = np.empty(h.shape[0])
    for t in range(h.shape[0]):
        tr[t] = true_range_step(h[t], lo[t], c[t - 1] if t > 0 else 0.0, t > 0)
    return tr


def true_range(high: NDArray, low: NDArray, close: NDArray) -> F64:
    """``max(high - low, |high - prev close|, |low - prev close|)``; the first bar is high - low."""
    return _true_range_nb(_f64(high), _f64(low), _f64(close))


@nb.njit(cache=True)
def _wilder_nb(x: F64, n: int, first: int) -> F64:
    """Wilder's average: mean of ``x[first : first + n]``, then ``(prev * (n-1) + x) / n``."""
    out = np.full(x.shape[0], np.nan)
    a = np.nan
    s = 0.0
    for t in range(first, x.shape[0]):
        k = t - first
        a, s = wilder_step(a, s, k, x[t], n)
        if k >= n - 1:
            out[t] = a
    return out


def atr(high: NDArray, low: NDArray, close: NDArray, n: int = 14) -> F64:
    """Wilder's Average True Range, seeded with the mean of the first ``n`` true ranges (the first
    being high - low), as ``ta`` does. Warm-up: ``n - 1`` NaN. (``risk.trailing.wilder_atr`` is
    this function.)"""
    return _wilder_nb(true_range(high, low, close), n, 0)


@nb.njit(cache=True)
def _adx_nb(h: F64, lo: F64, c: F64, n: int) -> tuple[F64, F64, F64]:
    size = h.shape[0]
    adx_out = np.full(size, np.nan)
    pdi = np.full(size, np.nan)
    mdi = np.full(size, np.nan)
    if size <= n:
        return adx_out, pdi, mdi
    st = np.zeros(ADX_STATE)
    for t in range(size):
        adx_out[t], pdi[t], mdi[t] = adx_step(st, h[t], lo[t], c[t], n)
    return adx_out, pdi, mdi


def adx(high: NDArray, low: NDArray, close: NDArray, n: int = 14) -> tuple[F64, F64, F64]:
    """Wilder's ADX, +DI and -DI.

    TR, +DM and -DM are Wilder-summed from bar 1 (seed: their sum over bars 1..n); +DI/-DI are
    ``100 * DM / TR``; DX ``= 100 |+DI - -DI| / (+DI + -DI)``; ADX is the Wilder average of DX
    seeded with the mean of its first n values. Warm-up: DI ``n`` NaN, ADX ``2n - 1`` NaN.
    """
    return _adx_nb(_f64(high), _f64(low), _f64(close), n)


@nb.njit(cache=True)
def _log_returns_nb(c: F64) -> F64:
    out = np.full(c.shape[0], np.nan)
    for t in range(1, c.shape[0]):
        out[t] = log_return(c[t], c[t - 1])
    return out


def log_returns(close: NDArray) -> F64:
    """``log(c[t] / c[t-1])``; the first bar is NaN."""
    return _log_returns_nb(_f64(close))


def realised_vol(close: NDArray, n: int = 20, periods_per_year: float = 252.0) -> F64:
    """Rolling sample std (ddof=1) of ``n`` log returns, annualised by ``sqrt(periods_per_year)``.

    Warm-up: ``n`` NaN (the first bar has no return).
    """
    return _rolling_std_nb(log_returns(close), n, 1) * math.sqrt(periods_per_year)


@nb.njit(cache=True)
def _rolling_pct_nb(x: F64, n: int) -> F64:
    out = np.full(x.shape[0], np.nan)
    for t in range(n - 1, x.shape[0]):
        out[t] = window_pct(x, t - n + 1, n)
    return out


def rolling_percentile(x: NDArray, n: int) -> F64:
    """Percentile rank of ``x[t]`` among the last ``n`` values including itself:
    ``#{j in window : x[j] <= x[t]} / n``, in (0, 1] (1 = highest of the window).

    NaN until ``n`` non-NaN values are available (a partial window would overstate extremes).
    """
    return _rolling_pct_nb(_f64(x), n)


@nb.njit(cache=True)
def _rolling_extreme_nb(x: F64, n: int, is_max: bool) -> F64:
    out = np.full(x.shape[0], np.nan)
    for t in range(n - 1, x.shape[0]):
        out[t] = window_max(x, t - n + 1, n) if is_max else window_min(x, t - n + 1, n)
    return out


def rolling_max(x: NDArray, n: int) -> F64:
    """Highest of the last ``n`` values (NaN if one is NaN). Warm-up: ``n - 1`` NaN."""
    if n < 1:
        raise ValueError("n must be >= 1")
    return _rolling_extreme_nb(_f64(x), n, True)


def rolling_min(x: NDArray, n: int) -> F64:
    """Lowest of the last ``n`` values (NaN if one is NaN). Warm-up: ``n - 1`` NaN."""
    if n < 1:
        raise ValueError("n must be >= 1")
    return _rolling_extreme_nb(_f64(x), n, False)
