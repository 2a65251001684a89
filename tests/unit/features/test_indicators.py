"""Every indicator against the independent ``ta`` library (or pandas) on REAL data.

Tolerance: relative 1e-9 (plus 1e-9 absolute for values near 0), compared from the first bar
where both sides are defined. Convention differences, all matched except where said:

* ``ta`` fills warm-up with 0 for ATR/ADX/DI; we return NaN, so those bars are skipped.
* ``ta`` RSI/EMA seed their EWM with the first value (pandas ``adjust=False``; for RSI the first
  bar's undefined change counts as 0), not with Wilder's n-bar SMA; we do the same.
* ``ta`` +DI/-DI are 0 at bar ``n`` (its loop starts at 1); ours are defined there, compared from
  ``n + 1``. ADX itself matches ``ta`` from its first value (bar ``2n - 1``).
* ``ta``'s Bollinger width is in percent; ours is a fraction (compared x 100). ``ta``'s %b inherits
  pandas' running-sum std error in flat windows; compared in price units (see the test).
* Realised volatility, its percentile and the MA slope have no ``ta`` counterpart: compared with
  plain pandas rolling computations.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import polars as pl
import pytest
import ta

from trading_core.features import indicators as ind

RTOL, ATOL = 1e-9, 1e-9


def frame(series: tuple[str, pl.DataFrame]) -> pd.DataFrame:
    return series[1].to_pandas().reset_index(drop=True)


def assert_close(ours: np.ndarray, ref: pd.Series | np.ndarray, start: int = 0) -> None:
    ref = np.asarray(ref, dtype=float)
    assert ours.shape == ref.shape
    o, r = ours[start:], ref[start:]
    assert np.array_equal(np.isnan(o), np.isnan(r)), "NaN pattern differs"
    np.testing.assert_allclose(o[~np.isnan(o)], r[~np.isnan(r)], rtol=RTOL, atol=ATOL)


def assert_warmup(ours: np.ndarray, bars: int) -> None:
    assert np.isnan(ours[:bars]).all() and not np.isnan(ours[bars])


@pytest.mark.parametrize("n", [5, 20, 50])
def test_sma(series: tuple[str, pl.DataFrame], n: int) -> None:
    df = frame(series)
    ours = ind.sma(df.close.to_numpy(), n)
    assert_close(ours, ta.trend.SMAIndicator(df.close, n).sma_indicator())
    assert_warmup(ours, n - 1)


@pytest.mark.parametrize("n", [12, 26])
def test_ema(series: tuple[str, pl.DataFrame], n: int) -> None:
    df = frame(series)
    ours = ind.ema(df.close.to_numpy(), n)
    assert_close(ours, ta.trend.EMAIndicator(df.close, n).ema_indicator())
    assert_warmup(ours, n - 1)


@pytest.mark.parametrize("n", [7, 14])
def test_rsi_wilder(series: tuple[str, pl.DataFrame], n: int) -> None:
    df = frame(series)
    ours = ind.rsi(df.close.to_numpy(), n)
    assert_close(ours, ta.momentum.RSIIndicator(df.close, n).rsi())
    assert_warmup(ours, n - 1)
    assert np.nanmin(ours) >= 0 and np.nanmax(ours) <= 100


def test_macd(series: tuple[str, pl.DataFrame]) -> None:
    df = frame(series)
    line, sig, hist = ind.macd(df.close.to_numpy(), 12, 26, 9)
    ref = ta.trend.MACD(df.close, window_slow=26, window_fast=12, window_sign=9)
    assert_close(line, ref.macd())
    assert_close(sig, ref.macd_signal())
    assert_close(hist, ref.macd_diff())
    assert_warmup(line, 25)
    assert_warmup(sig, 33)


def test_bollinger(series: tuple[str, pl.DataFrame]) -> None:
    df = frame(series)
    mid, up, lo, pctb, width = ind.bollinger(df.close.to_numpy(), 20, 2.0)
    ref = ta.volatility.BollingerBands(df.close, window=20, window_dev=2)
    assert_close(mid, ref.bollinger_mavg())
    assert_close(up, ref.bollinger_hband())
    assert_close(lo, ref.bollinger_lband())
    # %b divides by the band span, so in a near-flat window (BTC at $6,400 with a $4 std) the
    # digits pandas' running-sum rolling std loses show up magnified; ours is a two-pass std (exact
    # to 1e-12 against np.std). Compare %b error in price units, relative to the price level.
    ref_p = ref.bollinger_pband().to_numpy()
    assert np.array_equal(np.isnan(pctb), np.isnan(ref_p))
    ok = ~np.isnan(pctb)
    assert np.max(np.abs(pctb[ok] - ref_p[ok]) * (up[ok] - lo[ok]) / mid[ok]) < RTOL
    i = int(np.nanargmin(up - lo))
    win = df.close.to_numpy()[i - 19:i + 1]
    assert abs(up[i] - (win.mean() + 2 * win.std())) <= 1e-12 * win.mean()
    assert_close(width * 100, ref.bollinger_wband())
    assert_warmup(mid, 19)


@pytest.mark.parametrize("n", [14, 20])
def test_atr_wilder(series: tuple[str, pl.DataFrame], n: int) -> None:
    df = frame(series)
    ours = ind.atr(df.high.to_numpy(), df.low.to_numpy(), df.close.to_numpy(), n)
    ref = ta.volatility.AverageTrueRange(df.high, df.low, df.close, window=n).average_true_range()
    assert_warmup(ours, n - 1)
    assert_close(ours, ref, start=n - 1)


@pytest.mark.parametrize("n", [14, 20])
def test_adx_and_directional_indicators(series: tuple[str, pl.DataFrame], n: int) -> None:
    df = frame(series)
    adx, pdi, mdi = ind.adx(df.high.to_numpy(), df.low.to_numpy(), df.close.to_numpy(), n)
    ref = ta.trend.ADXIndicator(df.high, df.low, df.close, window=n)
    assert_warmup(adx, 2 * n - 1)
    assert_warmup(pdi, n)
    assert_close(adx, ref.adx(), start=2 * n - 1)
    assert_close(pdi, ref.adx_pos(), start=n + 1)
    assert_close(mdi, ref.adx_neg(), start=n + 1)


def test_realised_vol_and_percentile(series: tuple[str, pl.DataFrame]) -> None:
    name, _ = series
    df = frame(series)
    ppy = 252.0 if name == "spx" else 8760.0
    ours = ind.realised_vol(df.close.to_numpy(), 20, ppy)
    ref = np.log(df.close).diff().rolling(20).std(ddof=1) * math.sqrt(ppy)
    assert_close(ours, ref)
    assert_warmup(ours, 20)
    pct = ind.rolling_percentile(ours, 100)
    ref_pct = pd.Series(ours).rolling(100).apply(lambda w: (w <= w[-1]).mean(), raw=True)
    assert_close(pct, ref_pct)
    assert_warmup(pct, 20 + 99)


def test_ma_slope(series: tuple[str, pl.DataFrame]) -> None:
    df = frame(series)
    m = df.close.rolling(50).mean()
    assert_close(ind.ma_slope(df.close.to_numpy(), 50, 10), (m / m.shift(10) - 1) / 10)
    a = ind.atr(df.high.to_numpy(), df.low.to_numpy(), df.close.to_numpy(), 14)
    assert_close(ind.ma_slope(df.close.to_numpy(), 50, 10, scale=a), (m - m.shift(10)) / (10 * a))


def test_convergence_bars_bounds_the_seed_weight() -> None:
    for alpha in (2 / 27, 1 / 14, 0.5):
        k = ind.convergence_bars(alpha, 1e-12)
        assert (1 - alpha) ** k <= 1e-12 < (1 - alpha) ** (k - 1)


def test_indicators_never_look_ahead(spx: pl.DataFrame) -> None:
    """Values on a prefix of the bars equal the full computation's values on that prefix."""
    df = spx.to_pandas()
    h, lo, c = (df[x].to_numpy() for x in ("high", "low", "close"))
    cut = 3000
    pairs = [
        (lambda h, lo, c: ind.rsi(c, 14)),
        (lambda h, lo, c: ind.macd(c)[1]),
        (lambda h, lo, c: ind.adx(h, lo, c)[0]),
        (lambda h, lo, c: ind.realised_vol(c)),
    ]
    for f in pairs:
        np.testing.assert_array_equal(f(h[:cut], lo[:cut], c[:cut]), f(h, lo, c)[:cut])
