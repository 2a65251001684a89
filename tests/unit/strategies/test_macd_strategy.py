"""macd: histogram crossings, threshold dead band, grids, real data."""

from __future__ import annotations

import numpy as np
import polars as pl

from trading_core.features.indicators import macd
from trading_core.strategies import Bars, get_strategy


def _bars(close: np.ndarray) -> Bars:
    c = np.asarray(close, dtype=float).reshape(len(close), -1)
    return Bars(ts=np.arange(c.shape[0], dtype=np.int64) * 86_400_000, open=c, high=c, low=c, close=c,
                volume=np.ones_like(c))


def test_macd_when_decline_then_rally_then_single_entry_at_histogram_turn() -> None:
    close = np.concatenate([200 - np.arange(60.0), 140 + 2 * np.arange(1, 41)])
    e, x = get_strategy("macd", {}).signals(_bars(close))
    _, _, hist = macd(close)
    expected = [t for t in range(1, len(close)) if hist[t] > 0 >= hist[t - 1]]
    assert np.flatnonzero(e[:, 0]).tolist() == expected and len(expected) == 1
    assert 60 <= expected[0] < 70  # shortly after the low
    assert not x.any()  # no bearish crossing in a straight decline-then-rally after warm-up


def test_macd_when_threshold_then_fewer_signals_on_real_sp500(sp500: pl.DataFrame) -> None:
    b = Bars.from_frame(sp500)
    e0, x0 = get_strategy("macd", {}).signals(b)
    e1, x1 = get_strategy("macd", {"threshold": "0.002"}).signals(b)
    assert 100 < e0.sum() < 400 and abs(int(e0.sum()) - int(x0.sum())) <= 1
    assert e1.sum() < e0.sum()
    # every thresholded entry is a bar where the histogram is above +0.2% of the close
    _, _, h = macd(b.close[:, 0])
    assert (h[e1[:, 0]] > 0.002 * b.close[e1[:, 0], 0]).all()


def test_macd_grid_when_two_triples_then_matches_separate_runs(btc_1h: pl.DataFrame) -> None:
    b = Bars.from_frame(btc_1h)
    e, _ = get_strategy("macd", {"grid": "12:26:9,8:17:9"}).signals(b)
    e2, _ = get_strategy("macd", {"fast": "8", "slow": "17", "signal": "9"}).signals(b)
    assert e.shape[1] == 2 and np.array_equal(e[:, 1], e2[:, 0])
