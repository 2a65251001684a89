"""support_resistance, fibonacci_retracement and volume_profile: hand-made swings and reference
loops over the level features on real data."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from trading_core.features.levels import fibonacci, support_resistance, volume_profile
from trading_core.strategies import Bars, get_strategy


def _reference(entry: np.ndarray, exit_: np.ndarray, close: np.ndarray, stop: np.ndarray | None = None,
               target: np.ndarray | None = None) -> tuple[list[int], list[int]]:
    """Long-only state machine with stop/target frozen at entry, as the Python one-liner."""
    ents, exts, long, s, g = [], [], False, np.nan, np.nan
    for t in range(len(close)):
        if not long:
            if entry[t]:
                ents.append(t)
                long = True
                s = np.nan if stop is None else stop[t]
                g = np.nan if target is None else target[t]
        elif exit_[t] or close[t] <= s or close[t] >= g:
            exts.append(t)
            long = False
    return ents, exts


def _swing_bars() -> Bars:
    """Down to 100 (bar 5), up to 200 (bar 15), pull back, a bullish bar touching 61.8%, rally."""
    close = np.concatenate([np.linspace(120, 100, 6), np.linspace(110, 200, 10),
                            [195, 185, 175, 165, 155, 145], [141], np.arange(150, 221, 10.0)])
    open_ = close + 1.0  # bearish bars ...
    open_[22:] = close[22:] - 1.0  # ... until the confirmation bar
    open_[22] = 139.0
    high = np.maximum(open_, close) + 0.5
    low = np.minimum(open_, close) - 0.5
    low[22] = 137.0
    c = lambda a: a.reshape(-1, 1)  # noqa: E731
    return Bars(ts=np.arange(len(close), dtype=np.int64) * 86_400_000, open=c(open_), high=c(high), low=c(low),
                close=c(close), volume=np.ones((len(close), 1)))


def test_fibonacci_when_bullish_touch_of_618_then_enter_there_and_exit_at_swing_high() -> None:
    b = _swing_bars()
    e, x = get_strategy("fibonacci_retracement", {"pivot_k": "2", "lookback": "50"}).signals(b)
    assert np.flatnonzero(e[:, 0]).tolist() == [22]
    swing_high = b.high[15, 0]
    first_above = int(np.flatnonzero(b.close[23:, 0] >= swing_high)[0]) + 23
    assert np.flatnonzero(x[:, 0]).tolist() == [first_above]


def test_fibonacci_when_level_50_then_the_touch_is_too_deep_bar_still_confirms_above() -> None:
    # 50% of the swing is 150: bar 22 low 137 <= 150 but close 141 < 150 -> no confirmation
    e, _ = get_strategy("fibonacci_retracement", {"pivot_k": "2", "lookback": "50", "level": "50"}).signals(
        _swing_bars())
    assert 22 not in np.flatnonzero(e[:, 0]).tolist()


def test_fibonacci_on_real_btc_then_matches_reference(btc_1h: pl.DataFrame) -> None:
    b = Bars.from_frame(btc_1h)
    h, lo, c, o = b.high[:, 0], b.low[:, 0], b.close[:, 0], b.open[:, 0]
    f = fibonacci(h, lo, k=5, n=250, ratios=(0.0, 0.382, 0.5, 0.618, 0.786, 1.0))
    with np.errstate(invalid="ignore"):
        up = f[:, 0] > f[:, 5]
        lvl = np.where(up, f[:, 3], np.nan)
        stop = np.where(up, f[:, 4], np.nan)
        entry = (lo <= lvl) & (c > lvl) & (c > stop) & (c > o)
    ref = _reference(entry, np.zeros_like(entry), c, np.nextafter(stop, -np.inf), np.where(up, f[:, 0], np.nan))
    e, x = get_strategy("fibonacci_retracement", {}).signals(b)
    assert (np.flatnonzero(e[:, 0]).tolist(), np.flatnonzero(x[:, 0]).tolist()) == ref
    assert 20 <= len(ref[0]) <= 2000


@pytest.mark.parametrize("mode", ["bounce", "breakout"])
def test_support_resistance_on_real_sp500_then_matches_reference(sp500: pl.DataFrame, mode: str) -> None:
    b = Bars.from_frame(sp500)
    h, lo, c = b.high[:, 0], b.low[:, 0], b.close[:, 0]
    sup, res = support_resistance(h, lo, c, k=5, n=250, tol=0.01, min_touches=1)
    tol = 0.01
    with np.errstate(invalid="ignore"):
        if mode == "bounce":
            ref = _reference((lo <= sup * (1 + tol)) & (c >= sup), np.zeros(len(c), bool), c, sup * (1 - tol),
                             res * (1 - tol))
        else:
            r1 = np.concatenate([[np.nan], res[:-1]])
            c1 = np.concatenate([[np.nan], c[:-1]])
            s1 = np.concatenate([[np.nan], sup[:-1]])
            ref = _reference((c > r1 * (1 + tol)) & (c1 <= r1), c < s1 * (1 - tol), c, r1 * (1 - tol))
    e, x = get_strategy("support_resistance", {"mode": mode}).signals(b)
    assert (np.flatnonzero(e[:, 0]).tolist(), np.flatnonzero(x[:, 0]).tolist()) == ref
    assert 5 <= len(ref[0]) <= 1000


def test_support_resistance_bounce_when_touch_of_support_then_enter_and_exit_at_resistance() -> None:
    # A range 100..110 twice (pivots k=2), then a dip to 100.6 that closes 100.8, then a rally to 111
    close = np.array([105, 108, 110, 108, 105, 102, 100, 102, 105, 108, 110, 108, 105, 102, 100.8, 102, 106, 109.5,
                      111.0])
    b = Bars(ts=np.arange(len(close), dtype=np.int64) * 86_400_000, open=close[:, None], high=close[:, None] + 0.2,
             low=close[:, None] - 0.2, close=close[:, None], volume=np.ones((len(close), 1)))
    e, x = get_strategy("support_resistance", {"pivot_k": "2", "lookback": "50"}).signals(b)
    sup, res = support_resistance(b.high[:, 0], b.low[:, 0], close, k=2, n=50)
    ent = np.flatnonzero(e[:, 0]).tolist()
    assert ent and ent[0] == 14  # low 100.6 is within 1% of the 99.8 support, the close holds above
    assert np.flatnonzero(x[:, 0]).tolist()[0] == 17  # 109.5 >= resistance 110.2 x 0.99


def test_volume_profile_on_real_btc_then_matches_reference(btc_1h: pl.DataFrame) -> None:
    b = Bars.from_frame(btc_1h)
    poc, _, val = volume_profile(b.high[:, 0], b.low[:, 0], b.close[:, 0], b.volume[:, 0], n=100)
    c = b.close[:, 0]
    with np.errstate(invalid="ignore"):
        ref = _reference(c < val, c >= poc, c)
    e, x = get_strategy("volume_profile", {}).signals(b)
    assert (np.flatnonzero(e[:, 0]).tolist(), np.flatnonzero(x[:, 0]).tolist()) == ref
    assert 50 <= len(ref[0]) <= 2000


def test_volume_profile_when_value_area_dip_then_enter_below_val_exit_at_poc() -> None:
    # 30 bars trading at 100 with heavy volume, a dip to 95 and 96 on light volume, back to 100
    close = np.array([100.0, 101.0] * 15 + [95.0, 96.0, 100.0, 101.0])
    vol = np.where(np.abs(close - 100.5) < 1, 1000.0, 1.0)
    b = Bars(ts=np.arange(len(close), dtype=np.int64) * 3_600_000, open=close[:, None], high=close[:, None] + 0.5,
             low=close[:, None] - 0.5, close=close[:, None], volume=vol[:, None])
    e, x = get_strategy("volume_profile", {"window": "20", "bins": "10"}).signals(b)
    assert np.flatnonzero(e[:, 0]).tolist() == [30]
    assert np.flatnonzero(x[:, 0]).tolist() == [32]
