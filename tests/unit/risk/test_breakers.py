"""Circuit breakers: the state table, each level's rules, cool-downs, latches, persistence."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from risk_helpers import RecordingEngine, pass_to_engine

from trading_core.risk import (
    STATE_TABLE,
    BreakerConfig,
    BreakerState,
    CircuitBreakers,
    RiskReason,
    TradingState,
    transition,
    verify_orders,
)
from trading_core.risk.breakers import InvalidStateTransition
from trading_core.warehouse import Warehouse
from trading_core.warehouse.risk import load_breaker_states, read_breaker_events, save_breakers

A, R, H = TradingState.ACTIVE, TradingState.REDUCE_ONLY, TradingState.HALTED
T0 = datetime(2024, 1, 2, 12, tzinfo=UTC)
DAY = timedelta(days=1)


def test_state_table_allows_only_the_documented_transitions() -> None:
    assert transition(A, "trip_halt") == H and transition(H, "recover") == R and transition(R, "recover") == A
    assert len(STATE_TABLE) == 7
    for bad in [(A, "recover"), (A, "reset"), (H, "trip_reduce"), (R, "trip_reduce"), (H, "trip_halt")]:
        with pytest.raises(InvalidStateTransition):
            transition(*bad)


def test_strategy_drawdown_of_12pct_puts_strategy_in_reduce_only_and_blocks_its_entries(
        engine: RecordingEngine) -> None:
    # Arrange
    b = CircuitBreakers()
    b.update_strategy("ma", T0, equity=100.0, losing_streak=0)
    # Act
    state = b.update_strategy("ma", T0 + timedelta(hours=1), equity=88.0, losing_streak=0)
    res = verify_orders(np.array([0]), np.array([0]), np.array([1.0]), np.array([10.0]),
                        last_price=np.array([10.0]), adv=np.array([1e6]), state=b.state_for(strategy="ma"))
    pass_to_engine(np.array([1.0]), res.allowed, engine)
    # Assert
    assert state == R and b.get("strategy", "ma").reason == "strategy_drawdown"
    assert res.reason.tolist() == [RiskReason.REDUCE_ONLY]
    assert engine.received == []
    assert b.state_for(strategy="other") == A  # another strategy is not affected


def test_strategy_drawdown_of_20pct_halts() -> None:
    b = CircuitBreakers()
    b.update_strategy("ma", T0, equity=100.0, losing_streak=0)
    assert b.update_strategy("ma", T0, equity=79.0, losing_streak=0) == H


def test_strategy_losing_streak_reduces_at_5_and_halts_at_8() -> None:
    b = CircuitBreakers()
    assert b.update_strategy("ma", T0, equity=100.0, losing_streak=4) == A
    assert b.update_strategy("ma", T0, equity=100.0, losing_streak=5) == R
    assert b.update_strategy("ma", T0, equity=100.0, losing_streak=8) == H
    ev = b.drain_events()
    assert [(e.event, e.rule) for e in ev] == [("trip_reduce", "strategy_losing_streak"),
                                               ("trip_halt", "strategy_losing_streak")]
    assert ev[0].metrics["losing_streak"] == 5


def test_halted_strategy_recovers_one_step_per_cooldown_and_rebases() -> None:
    b = CircuitBreakers()
    b.update_strategy("ma", T0, equity=100.0, losing_streak=0)
    b.update_strategy("ma", T0, equity=75.0, losing_streak=0)  # halted
    assert b.update_strategy("ma", T0 + DAY / 2, equity=75.0, losing_streak=0) == H  # still cooling down
    assert b.update_strategy("ma", T0 + DAY, equity=75.0, losing_streak=0) == R  # one step only
    assert b.update_strategy("ma", T0 + DAY * 1.5, equity=75.0, losing_streak=0) == R
    assert b.update_strategy("ma", T0 + DAY * 2, equity=75.0, losing_streak=0) == A
    # drawdown now counts from 75: a 10 % loss from there trips again
    assert b.update_strategy("ma", T0 + DAY * 3, equity=67.0, losing_streak=0) == R
    assert [e.event for e in b.drain_events()] == ["trip_halt", "recover", "recover", "trip_reduce"]


def test_portfolio_daily_loss_halts_for_the_day_and_resets_with_a_new_day() -> None:
    b = CircuitBreakers()
    b.update_portfolio("p0", T0, equity=100.0, gross_exposure=50.0, largest_position=50.0)
    assert b.update_portfolio("p0", T0 + timedelta(hours=1), equity=96.0, gross_exposure=50,
                              largest_position=50) == R  # 4 % >= 3 %
    assert b.update_portfolio("p0", T0 + timedelta(hours=2), equity=94.9, gross_exposure=50,
                              largest_position=50) == H  # 5.1 % >= 5 %
    # next day, after the cool-down, the loss counts from the new day's first equity
    assert b.update_portfolio("p0", T0 + DAY * 1.1, equity=94.9, gross_exposure=50, largest_position=50) == R
    assert b.update_portfolio("p0", T0 + DAY * 2.2, equity=94.9, gross_exposure=50, largest_position=50) == A


def test_portfolio_max_drawdown_latches_until_a_manual_reset() -> None:
    b = CircuitBreakers()
    b.update_portfolio("p0", T0, equity=100.0, gross_exposure=0, largest_position=0)
    assert b.update_portfolio("p0", T0 + DAY * 3, equity=74.0, gross_exposure=0, largest_position=0) == H
    st = b.get("portfolio", "p0")
    assert st.latched and st.reason == "portfolio_max_drawdown"
    # weeks later, still latched although the daily loss is gone
    assert b.update_portfolio("p0", T0 + DAY * 30, equity=80.0, gross_exposure=0, largest_position=0) == H
    assert b.reset("portfolio", "p0", T0 + DAY * 31, actor="risk-officer", note="reviewed") == A
    assert b.update_portfolio("p0", T0 + DAY * 32, equity=80.0, gross_exposure=0, largest_position=0) == A
    assert b.drain_events()[-1].actor == "risk-officer"


def test_reset_of_an_active_breaker_is_refused() -> None:
    with pytest.raises(InvalidStateTransition):
        CircuitBreakers().reset("system", "system", T0, actor="ops")


def test_portfolio_gross_exposure_and_concentration_put_the_book_in_reduce_only() -> None:
    b = CircuitBreakers()
    assert b.update_portfolio("p0", T0, equity=100.0, gross_exposure=210.0, largest_position=90.0) == R
    assert b.get("portfolio", "p0").reason == "portfolio_gross_exposure"
    b2 = CircuitBreakers()
    assert b2.update_portfolio("p0", T0, equity=100.0, gross_exposure=120.0, largest_position=120.0) == R
    assert b2.get("portfolio", "p0").reason == "portfolio_concentration"
    assert b2.state_for(portfolio="p0") == R and b2.state_for(portfolio="p1") == A


def test_system_error_rate_and_stale_data_halt_everything() -> None:
    b = CircuitBreakers()
    assert b.update_system(T0, requests=9, errors=9, data_age_bars=1) == A  # too few requests to judge
    assert b.update_system(T0, requests=20, errors=6, data_age_bars=1) == H
    assert b.state_for(strategy="any", portfolio="any") == H
    b2 = CircuitBreakers()
    assert b2.update_system(T0, requests=0, errors=0, data_age_bars=3.5) == H
    assert b2.get("system", "system").reason == "system_data_stale"
    # 5 minutes of health: halted -> reduce_only; 5 more: active
    assert b2.update_system(T0 + timedelta(minutes=5), requests=0, errors=0, data_age_bars=0.5) == R
    assert b2.update_system(T0 + timedelta(minutes=10), requests=0, errors=0, data_age_bars=0.5) == A


def test_market_vix_and_volatility_percentile_set_reduce_only() -> None:
    b = CircuitBreakers()
    assert b.update_market(T0 - DAY, vix=31.0) == A  # the market filter's level, not the breaker's
    assert b.update_market(T0, vix=41.0) == R
    assert b.update_market(T0 + DAY, vix=20.0, vol_percentile=0.5) == A
    assert b.update_market(T0 + DAY * 2, vix=20.0, vol_percentile=0.97) == R
    assert b.get("market", "market").reason == "market_vol_percentile"


def test_daily_loss_on_daily_bars_counts_from_the_previous_close() -> None:
    # one update per UTC day (daily bars): the day opens with yesterday's last equity
    b = CircuitBreakers()
    assert b.update_portfolio("p0", T0, equity=100.0, gross_exposure=0, largest_position=0) == A
    assert b.update_portfolio("p0", T0 + DAY, equity=96.0, gross_exposure=0, largest_position=0) == R
    assert b.get("portfolio", "p0").reason == "portfolio_daily_loss"


def test_market_vix_halt_is_optional() -> None:
    cfg = BreakerConfig.model_validate({"market": {"vix_halt": 60.0}})
    assert CircuitBreakers(cfg).update_market(T0, vix=65.0) == H
    assert CircuitBreakers().update_market(T0, vix=65.0) == R


def test_a_rule_that_keeps_firing_restarts_the_cooldown() -> None:
    b = CircuitBreakers()
    b.update_system(T0, requests=0, errors=0, data_age_bars=10)
    b.update_system(T0 + timedelta(minutes=4), requests=0, errors=0, data_age_bars=10)
    assert b.update_system(T0 + timedelta(minutes=6), requests=0, errors=0, data_age_bars=0) == H
    assert b.update_system(T0 + timedelta(minutes=9), requests=0, errors=0, data_age_bars=0) == R


def test_disabled_breakers_never_restrict_orders() -> None:
    b = CircuitBreakers(BreakerConfig(enabled=False))
    b.update_market(T0, vix=80.0)
    assert b.state_for() == A


def test_breaker_states_and_events_round_trip_through_the_warehouse(warehouse: Warehouse) -> None:
    # Arrange: trip a latched portfolio halt and a strategy reduce
    b = CircuitBreakers()
    b.update_portfolio("p0", T0, equity=100.0, gross_exposure=0, largest_position=0)
    b.update_portfolio("p0", T0 + DAY, equity=70.0, gross_exposure=0, largest_position=0)
    b.update_strategy("ma", T0, equity=100.0, losing_streak=6)
    events = b.drain_events()
    # Act
    with warehouse.connect() as con:
        save_breakers(con, [s.to_row() for s in b.states()], [asdict(e) for e in events])
        save_breakers(con, [s.to_row() for s in b.states()], [asdict(e) for e in events])  # replay
    with warehouse.connect(read_only=True) as con:
        rows = load_breaker_states(con)
        stored_events = read_breaker_events(con)
    restored = CircuitBreakers(states=[BreakerState.from_row(r) for r in rows])
    # Assert
    assert {(r["level"], r["scope"], r["state"]) for r in rows} == {
        ("portfolio", "p0", "halted"), ("strategy", "ma", "reduce_only")}
    assert restored.get("portfolio", "p0") == b.get("portfolio", "p0")
    assert restored.get("strategy", "ma") == b.get("strategy", "ma")
    assert stored_events.height == 2  # the replay did not duplicate events
    assert stored_events["rule"].to_list() == ["strategy_losing_streak", "portfolio_max_drawdown"]
    # the restored breakers keep the latch: still halted a week later
    assert restored.update_portfolio("p0", T0 + DAY * 8, equity=90.0, gross_exposure=0, largest_position=0) == H
