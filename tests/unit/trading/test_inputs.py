"""The Trader's incremental inputs (``trading.inputs``) against the batch functions they replace.

Each tracker sees one bar at a time and must give, at every bar, the value the platform's batch
function gives on the whole history -- bit for bit -- and never a value that needs a later bar.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

from trading_core.features.indicators import atr, realised_vol, rolling_percentile
from trading_core.risk.market_filter import vix_asof
from trading_core.risk.orders import adv_asof
from trading_core.trading.inputs import (
    DAY_MS,
    AdvTracker,
    AtrTracker,
    BarClock,
    ReturnWindow,
    VixAsOf,
    VolPercentileTracker,
)

HOUR_MS = 3_600_000


def _ms(y: int, m: int, d: int, h: int = 0) -> int:
    return int(datetime(y, m, d, h, tzinfo=UTC).timestamp() * 1000)


# ---- BarClock -------------------------------------------------------------------------------------
def _gaps(clock: BarClock, stamps: list[int]) -> list[float]:
    return [clock.gap(t) for t in stamps]


def test_bar_clock_counts_every_missing_hour_on_a_crypto_calendar() -> None:
    t0 = _ms(2024, 1, 5, 20)  # a Friday evening: crypto trades through the weekend
    stamps = [t0, t0 + HOUR_MS, t0 + 4 * HOUR_MS, t0 + 5 * HOUR_MS, t0 + 53 * HOUR_MS]
    assert _gaps(BarClock(HOUR_MS, "crypto"), stamps) == [0.0, 0.0, 2.0, 0.0, 47.0]


def test_bar_clock_skips_weekends_but_counts_a_missing_weekday_for_equity_days() -> None:
    fri, mon, tue, thu = _ms(2024, 1, 5), _ms(2024, 1, 8), _ms(2024, 1, 9), _ms(2024, 1, 11)
    next_mon = _ms(2024, 1, 15)
    assert _gaps(BarClock(DAY_MS, "equity"), [fri, mon, tue, thu, next_mon]) == [0.0, 0.0, 0.0, 1.0, 1.0]
    # the same days on a crypto calendar: the weekend is two missing days
    assert _gaps(BarClock(DAY_MS, "crypto"), [fri, mon, tue]) == [0.0, 2.0, 0.0]


def test_bar_clock_counts_intraday_gaps_but_not_the_night_for_equity_hours() -> None:
    d1, d2 = _ms(2024, 1, 8, 14), _ms(2024, 1, 9, 14)
    stamps = [d1, d1 + HOUR_MS, d1 + 4 * HOUR_MS, d2, d2 + HOUR_MS]
    assert _gaps(BarClock(HOUR_MS, "equity"), stamps) == [0.0, 0.0, 2.0, 0.0, 0.0]


def test_bar_clock_state_restores() -> None:
    a = BarClock(HOUR_MS, "crypto")
    a.gap(_ms(2024, 1, 1))
    b = BarClock(HOUR_MS, "crypto")
    b.load_state(a.state())
    assert b.gap(_ms(2024, 1, 1, 5)) == a.gap(_ms(2024, 1, 1, 5)) == 4.0


# ---- AdvTracker -----------------------------------------------------------------------------------
def _intraday_stamps(rng: np.random.Generator, days: int) -> np.ndarray:
    """Hourly stamps over ``days`` days with random missing hours and whole missing days."""
    t0 = _ms(2023, 3, 1)
    hours = np.arange(days * 24, dtype=np.int64)
    keep = rng.random(hours.shape[0]) < 0.7
    dead = rng.choice(days, size=max(days // 6, 1), replace=False)
    keep &= ~np.isin(hours // 24, dead)
    return t0 + hours[keep] * HOUR_MS


def _adv_pair(window: int, *, integer: bool) -> tuple[np.ndarray, np.ndarray]:
    """(tracker value at every bar, ``adv_asof`` at every bar), (T, S), on random intraday bars."""
    rng = np.random.default_rng(window)
    ts = _intraday_stamps(rng, 60)
    S = 3
    vol = rng.lognormal(6.0, 1.0, size=(ts.shape[0], S))
    if integer:
        vol = np.round(vol)
    vol[rng.random(vol.shape) < 0.05] = 0.0
    tr = AdvTracker(S, window)
    got = np.array([tr.update(int(t), vol[i]).copy() for i, t in enumerate(ts)])
    when = pl.Series("ts", ts).cast(pl.Datetime("ms", "UTC"))
    want = np.column_stack([adv_asof(pl.DataFrame({"ts": when, "volume": vol[:, s]}), when, window)
                            for s in range(S)])
    assert np.isnan(got[0]).all() and np.isfinite(got[-1]).all()
    return got, want


@pytest.mark.parametrize("window", [1, 5, 20])
def test_adv_tracker_equals_adv_asof_on_random_intraday_bars(window: int) -> None:
    got, want = _adv_pair(window, integer=False)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=0)


@pytest.mark.parametrize("window", [1, 20])
def test_adv_tracker_equals_adv_asof_bit_for_bit_on_whole_unit_volumes(window: int) -> None:
    got, want = _adv_pair(window, integer=True)  # exact day sums: only the mean's arithmetic is compared
    np.testing.assert_array_equal(got, want)


def test_adv_tracker_state_restores_mid_day() -> None:
    rng = np.random.default_rng(0)
    ts = _intraday_stamps(rng, 10)
    vol = rng.uniform(1, 10, size=(ts.shape[0], 2))
    a = AdvTracker(2, 3)
    cut = ts.shape[0] // 2
    for i in range(cut):
        a.update(int(ts[i]), vol[i])
    b = AdvTracker(2, 3)
    b.load_state(a.state())
    for i in range(cut, ts.shape[0]):
        np.testing.assert_array_equal(a.update(int(ts[i]), vol[i]), b.update(int(ts[i]), vol[i]))


# ---- VolPercentileTracker / AtrTracker -------------------------------------------------------------
def _closes(rng: np.random.Generator, T: int, S: int) -> np.ndarray:
    c = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, size=(T, S)) * rng.uniform(0.5, 3.0, size=(T, 1)), axis=0))
    return c


def test_vol_percentile_tracker_equals_rolling_percentile_of_realised_vol_bit_for_bit() -> None:
    rng = np.random.default_rng(7)
    T, S = 700, 3
    close = _closes(rng, T, S)
    tr = VolPercentileTracker(S, 20, 252)
    got = np.array([tr.update(close[t]).copy() for t in range(T)])
    for s in range(S):
        want = rolling_percentile(realised_vol(close[:, s], 20), 252)
        np.testing.assert_array_equal(got[:, s], want, err_msg=f"symbol {s}")
    assert np.isnan(got[:271]).all() and np.isfinite(got[272:]).all()


def test_vol_percentile_tracker_state_restores() -> None:
    rng = np.random.default_rng(8)
    close = _closes(rng, 400, 2)
    a = VolPercentileTracker(2, 20, 252)
    for t in range(300):
        a.update(close[t])
    b = VolPercentileTracker(2, 20, 252)
    b.load_state(a.state())
    for t in range(300, 400):
        np.testing.assert_array_equal(a.update(close[t]), b.update(close[t]))
    assert a.median() == b.median()


def test_vol_percentile_median_skips_symbols_without_a_rank() -> None:
    tr = VolPercentileTracker(3, 20, 252)
    assert np.isnan(tr.median())
    tr.value = np.array([0.2, np.nan, 0.6])
    assert tr.median() == pytest.approx(0.4)


def test_atr_tracker_equals_batch_atr_bit_for_bit() -> None:
    rng = np.random.default_rng(3)
    T, S = 200, 2
    close = _closes(rng, T, S)
    high = close * np.exp(np.abs(rng.normal(0, 0.01, (T, S))))
    low = close * np.exp(-np.abs(rng.normal(0, 0.01, (T, S))))
    tr = AtrTracker(S, 14)
    got = np.array([tr.update(high[t], low[t], close[t]).copy() for t in range(T)])
    for s in range(S):
        np.testing.assert_array_equal(got[:, s], atr(high[:, s], low[:, s], close[:, s], 14))


# ---- VixAsOf --------------------------------------------------------------------------------------
def _vix(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    days = np.arange(120, dtype=np.int64)
    days = days[rng.random(days.shape[0]) < 0.75]  # weekends, holidays, outages
    close = rng.uniform(10, 60, days.shape[0])
    close[rng.random(close.shape[0]) < 0.1] = np.nan  # missing closes
    return _ms(2022, 1, 3) + days * DAY_MS, close


def test_vix_asof_never_sees_a_close_before_its_day_ends_and_matches_the_batch_lookup() -> None:
    rng = np.random.default_rng(11)
    vts, vclose = _vix(rng)
    decisions = np.sort(_ms(2022, 1, 1) + rng.integers(0, 130 * DAY_MS, size=600)).astype(np.int64)
    decisions[::7] = decisions[::7] - decisions[::7] % DAY_MS  # some exactly at a midnight (a day's end)
    decisions = np.sort(decisions)
    v = VixAsOf(vts, vclose)
    got = [v.at(int(d)) for d in decisions]
    frame = pl.DataFrame({"ts": pl.Series(vts).cast(pl.Datetime("ms", "UTC")), "close": vclose})
    want = vix_asof(frame, pl.Series(decisions).cast(pl.Datetime("ms", "UTC")))
    w_close = want["vix_close"].fill_null(np.nan).to_numpy()
    w_known = want["vix_known_at"].dt.epoch("ms").to_numpy()
    for i, (d, (c, known)) in enumerate(zip(decisions.tolist(), got, strict=True)):
        if known is None:
            assert np.isnan(c) and np.isnan(w_close[i])
            continue
        assert known <= d  # known at the decision
        j = int(np.flatnonzero(vts + DAY_MS == known)[0])
        assert vts[j] + DAY_MS <= d and c == vclose[j]  # the close of a bar that had ended
        assert c == w_close[i] and known == int(w_known[i])
    assert sum(k is None for _, k in got) < 20 and len({k for _, k in got}) > 50


def test_vix_asof_extended_live_gives_the_same_lookups_and_state_restores() -> None:
    rng = np.random.default_rng(12)
    vts, vclose = _vix(rng)
    decisions = np.sort(_ms(2022, 1, 1) + rng.integers(0, 130 * DAY_MS, size=300)).astype(np.int64)
    full = VixAsOf(vts, vclose)
    want = [full.at(int(d)) for d in decisions]
    live = VixAsOf()
    got = []
    for d in decisions.tolist():
        known = vts + DAY_MS <= d  # a live feed only has the bars that ended
        live.extend(vts[known], vclose[known])  # re-sending old bars is harmless
        got.append(live.at(d))
        again = VixAsOf(vts, vclose)
        again.load_state(live.state())
        assert again.at(d) == got[-1]
    assert got == want


def test_vix_asof_before_any_close_is_missing() -> None:
    v = VixAsOf(np.array([_ms(2022, 1, 3)]), np.array([20.0]))
    c, known = v.at(_ms(2022, 1, 3, 23))
    assert np.isnan(c) and known is None
    assert v.at(_ms(2022, 1, 4)) == (20.0, _ms(2022, 1, 4))


# ---- ReturnWindow ---------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [1, 5, 17])
def test_return_window_last_n_are_the_newest_log_returns_oldest_first(size: int) -> None:
    rng = np.random.default_rng(size)
    close = _closes(rng, 60, 3)
    logret = np.diff(np.log(close), axis=0)
    w = ReturnWindow(3, size)
    assert w.last(5).shape == (0, 3)
    for t in range(60):
        w.update(close[t])
        have = logret[:t]  # returns known after bar t
        for n in (1, 3, size, size + 4, 100):
            k = min(n, size, have.shape[0])
            np.testing.assert_array_equal(w.last(n), have[have.shape[0] - k:], err_msg=f"t={t} n={n}")


def test_return_window_state_restores() -> None:
    rng = np.random.default_rng(2)
    close = _closes(rng, 30, 2)
    a = ReturnWindow(2, 7)
    for t in range(12):
        a.update(close[t])
    b = ReturnWindow(2, 7)
    b.load_state(a.state())
    for t in range(12, 30):
        a.update(close[t])
        b.update(close[t])
        np.testing.assert_array_equal(a.last(7), b.last(7))


def test_vix_asof_restores_onto_a_history_loaded_over_another_window() -> None:
    day = 86_400_000
    ts = np.arange(40, dtype=np.int64) * day
    close = 10.0 + np.arange(40, dtype=np.float64)
    a = VixAsOf(ts, close)
    a.at(int(ts[25]) + day + 1)  # the close of bar 25 is known
    b = VixAsOf(ts[10:], close[10:])  # a session reloads VIX from a later start
    b.load_state(a.state())
    for t in range(26, 39):
        assert a.at(int(ts[t]) + day) == b.at(int(ts[t]) + day)
