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


# ############# Moving averages ############# #


@nb.njit(cache=True)
def _sma_nb(x: F64, n: int) -> F64:
    out = np.full(x.shape[0], np.nan)
    # Each window is summed afresh rather than with a running add/subtract: O(n*w) but immune to
    # drift, so a value depends only on its own window (bit-identical in any recompute).
    for t in range(n - 1, x.shape[0]):
        s = 0.0
        for j in range(t - n + 1, t + 1):
            s += x[j]
        out[t] = s / n
    return out


def sma(x: NDArray, n: int) -> F64:
    """Simple moving average of the last ``n`` values. Warm-up: ``n - 1`` NaN."""
    if n < 1:
        raise ValueError("n must be >= 1")
    return _sma_nb(_f64(x), n)


@nb.njit(cache=True)
def _ewm_nb(x: F64, alpha: float, min_periods: int) -> F64:
    """pandas ``ewm(alpha, adjust=False, min_periods)``: seeded with the first non-NaN value,
    leading NaNs skipped (they are what an upstream warm-up produces)."""
    out = np.full(x.shape[0], np.nan)
    e = np.nan
    seen = 0
    for t in range(x.shape[0]):
        v = x[t]
        if np.isnan(v):
            if seen > 0:
                out[t] = e if seen >= min_periods else np.nan
            continue
        e = v if seen == 0 else alpha * v + (1.0 - alpha) * e
        seen += 1
        if seen >= min_periods:
            out[t] = e
    return out


def ema(x: NDArray, n: int) -> F64:
    """Exponential moving average, ``alpha = 2 / (n + 1)``, seeded with the first value (``ta``'s
    and pandas' ``adjust=False`` convention). Warm-up: ``n - 1`` NaN; seed forgotten to 1e-13
    after ``convergence_bars(2 / (n + 1))`` bars."""
    if n < 1:
        raise ValueError("n must be >= 1")
    return _ewm_nb(_f64(x), 2.0 / (n + 1.0), n)


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
    out = np.full(m.shape[0], np.nan)
    if m.shape[0] > k:
        if scale is None:
            out[k:] = (m[k:] / m[:-k] - 1.0) / k
        else:
            s = _f64(scale)
            with np.errstate(divide="ignore", invalid="ignore"):
                out[k:] = (m[k:] - m[:-k]) / (k * s[k:])
            out[~np.isfinite(out)] = np.nan
    return out


# ############# Momentum ############# #


