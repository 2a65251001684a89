"""seasonality: calendar allow-lists, wrap-around ranges, anticipation, real hourly data."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

from trading_core.errors import InvalidInput
from trading_core.strategies import Bars, get_strategy

DAY = 86_400_000


def _daily(start: datetime, n: int, step_ms: int = DAY) -> Bars:
    ts = int(start.timestamp() * 1000) + np.arange(n, dtype=np.int64) * step_ms
    c = np.full((n, 1), 100.0)
    return Bars(ts=ts, open=c, high=c, low=c, close=c, volume=c)


def test_seasonality_when_monday_only_then_enter_on_mondays_exit_on_tuesdays() -> None:
    b = _daily(datetime(2024, 1, 1, tzinfo=UTC), 21)  # 2024-01-01 is a Monday
    e, x = get_strategy("seasonality", {"days": "mon"}).signals(b)
    assert np.flatnonzero(e[:, 0]).tolist() == [0, 7, 14]
    assert np.flatnonzero(x[:, 0]).tolist() == [1, 8, 15]


def test_seasonality_when_anticipate_then_decides_on_the_previous_bar() -> None:
    b = _daily(datetime(2024, 1, 1, tzinfo=UTC), 21)
    e, x = get_strategy("seasonality", {"days": "mon", "anticipate": "true"}).signals(b)
    assert np.flatnonzero(e[:, 0]).tolist() == [6, 13, 20]  # Sunday closes, to hold Monday
    assert np.flatnonzero(x[:, 0]).tolist() == [7, 14]


def test_seasonality_when_months_wrap_then_winter_half_year_on_real_sp500(sp500: pl.DataFrame) -> None:
    b = Bars.from_frame(sp500)
    e, x = get_strategy("seasonality", {"months": "nov-apr"}).signals(b)
    months = sp500["ts"].dt.month().to_numpy()
    assert months[0] == 1 and e[0, 0]  # the data starts in season
    assert set(months[1:][e[1:, 0]]) == {11}  # then the first in-season bar of each season
    assert set(months[x[:, 0]]) == {5}
    assert 18 <= e.sum() <= 21


def test_seasonality_when_hours_on_real_btc_then_enter_at_13_exit_at_21(btc_1h: pl.DataFrame) -> None:
    b = Bars.from_frame(btc_1h)
    e, x = get_strategy("seasonality", {"hours": "13-20", "days": "mon-fri"}).signals(b)
    hours = btc_1h["ts"].dt.hour().to_numpy()
    assert set(hours[e[:, 0]]) <= {13, 14, 15, 16, 17, 18, 19, 20}  # 13 unless a bar is missing
    assert (hours[e[:, 0]] == 13).mean() > 0.95
    assert set(hours[x[:, 0]]) >= {21}
    assert 400 <= e.sum() <= 620  # about one per weekday over 2.3 years


@pytest.mark.parametrize("params", [{"days": "funday"}, {"months": "13"}, {"hours": "24"}])
def test_seasonality_when_bad_list_then_invalid_input(params: dict[str, str]) -> None:
    with pytest.raises(InvalidInput, match="strategy seasonality"):
        get_strategy("seasonality", params)
