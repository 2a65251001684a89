"""Signal filters with a short side (``short=True``), the exit block and position re-sync.

Hand-made one-portfolio scenarios: bar i has timestamp i minutes; each test names the bars that
carry an entry or exit signal and checks the decision of each, by reason code.
"""

from __future__ import annotations

import numpy as np
import pytest

from trading_core.strategies.filters import FilterConfig, SignalFilter, apply_filters

T = 12
TS = np.arange(T, dtype=np.int64) * 60_000
ALLOWED, MIN_HOLD, STALE, THROTTLED, BLOCKED, IN_POSITION = 0, 3, 4, 6, 7, 9


def _sig(*bars: int) -> np.ndarray:
    a = np.zeros((T, 1), dtype=bool)
    a[list(bars), 0] = True
    return a


def _reasons(res: object) -> list[tuple[int, str, int]]:
    d = res.decisions  # type: ignore[attr-defined]
    return [(int(r["bar"]), "entry" if int(r["kind"]) == 0 else "exit", int(r["reason"])) for r in d]


def test_an_exit_while_flat_opens_a_short_only_in_short_mode() -> None:
    long_only = apply_filters(_sig(4), _sig(2), TS, FilterConfig())
    short = apply_filters(_sig(4), _sig(2), TS, FilterConfig(), short=True)
    assert _reasons(long_only) == [(2, "exit", ALLOWED), (4, "entry", ALLOWED)]
    assert _reasons(short) == [(2, "exit", ALLOWED), (4, "entry", ALLOWED)]  # short at 2, reversed at 4
    sf = SignalFilter(FilterConfig(), 1, short=True)
    sf.run(_sig()[:3], _sig(2)[:3], TS[:3])
    assert sf.position(0) == -1
    lf = SignalFilter(FilterConfig(), 1)
    lf.run(_sig()[:3], _sig(2)[:3], TS[:3])
    assert lf.position(0) == 0


def test_an_exit_while_short_is_in_position_and_a_reversal_respects_min_hold() -> None:
    res = apply_filters(_sig(3, 6), _sig(1, 2), TS, FilterConfig(min_hold_bars=4), short=True)
    # short at 1; exit at 2 is towards the side held; entry at 3 would reverse after 1 bar (< 4);
    # entry at 6 reverses after 4 bars
    assert _reasons(res) == [(1, "exit", ALLOWED), (2, "exit", IN_POSITION), (3, "entry", MIN_HOLD),
                             (6, "entry", ALLOWED)]
    assert res.entries[:, 0].nonzero()[0].tolist() == [6]


def test_stale_data_and_the_block_refuse_the_opening_leg_of_a_short() -> None:
    decision = TS.copy()
    decision[2] += 10 * 60_000  # bar 2 is judged 10 minutes after it opened: stale
    res = apply_filters(_sig(), _sig(2), TS, FilterConfig(max_bar_age_ms=120_000), decision_ts=decision,
                        short=True)
    assert _reasons(res) == [(2, "exit", STALE)]
    block = np.zeros((T, 1), dtype=bool)
    block[5] = True
    res = apply_filters(_sig(1), _sig(5, 7), TS, FilterConfig(), block=block, short=True)
    # long at 1; the reversal into a short at 5 is blocked on its opening leg: refused whole, the
    # long is kept; at 7 it goes through
    assert _reasons(res) == [(1, "entry", ALLOWED), (5, "exit", BLOCKED), (7, "exit", ALLOWED)]


def test_throttle_counts_short_entries_too() -> None:
    res = apply_filters(_sig(2, 6), _sig(1, 4), TS, FilterConfig(max_trades=2, throttle_window_bars=10),
                        short=True)
    # short at 1, long at 2: two positions opened in the window; the short at 4 is throttled
    assert _reasons(res)[:3] == [(1, "exit", ALLOWED), (2, "entry", ALLOWED), (4, "exit", THROTTLED)]


def test_block_exit_keeps_a_long_open_and_the_filter_knows_it() -> None:
    block_exit = np.zeros((T, 1), dtype=bool)
    block_exit[4] = True
    res = apply_filters(_sig(1, 5), _sig(4, 6), TS, FilterConfig(), block_exit=block_exit)
    assert _reasons(res) == [(1, "entry", ALLOWED), (4, "exit", BLOCKED), (5, "entry", IN_POSITION),
                             (6, "exit", ALLOWED)]


def test_set_position_resyncs_after_a_stop_fill() -> None:
    f = SignalFilter(FilterConfig(min_hold_bars=2), 1)
    f.step(np.array([True]), np.array([False]), 0)
    assert f.position(0) == 1
    f.set_position(0, 0)  # a resting stop closed it
    out = f.step(np.array([True]), np.array([False]), 60_000)
    assert out.entries[0, 0] and _reasons(out) == [(1, "entry", ALLOWED)]
    with pytest.raises(ValueError, match="-1 only with short"):
        f.set_position(0, -1)


def test_streaming_equals_batch_in_short_mode() -> None:
    rng = np.random.default_rng(7)
    n, p = 300, 3
    e = rng.random((n, p)) < 0.15
    x = rng.random((n, p)) < 0.15
    ts = np.arange(n, dtype=np.int64) * 60_000
    ts += (np.arange(n) // 20) * 30 * 60_000  # a gap every 20 bars
    block = rng.random((n, p)) < 0.1
    block_exit = rng.random((n, p)) < 0.05
    cfg = FilterConfig(smooth_window=1, confirm_bars=1, min_hold_bars=3, max_trades=2, throttle_window_bars=30,
                       max_gap_ms=10 * 60_000)
    batch = apply_filters(e, x, ts, cfg, block=block, block_exit=block_exit, short=True)
    f = SignalFilter(cfg, p, short=True)
    rows = [f.step(e[t], x[t], int(ts[t]), block=block[t], block_exit=block_exit[t]) for t in range(n)]
    np.testing.assert_array_equal(np.vstack([r.entries for r in rows]), batch.entries)
    np.testing.assert_array_equal(np.vstack([r.exits for r in rows]), batch.exits)
    np.testing.assert_array_equal(np.concatenate([r.decisions for r in rows]), batch.decisions)
    assert set(np.unique(batch.decisions["reason"]).tolist()) >= {0, 3, 5, 6, 7, 9}
    smooth = FilterConfig(smooth_window=3, confirm_bars=2)
    b2 = apply_filters(e, x, ts, smooth, short=True)
    f2 = SignalFilter(smooth, p, short=True)
    s2 = np.vstack([f2.step(e[t], x[t], int(ts[t])).entries for t in range(n)])
    np.testing.assert_array_equal(s2, b2.entries)
