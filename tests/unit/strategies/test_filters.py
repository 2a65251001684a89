"""Signal filters on hand-made scenarios, and batch == bar-by-bar streaming (paper parity)."""

from __future__ import annotations

import numpy as np
import pytest

from trading_core.strategies.filters import FilterConfig, SignalFilter, apply_filters, decision_rows

T = 30
TS = np.arange(T, dtype=np.int64) * 60_000  # one-minute bars (close times)


def _sig(*bars: int) -> np.ndarray:
    a = np.zeros((T, 1), dtype=bool)
    a[list(bars), 0] = True
    return a


def _on(a: np.ndarray) -> list[int]:
    return np.flatnonzero(a[:, 0]).tolist()


def _reasons(res: object) -> dict[tuple[int, int], str]:
    from trading_core.strategies.filters import FILTER_REASON_NAMES

    d = res.decisions  # type: ignore[attr-defined]
    return {(int(b), int(k)): FILTER_REASON_NAMES[int(r)] for b, k, r in zip(d["bar"], d["kind"], d["reason"],
                                                                           strict=True)}


def test_default_config_passes_every_signal_through() -> None:
    e, x = _sig(2, 10), _sig(5, 20)
    res = apply_filters(e, x, TS)
    assert _on(res.entries) == [2, 10] and _on(res.exits) == [5, 20]
    assert res.counts() == {"allowed": 4}


def test_smoothing_requires_a_majority_of_the_window() -> None:
    e = _sig(3, 4, 10)  # two of three at bar 4 is a majority; a lone bar-10 blip is not
    res = apply_filters(e, _sig(), TS, FilterConfig(smooth_window=3))
    assert _on(res.entries) == [4]
    assert _reasons(res)[(3, 0)] == "smoothing" and _reasons(res)[(10, 0)] == "smoothing"


def test_confirmation_needs_n_consecutive_bars() -> None:
    res = apply_filters(_sig(2, 3, 4, 8), _sig(), TS, FilterConfig(confirm_bars=3))
    assert _on(res.entries) == [4]
    assert _reasons(res)[(8, 0)] == "confirmation"


def test_min_hold_suppresses_an_early_exit() -> None:
    res = apply_filters(_sig(2), _sig(4, 8), TS, FilterConfig(min_hold_bars=5))
    assert _on(res.exits) == [8]
    assert _reasons(res)[(4, 1)] == "min_hold"


def test_throttle_allows_at_most_max_trades_per_window() -> None:
    e, x = _sig(1, 5, 9, 22), _sig(3, 7, 11, 24)
    res = apply_filters(e, x, TS, FilterConfig(max_trades=2, throttle_window_bars=10))
    assert _on(res.entries) == [1, 5, 22]  # bar 9 would be the third entry within 10 bars
    assert _reasons(res)[(9, 0)] == "throttled"


def test_stale_bar_blocks_new_entries_but_not_exits() -> None:
    decision = TS.copy()
    decision[5] += 10 * 60_000  # bar 5 is judged ten minutes after it closed
    res = apply_filters(_sig(5, 6), _sig(9), TS, FilterConfig(max_bar_age_ms=120_000), decision_ts=decision)
    assert _on(res.entries) == [6] and _on(res.exits) == [9]
    assert _reasons(res)[(5, 0)] == "stale_data"


def test_gap_in_bars_blocks_the_entry_after_it() -> None:
    ts = TS.copy()
    ts[7:] += 3_600_000  # an hour missing before bar 7
    res = apply_filters(_sig(7, 8), _sig(), ts, FilterConfig(max_gap_ms=5 * 60_000))
    assert _on(res.entries) == [8]
    assert _reasons(res)[(7, 0)] == "data_gap"


def test_external_block_keeps_the_position_flat_for_later_filters() -> None:
    block = np.zeros(T, dtype=bool)
    block[2] = True
    res = apply_filters(_sig(2, 6), _sig(7), TS, FilterConfig(min_hold_bars=3), block=block)
    assert _on(res.entries) == [6]  # blocked bar 2 opened nothing ...
    assert _on(res.exits) == []  # ... so the exit at 7 is judged against the bar-6 entry
    assert _reasons(res)[(2, 0)] == "risk_blocked" and _reasons(res)[(7, 1)] == "min_hold"


def test_entry_while_long_is_reported_in_position_and_same_bar_cancels() -> None:
    res = apply_filters(_sig(1, 3, 6), _sig(6), TS)
    assert _on(res.entries) == [1] and _on(res.exits) == []
    r = _reasons(res)
    assert r[(3, 0)] == "in_position" and r[(6, 0)] == "cancelled" and r[(6, 1)] == "cancelled"


@pytest.mark.parametrize("cfg", [
    FilterConfig(),
    FilterConfig(smooth_window=3, confirm_bars=2),
    FilterConfig(min_hold_bars=4, max_trades=1, throttle_window_bars=7, max_gap_ms=90_000),
])
def test_streaming_bar_by_bar_equals_batch(cfg: FilterConfig) -> None:
    rng = np.random.default_rng(7)
    n, p = 400, 3
    e, x = rng.random((n, p)) < 0.3, rng.random((n, p)) < 0.3
    ts = np.cumsum(rng.choice([60_000, 60_000, 60_000, 180_000], n)).astype(np.int64)
    block = rng.random(n) < 0.1
    batch = apply_filters(e, x, ts, cfg, block=block)
    f = SignalFilter(cfg, p)
    steps = [f.step(e[t], x[t], int(ts[t]), block=bool(block[t])) for t in range(n)]
    assert np.array_equal(np.concatenate([s.entries for s in steps]), batch.entries)
    assert np.array_equal(np.concatenate([s.exits for s in steps]), batch.exits)
    assert np.array_equal(np.concatenate([s.decisions for s in steps]), batch.decisions)


def test_decision_rows_name_each_decision() -> None:
    res = apply_filters(_sig(2, 3), _sig(), TS, FilterConfig(confirm_bars=2))
    rows = decision_rows(res.decisions, TS, run_id="r", strategy="s", symbols=["BTC/USD"],
                         symbol_of=np.array([0]))
    assert rows["reason"].to_list() == ["confirmation", "allowed"]
    assert rows["decision"].to_list() == ["suppressed", "allowed"] and rows["symbol"][0] == "BTC/USD"
