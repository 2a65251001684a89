"""bollinger_mean_reversion and bollinger_breakout: exact signals on step series, real data."""

from __future__ import annotations

import numpy as np
import polars as pl

from trading_core.strategies import Bars, get_strategy


def _bars(close: np.ndarray) -> Bars:
    c = np.asarray(close, dtype=float).reshape(len(close), -1)
    return Bars(ts=np.arange(c.shape[0], dtype=np.int64) * 86_400_000, open=c, high=c, low=c, close=c,
                volume=np.ones_like(c))


def test_mean_reversion_when_drop_below_lower_then_enter_and_exit_at_mid() -> None:
    close = np.full(40, 100.0)
    close[25:27] = 90.0  # two bars far below the lower band, then back to 100 (above the mid)
    e, x = get_strategy("bollinger_mean_reversion", {}).signals(_bars(close))
    assert np.flatnonzero(e[:, 0]).tolist() == [25]
    assert np.flatnonzero(x[:, 0]).tolist() == [27]


def test_breakout_when_jump_above_upper_then_enter_and_exit_below_mid() -> None:
    close = np.full(40, 100.0)
    close[25:28] = 110.0
    close[28:] = 95.0
    e, x = get_strategy("bollinger_breakout", {}).signals(_bars(close))
    assert np.flatnonzero(e[:, 0]).tolist() == [25]
    assert np.flatnonzero(x[:, 0]).tolist() == [28]


def test_bollinger_on_real_data_then_alternating_signals(sp500: pl.DataFrame, btc_1h: pl.DataFrame) -> None:
    for name in ("bollinger_mean_reversion", "bollinger_breakout"):
        for frame in (sp500, btc_1h):
            e, x = get_strategy(name, {"grid": "20:2,50:2.5"}).signals(Bars.from_frame(frame))
            for j in range(2):
                ent, ext = np.flatnonzero(e[:, j]), np.flatnonzero(x[:, j])
                assert 3 <= len(ent) <= len(frame) // 20
                # the position loop alternates: entry < exit < entry < ...
                merged = np.sort(np.concatenate([ent, ext]))
                assert np.array_equal(merged[::2], ent) and np.array_equal(merged[1::2], ext[: len(merged[1::2])])
