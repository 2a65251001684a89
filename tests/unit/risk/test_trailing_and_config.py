"""Trailing stop levels by hand, ADV without look-ahead, and config validation naming the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from trading_core.errors import ConfigError
from trading_core.risk import (
    RiskConfig,
    TrailingStopConfig,
    adv_asof,
    average_daily_volume,
    load_risk_config,
    trailing_stop_levels,
    trailing_stops,
    wilder_atr,
)

H = np.array([10.0, 11.0, 12.0, 11.5, 13.0, 12.0])
L = np.array([9.0, 10.0, 11.0, 10.0, 12.0, 10.5])
C = np.array([9.5, 10.5, 11.5, 10.5, 12.5, 11.0])


def test_percent_trailing_stop_follows_highest_high_and_never_loosens() -> None:
    stop = trailing_stop_levels(H, L, C, TrailingStopConfig(kind="percent", trail_pct=0.10))
    assert stop.tolist() == pytest.approx([9.0, 9.9, 10.8, 10.8, 11.7, 11.7])


def test_percent_trailing_stop_for_a_short_follows_lowest_low() -> None:
    stop = trailing_stop_levels(H, L, C, TrailingStopConfig(kind="percent", trail_pct=0.10), side="short")
    assert stop.tolist() == pytest.approx([9.9, 9.9, 9.9, 9.9, 9.9, 9.9])


def test_wilder_atr_by_hand() -> None:
    # TR: 1, max(1, 1.5, .5)=1.5, max(1, 1.5, .5)=1.5, max(1.5, 0, 1.5)=1.5, max(1, 2.5, 1.5)=2.5, max(1.5, .5, 2)=2
    atr = wilder_atr(H, L, C, 3)
    assert np.isnan(atr[:2]).all()
    assert atr[2:].tolist() == pytest.approx([4 / 3, (4 / 3 * 2 + 1.5) / 3,
                                              ((4 / 3 * 2 + 1.5) / 3 * 2 + 2.5) / 3,
                                              (((4 / 3 * 2 + 1.5) / 3 * 2 + 2.5) / 3 * 2 + 2.0) / 3])


def test_atr_trailing_stop_is_highest_high_minus_k_atr_ratcheted() -> None:
    cfg = TrailingStopConfig(kind="atr", atr_period=3, atr_multiple=2.0)
    atr = wilder_atr(H, L, C, 3)
    stop = trailing_stop_levels(H, L, C, cfg)
    hh = np.maximum.accumulate(H)
    raw = hh - 2.0 * atr
    expected = np.maximum.accumulate(np.nan_to_num(raw, nan=-np.inf))
    expected[:2] = np.nan
    assert np.isnan(stop[:2]).all()
    assert stop[2:].tolist() == pytest.approx(expected[2:].tolist())


def test_entries_restart_the_trail() -> None:
    entries = np.array([False, False, False, True, False, False])
    stop = trailing_stop_levels(H, L, C, TrailingStopConfig(kind="percent", trail_pct=0.10), entries=entries)
    assert np.isnan(stop[:3]).all()
    assert stop[3:].tolist() == pytest.approx([10.35, 11.7, 11.7])


def test_trailing_stops_frame_shifts_the_level_one_bar_and_flags_hits() -> None:
    ts = [datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=i) for i in range(6)]
    bars = pl.DataFrame({"ts": ts, "high": H, "low": L, "close": C})
    f = trailing_stops(bars, TrailingStopConfig(kind="percent", trail_pct=0.10))
    assert f["stop_in_force"].to_list()[0] is None
    assert f["stop_in_force"].to_list()[1:] == pytest.approx([9.0, 9.9, 10.8, 10.8, 11.7])
    assert f["stop_hit"].to_list() == [False, False, False, True, False, True]


def test_adv_excludes_the_current_day() -> None:
    ts = [datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=12 * i) for i in range(6)]
    bars = pl.DataFrame({"ts": ts, "volume": [1.0, 1.0, 10.0, 10.0, 100.0, 100.0]})
    adv = average_daily_volume(bars, window_days=2)
    assert adv["adv"].to_list() == [None, 2.0, 11.0]
    got = adv_asof(bars, [datetime(2024, 1, 3, 18, tzinfo=UTC), datetime(2024, 1, 1, 1, tzinfo=UTC)], 2)
    assert got[0] == 11.0 and np.isnan(got[1])


def test_default_config_has_the_documented_limits() -> None:
    c = RiskConfig()
    assert (c.max_price_deviation, c.max_adv_fraction, c.risk_per_trade, c.vix_threshold) == (0.10, 0.10, 0.02, 30.0)
    assert c.breakers.portfolio.daily_loss_halt == 0.05 and c.trailing_stop is None
    with pytest.raises(Exception, match="frozen"):
        c.orders.max_price_deviation = 0.5  # type: ignore[misc]


def test_invalid_value_error_names_the_field() -> None:
    with pytest.raises(ConfigError) as e:
        load_risk_config({"orders": {"max_price_deviation": -0.1}, "market_filter": {"vix_treshold": 25}})
    text = str(e.value)
    assert "risk.orders.max_price_deviation" in text
    assert "risk.market_filter.vix_treshold" in text  # a typo is an error, not a silent default


def test_inconsistent_breaker_thresholds_are_refused() -> None:
    with pytest.raises(ConfigError, match="risk.breakers.portfolio"):
        load_risk_config({"breakers": {"portfolio": {"daily_loss_reduce": 0.1, "daily_loss_halt": 0.05}}})


def test_trailing_stop_config_from_yaml_like_dict() -> None:
    c = load_risk_config({"trailing_stop": {"kind": "atr", "atr_multiple": 2.5}})
    assert c.trailing_stop is not None and c.trailing_stop.atr_multiple == 2.5
