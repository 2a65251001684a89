"""The numba moving averages agree with pandas on real S&P 500 closes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest

from trading_core.strategies import moving_average
from trading_core.strategies.nb import crossed_above, ema_nb, sma_nb


@pytest.mark.parametrize("window", [1, 2, 10, 50, 200])
def test_sma_nb_when_real_closes_then_equals_pandas_rolling_mean(sp500: pl.DataFrame, window: int) -> None:
    close = sp500["close"].to_numpy()
    got = sma_nb(close.reshape(-1, 1).copy(), window)[:, 0]
    want = pd.Series(close).rolling(window).mean().to_numpy()
    np.testing.assert_allclose(got, want, rtol=1e-9, equal_nan=True)


@pytest.mark.parametrize("window", [1, 5, 20, 100])
def test_ema_nb_when_real_closes_then_equals_pandas_ewm(sp500: pl.DataFrame, window: int) -> None:
    close = sp500["close"].to_numpy()
    got = ema_nb(close.reshape(-1, 1).copy(), window)[:, 0]
    want = pd.Series(close).ewm(span=window, adjust=False, min_periods=window).mean().to_numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12, equal_nan=True)


def test_sma_nb_when_nan_in_window_then_nan_until_window_clears() -> None:
    x = np.array([[1.0], [2.0], [np.nan], [4.0], [5.0], [6.0]])
    got = sma_nb(x, 2)[:, 0]
    np.testing.assert_array_equal(np.isnan(got), [True, False, True, True, False, False])
    assert got[4] == 4.5 and got[5] == 5.5


def test_moving_average_when_several_columns_then_each_column_independent() -> None:
    rng = np.random.default_rng(42)
    x = 100 + rng.normal(size=(300, 3)).cumsum(axis=0)
    both = moving_average(x, 20, "sma")
    for j in range(3):
        np.testing.assert_allclose(both[:, j], moving_average(x[:, [j]], 20, "sma")[:, 0], equal_nan=True)


def test_crossed_above_when_equal_then_cross_counts_from_at_or_below() -> None:
    a = np.array([[1.0], [2.0], [2.0], [3.0], [1.0]])
    b = np.array([[np.nan], [2.0], [2.0], [2.0], [2.0]])
    np.testing.assert_array_equal(crossed_above(a, b)[:, 0], [False, False, False, True, False])
