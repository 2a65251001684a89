"""The market breaker does not flap: a tripped rule holds down to its recover level, for a dwell."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from trading_core.risk import BreakerConfig
from trading_core.risk.breakers import CircuitBreakers
from trading_core.risk.config import MarketBreakerConfig

T0 = datetime(2020, 3, 2, tzinfo=UTC)


def _states(cb: CircuitBreakers, ranks: list[float], step: timedelta) -> list[str]:
    out = []
    for i, p in enumerate(ranks):
        cb.update_market(T0 + i * step, vol_percentile=p)
        out.append(cb.get("market", "market").state_name)
    return out


def test_a_volatility_trip_holds_until_the_rank_falls_to_the_recover_level() -> None:
    cb = CircuitBreakers(BreakerConfig(market=MarketBreakerConfig(cooldown_s=0)))
    got = _states(cb, [0.90, 0.96, 0.94, 0.90, 0.86, 0.85, 0.84], timedelta(days=1))
    assert got == ["active", "reduce_only", "reduce_only", "reduce_only", "reduce_only", "active", "active"]


def test_without_hysteresis_the_same_path_flaps() -> None:
    cb = CircuitBreakers(BreakerConfig(market=MarketBreakerConfig(cooldown_s=0, vol_percentile_recover=None)))
    got = _states(cb, [0.96, 0.94, 0.96, 0.94], timedelta(days=1))
    assert got == ["reduce_only", "active", "reduce_only", "active"]


def test_the_market_breaker_dwells_a_day_before_stepping_back() -> None:
    cb = CircuitBreakers(BreakerConfig())  # default: one-day dwell
    got = _states(cb, [0.96, 0.50, 0.50, 0.50, 0.50, 0.50], timedelta(hours=6))
    assert got == ["reduce_only", "reduce_only", "reduce_only", "reduce_only", "active", "active"]


def test_vix_trip_holds_down_to_vix_recover() -> None:
    cb = CircuitBreakers(BreakerConfig(market=MarketBreakerConfig(cooldown_s=0)))
    seen = []
    for i, v in enumerate([41.0, 38.0, 36.0, 35.0]):
        cb.update_market(T0 + timedelta(days=i), vix=v)
        seen.append(cb.get("market", "market").state_name)
    assert seen == ["reduce_only", "reduce_only", "reduce_only", "active"]


def test_recover_levels_above_the_trip_level_are_refused() -> None:
    with pytest.raises(ValueError, match="vol_percentile_recover"):
        MarketBreakerConfig(vol_percentile_recover=0.97)
