"""rsi_mean_reversion: exact signals on a hand-made series, a reference loop, grids and real data."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from trading_core.errors import InvalidInput
from trading_core.features.indicators import rsi
from trading_core.strategies import Bars, get_strategy


def _bars(close: np.ndarray) -> Bars:
    c = np.asarray(close, dtype=float).reshape(len(close), -1)
    ts = np.arange(c.shape[0], dtype=np.int64) * 86_400_000
    return Bars(ts=ts, open=c, high=c, low=c, close=c, volume=np.ones_like(c))


def _reference(r: np.ndarray, lower: float, upper: float, max_bars: int) -> tuple[list[int], list[int]]:
    """The rules written as the obvious Python loop."""
    entries, exits, long, t0 = [], [], False, 0
    for t, v in enumerate(r):
        if not long:
            if v < lower:
                entries.append(t)
                long, t0 = True, t
        elif v > upper or (max_bars and t - t0 >= max_bars):
            exits.append(t)
            long = False
    return entries, exits


def test_rsi_when_sell_off_then_rebound_then_enters_in_the_sell_off_and_exits_in_the_rebound() -> None:
    # Arrange: 30 flat-ish up bars, 8 sharp down bars, 20 up bars
    close = np.concatenate([100 + 0.1 * np.arange(30), 103 - 3 * np.arange(1, 9), 79 + 2 * np.arange(1, 21)])
    r = rsi(close, 14)
    # Act
    e, x = get_strategy("rsi_mean_reversion", {"window": "14", "lower": "30", "upper": "70"}).signals(_bars(close))
    # Assert
    ent, ext = np.flatnonzero(e[:, 0]), np.flatnonzero(x[:, 0])
    assert len(ent) == 1 and len(ext) == 1
    assert 30 <= ent[0] < 38 and r[ent[0]] < 30 and r[ent[0] - 1] >= 30
    assert ext[0] >= 38 and r[ext[0]] > 70 and r[ext[0] - 1] <= 70


def test_rsi_when_max_bars_then_exit_exactly_max_bars_after_entry() -> None:
    close = np.concatenate([100 + 0.1 * np.arange(30), 103 - 3 * np.arange(1, 30)])  # never recovers
    e, x = get_strategy("rsi_mean_reversion", {"max_bars": "5"}).signals(_bars(close))
    ent, ext = np.flatnonzero(e[:, 0]), np.flatnonzero(x[:, 0])
    assert ext[0] == ent[0] + 5
    # RSI stays oversold, so it re-enters on the bar after the time exit
    assert ent[1] == ext[0] + 1


def test_rsi_on_real_sp500_then_matches_reference_loop_and_counts_are_sane(sp500: pl.DataFrame) -> None:
    b = Bars.from_frame(sp500)
    e, x = get_strategy("rsi_mean_reversion", {"upper": "55", "max_bars": "20"}).signals(b)
    ref_e, ref_x = _reference(rsi(b.close[:, 0], 14), 30, 55, 20)
    assert np.flatnonzero(e[:, 0]).tolist() == ref_e
    assert np.flatnonzero(x[:, 0]).tolist() == ref_x
    assert 10 <= len(ref_e) <= 200  # oversold daily closes are rare, not absent


def test_rsi_grid_when_two_triples_then_one_column_each_in_order(sp500: pl.DataFrame) -> None:
    b = Bars.from_frame(sp500)
    s = get_strategy("rsi_mean_reversion", {"grid": "14:30:70,7:20:80"})
    e, x = s.signals(b)
    assert e.shape == (b.n_bars, 2) and [v["window"] for v in s.variants()] == [14, 7]
    e7, _ = get_strategy("rsi_mean_reversion", {"window": "7", "lower": "20", "upper": "80"}).signals(b)
    assert np.array_equal(e[:, 1], e7[:, 0])


@pytest.mark.parametrize("params", [{"lower": "80", "upper": "20"}, {"window": "1"}, {"grid": "14:30"}])
def test_rsi_when_bad_params_then_invalid_input_names_the_strategy(params: dict[str, str]) -> None:
    with pytest.raises(InvalidInput, match="strategy rsi_mean_reversion"):
        get_strategy("rsi_mean_reversion", params)