def rsi(close: NDArray, n: int = 14) -> F64:
    """Wilder's RSI: average gain / average loss smoothed with ``alpha = 1 / n``.

    Seeding follows ``ta``: an ``adjust=False`` EWM over the changes where the first bar's
    (undefined) change counts as 0, not Wilder's original n-bar SMA seed; the two converge after
    ``convergence_bars(1 / n)`` bars. RSI is 100 when the average loss is 0. Warm-up: ``n - 1`` NaN.
    """
    c = _f64(close)
    d = np.zeros(c.shape[0])
    d[1:] = np.diff(c)
    up = np.where(d > 0, d, 0.0)
    dn = np.where(d < 0, -d, 0.0)
    au = _ewm_nb(up, 1.0 / n, n)
    ad = _ewm_nb(dn, 1.0 / n, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(ad == 0.0, 100.0, 100.0 - 100.0 / (1.0 + au / ad))
    out[np.isnan(au) | np.isnan(ad)] = np.nan
    return out


def macd(close: NDArray, fast: int = 12, slow: int = 26, signal: int = 9) -> tuple[F64, F64, F64]:
    """MACD line (EMA fast - EMA slow), signal (EMA of the line), histogram (line - signal).

    Warm-up: line ``slow - 1`` NaN, signal and histogram ``slow + signal - 2`` NaN.
    """
    c = _f64(close)
    line = ema(c, fast) - ema(c, slow)
    sig = _ewm_nb(line, 2.0 / (signal + 1.0), signal)
    return line, sig, line - sig


# ############# Volatility ############# #


def bollinger(close: NDArray, n: int = 20, k: float = 2.0) -> tuple[F64, F64, F64, F64, F64]:
    """Bollinger bands: (mid, upper, lower, %b, width).

    ``mid`` is the n-bar SMA, bands are ``mid +- k * std`` with the POPULATION std (ddof=0, as
    Bollinger and ``ta`` define it). ``%b = (close - lower) / (upper - lower)`` (NaN for a flat
    window), ``width = (upper - lower) / mid`` as a fraction (``ta``'s ``wband`` is this x 100).
    Warm-up: ``n - 1`` NaN.
    """
    c = _f64(close)
    mid = sma(c, n)
    sd = _rolling_std_nb(c, n, 0)
    upper, lower = mid + k * sd, mid - k * sd
    with np.errstate(divide="ignore", invalid="ignore"):
        span = upper - lower
        pctb = np.where(span > 0, (c - lower) / span, np.nan)
        width = span / mid
    return mid, upper, lower, pctb, width


@nb.njit(cache=True)
def _rolling_std_nb(x: F64, n: int, ddof: int) -> F64:
    """Two-pass std per window: exact and independent of where the series starts."""
    out = np.full(x.shape[0], np.nan)
    if n - ddof <= 0:
        return out
    for t in range(x.shape[0]):
        if t < n - 1:
            continue
        s = 0.0
        bad = False
        for j in range(t - n + 1, t + 1):
            if np.isnan(x[j]):
                bad = True
                break
            s += x[j]
        if bad:
            continue
        m = s / n
        ss = 0.0
        for j in range(t - n + 1, t + 1):
            ss += (x[j] - m) * (x[j] - m)
        out[t] = math.sqrt(ss / (n - ddof))
    return out


def true_range(high: NDArray, low: NDArray, close: NDArray) -> F64:
    """``max(high - low, |high - prev close|, |low - prev close|)``; the first bar is high - low."""
    h, lo, c = _f64(high), _f64(low), _f64(close)
    tr = h - lo
    if tr.shape[0] > 1:
        pc = c[:-1]
        tr[1:] = np.maximum(tr[1:], np.maximum(np.abs(h[1:] - pc), np.abs(lo[1:] - pc)))
    return tr


@nb.njit(cache=True)
def _wilder_nb(x: F64, n: int, first: int) -> F64:
    """Wilder's average: mean of ``x[first : first + n]``, then ``(prev * (n-1) + x) / n``."""
    out = np.full(x.shape[0], np.nan)
    start = first + n - 1
    if start >= x.shape[0]:
        return out
    s = 0.0
    for j in range(first, first + n):
        s += x[j]
    a = s / n
    out[start] = a
    for t in range(start + 1, x.shape[0]):
        a = (a * (n - 1) + x[t]) / n
        out[t] = a
    return out


def atr(high: NDArray, low: NDArray, close: NDArray, n: int = 14) -> F64:
    """Wilder's Average True Range, seeded with the mean of the first ``n`` true ranges (the first
    being high - low), as ``ta`` does. Warm-up: ``n - 1`` NaN."""
    return _wilder_nb(true_range(high, low, close), n, 0)


@nb.njit(cache=True)
def _adx_nb(h: F64, lo: F64, c: F64, n: int) -> tuple[F64, F64, F64]:
    size = h.shape[0]
    adx_out = np.full(size, np.nan)
    pdi = np.full(size, np.nan)
    mdi = np.full(size, np.nan)
    if size <= n:
        return adx_out, pdi, mdi
    tr = np.zeros(size)
    pdm = np.zeros(size)
    mdm = np.zeros(size)
    for t in range(1, size):
        tr[t] = max(h[t], c[t - 1]) - min(lo[t], c[t - 1])
        up = h[t] - h[t - 1]
        down = lo[t - 1] - lo[t]
        if up > down and up > 0:
            pdm[t] = up
        if down > up and down > 0:
            mdm[t] = down
    # Wilder sums seeded with the plain sum of bars 1..n (bar 0 has no previous close).
    s_tr = 0.0
    s_p = 0.0
    s_m = 0.0
    for t in range(1, n + 1):
        s_tr += tr[t]
        s_p += pdm[t]
        s_m += mdm[t]
    dx = np.full(size, np.nan)
    for t in range(n, size):
        if t > n:
            s_tr = s_tr - s_tr / n + tr[t]
            s_p = s_p - s_p / n + pdm[t]
            s_m = s_m - s_m / n + mdm[t]
        p = 100.0 * s_p / s_tr if s_tr != 0 else 0.0
        m = 100.0 * s_m / s_tr if s_tr != 0 else 0.0
        pdi[t] = p
        mdi[t] = m
        dx[t] = 100.0 * abs(p - m) / (p + m) if p + m != 0 else 0.0
    first = 2 * n - 1
    if first < size:
        a = 0.0
        for t in range(n, first + 1):
            a += dx[t]
        a /= n
        adx_out[first] = a
        for t in range(first + 1, size):
            a = (a * (n - 1) + dx[t]) / n
            adx_out[t] = a
    return adx_out, pdi, mdi


def adx(high: NDArray, low: NDArray, close: NDArray, n: int = 14) -> tuple[F64, F64, F64]:
    """Wilder's ADX, +DI and -DI.

    TR, +DM and -DM are Wilder-summed from bar 1 (seed: their sum over bars 1..n); +DI/-DI are
    ``100 * DM / TR``; DX ``= 100 |+DI - -DI| / (+DI + -DI)``; ADX is the Wilder average of DX
    seeded with the mean of its first n values. Warm-up: DI ``n`` NaN, ADX ``2n - 1`` NaN.
    """
    return _adx_nb(_f64(high), _f64(low), _f64(close), n)


def log_returns(close: NDArray) -> F64:
    """``log(c[t] / c[t-1])``; the first bar is NaN."""
    c = _f64(close)
    out = np.full(c.shape[0], np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        out[1:] = np.log(c[1:] / c[:-1])
    return out


def realised_vol(close: NDArray, n: int = 20, periods_per_year: float = 252.0) -> F64:
    """Rolling sample std (ddof=1) of ``n`` log returns, annualised by ``sqrt(periods_per_year)``.

    Warm-up: ``n`` NaN (the first bar has no return).
    """
    return _rolling_std_nb(log_returns(close), n, 1) * math.sqrt(periods_per_year)


@nb.njit(cache=True)
def _rolling_pct_nb(x: F64, n: int) -> F64:
    out = np.full(x.shape[0], np.nan)
    for t in range(n - 1, x.shape[0]):
        v = x[t]
        if np.isnan(v):
            continue
        le = 0
        ok = True
        for j in range(t - n + 1, t + 1):
            if np.isnan(x[j]):
                ok = False
                break
            if x[j] <= v:
                le += 1
        if ok:
            out[t] = le / n
    return out


def rolling_percentile(x: NDArray, n: int) -> F64:
    """Percentile rank of ``x[t]`` among the last ``n`` values including itself:
    ``#{j in window : x[j] <= x[t]} / n``, in (0, 1] (1 = highest of the window).

    NaN until ``n`` non-NaN values are available (a partial window would overstate extremes).
    """
    return _rolling_pct_nb(_f64(x), n)
