"""VIX market filter on the REAL VIX history, with and without the warehouse, and no look-ahead."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest
from risk_helpers import RecordingEngine, insert_bars, pass_to_engine

from trading_core.risk import (
    MarketFilterConfig,
    RiskReason,
    entries_paused,
    entries_paused_from_warehouse,
    market_filter_frame,
    verify_orders,
    vix_asof,
)
from trading_core.warehouse import Warehouse


def _d(y: int, m: int, d: int, h: int = 0) -> datetime:
    return datetime(y, m, d, h, tzinfo=UTC)


def test_entries_are_paused_on_2008_10_10_after_vix_closed_near_64(real_vix: pl.DataFrame) -> None:
    f = market_filter_frame(real_vix, [_d(2008, 10, 10)])
    assert f["paused"].to_list() == [True]
    assert f["vix_ts"].to_list() == [_d(2008, 10, 9)]  # the previous day's close, never the same day
    assert f["vix_close"][0] > 30 and f["reason"][0] == "vix_above_threshold"


def test_entries_are_paused_on_2020_03_16_using_fridays_close(real_vix: pl.DataFrame) -> None:
    f = market_filter_frame(real_vix, [_d(2020, 3, 16)])
    assert f["paused"].to_list() == [True]
    assert f["vix_ts"].to_list() == [_d(2020, 3, 13)]


def test_entries_are_allowed_on_calm_2017_06_01(real_vix: pl.DataFrame) -> None:
    f = market_filter_frame(real_vix, [_d(2017, 6, 1)])
    assert f["paused"].to_list() == [False]
    assert f["vix_close"][0] < 15


def test_paused_entry_on_a_crisis_day_never_reaches_the_engine(real_vix: pl.DataFrame,
                                                               engine: RecordingEngine) -> None:
    # Arrange: one buy order on each day
    days = [_d(2008, 10, 10), _d(2020, 3, 16), _d(2017, 6, 1)]
    paused = entries_paused(real_vix, days)
    orders = np.array([0, 1, 2])
    # Act
    res = verify_orders(np.zeros(3, np.int64), np.zeros(3, np.int64), np.ones(3), np.full(3, 100.0),
                        last_price=np.array([100.0]), adv=np.array([1e6]), entries_paused=paused)
    pass_to_engine(orders, res.allowed, engine)
    # Assert
    assert res.reason.tolist() == [RiskReason.MARKET_FILTER, RiskReason.MARKET_FILTER, RiskReason.NONE]
    assert engine.received == [2]


def test_threshold_is_configurable(real_vix: pl.DataFrame) -> None:
    day = [_d(2017, 6, 1)]
    assert entries_paused(real_vix, day, MarketFilterConfig(vix_threshold=10.0)).tolist() == [True]


def test_a_vix_spike_is_not_seen_before_its_close_is_known() -> None:
    # Arrange: calm VIX, then day 3 closes at 80
    vix = pl.DataFrame({"ts": [_d(2021, 1, 4), _d(2021, 1, 5), _d(2021, 1, 6)],
                        "close": [15.0, 16.0, 80.0]})
    decisions = [_d(2021, 1, 6), _d(2021, 1, 6, 20), _d(2021, 1, 7)]
    # Act
    f = market_filter_frame(vix, decisions)
    # Assert: during day 3 (open stamp and intraday) the spike is unknown; the next day it counts
    assert f["vix_close"].to_list() == [16.0, 16.0, 80.0]
    assert f["paused"].to_list() == [False, False, True]


def test_missing_or_stale_vix_pauses_entries_fail_closed() -> None:
    vix = pl.DataFrame({"ts": [_d(2021, 1, 4)], "close": [12.0]})
    f = market_filter_frame(vix, [_d(2021, 1, 1), _d(2021, 1, 5), _d(2021, 1, 20)])
    assert f["reason"].to_list() == ["vix_missing", None, "vix_stale"]
    assert f["paused"].to_list() == [True, False, True]
    allow = MarketFilterConfig(on_missing_vix="allow")
    assert entries_paused(vix, [_d(2021, 1, 1), _d(2021, 1, 20)], allow).tolist() == [False, False]


def test_disabled_filter_never_pauses(real_vix: pl.DataFrame) -> None:
    assert entries_paused(real_vix, [_d(2008, 10, 10)], MarketFilterConfig(enabled=False)).tolist() == [False]


def test_vix_asof_keeps_input_order_and_accepts_epoch_ms(real_vix: pl.DataFrame) -> None:
    ms = [int(_d(2017, 6, 1).timestamp() * 1000), int(_d(2008, 10, 10).timestamp() * 1000)]
    f = vix_asof(real_vix, pl.Series(ms, dtype=pl.Int64))
    assert f["vix_ts"].to_list() == [_d(2017, 5, 31), _d(2008, 10, 9)]


def test_filter_reads_the_vix_through_the_warehouse(warehouse: Warehouse, real_vix: pl.DataFrame) -> None:
    # Arrange
    insert_bars(warehouse, "yahoo", "^VIX", "1d", real_vix)
    days = [_d(2008, 10, 10), _d(2017, 6, 1), _d(2020, 3, 16)]
    # Act
    paused = entries_paused_from_warehouse(warehouse, days)
    # Assert
    assert paused.tolist() == [True, False, True]


def test_filter_with_an_empty_warehouse_pauses_everything(warehouse: Warehouse) -> None:
    assert entries_paused_from_warehouse(warehouse, [_d(2017, 6, 1)]).tolist() == [True]


@pytest.mark.parametrize("day", [_d(2008, 11, 20), _d(2020, 3, 17)])
def test_other_known_stress_days_are_paused(real_vix: pl.DataFrame, day: datetime) -> None:
    assert entries_paused(real_vix, [day]).tolist() == [True]
