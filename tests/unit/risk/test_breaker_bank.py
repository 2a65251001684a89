"""The vectorised account bank (``CircuitBreakers.update_accounts``) equals the scalar rules.

Every account's strategy and portfolio breaker, fed the same equity/streak/exposure path through
the bank and through ``update_strategy``/``update_portfolio`` one by one, ends in the same states,
transitions, memos, cooldowns and ``updated_at`` -- including trips, latches, recoveries, strategy
rebases and a manual reset in the middle.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime

import numpy as np
import pytest

from trading_core.risk import BreakerConfig
from trading_core.risk.breakers import CircuitBreakers
from trading_core.risk.config import PortfolioBreakerConfig, StrategyBreakerConfig

CFG = BreakerConfig(
    strategy=StrategyBreakerConfig(drawdown_reduce=0.05, drawdown_halt=0.12, losing_streak_reduce=2,
                                   losing_streak_halt=4, cooldown_s=7_200),
    portfolio=PortfolioBreakerConfig(daily_loss_reduce=0.02, daily_loss_halt=0.04, max_drawdown_halt=0.3,
                                     max_gross_exposure=1.5, max_concentration=0.9, cooldown_s=3_600))


def _paths(seed: int, n: int, T: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    eq = 1e5 * np.exp(np.cumsum(rng.normal(0, 0.012, (T, n)), axis=0))
    streak = np.cumsum(rng.random((T, n)) < 0.3, axis=0) * (rng.random((T, n)) < 0.8)  # resets now and then
    gross = eq * rng.uniform(0.0, 1.8, (T, n))
    largest = gross * rng.uniform(0.3, 1.0, (T, n))
    return eq, streak.astype(np.int64), gross, largest


def _norm(cb: CircuitBreakers) -> list[dict]:
    return [asdict(s) for s in cb.states()]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_account_bank_equals_the_scalar_breakers_on_random_books(seed: int) -> None:
    n, T = 7, 400
    eq, streak, gross, largest = _paths(seed, n, T)
    bank, scalar = CircuitBreakers(CFG), CircuitBreakers(CFG)
    s_scopes, p_scopes = [f"s#{a}" for a in range(n)], [str(a) for a in range(n)]
    t0 = 1_600_000_000_000
    for t in range(T):
        ms = t0 + t * 1_800_000  # half-hourly: several bars a day, day rolls, cooldowns expire
        when = datetime.fromtimestamp(ms / 1000.0, tz=UTC)
        got = bank.update_accounts(s_scopes, p_scopes, ms, equity=eq[t], losing_streak=streak[t],
                                   gross_exposure=gross[t], largest_position=largest[t])
        for a in range(n):
            scalar.update_strategy(s_scopes[a], when, equity=float(eq[t, a]), losing_streak=int(streak[t, a]))
            scalar.update_portfolio(p_scopes[a], when, equity=float(eq[t, a]), gross_exposure=float(gross[t, a]),
                                    largest_position=float(largest[t, a]))
        want = [max(scalar.state_of("strategy", s_scopes[a]), scalar.state_of("portfolio", p_scopes[a]))
                for a in range(n)]
        assert got.tolist() == want, f"bar {t}"
        if t == 250:  # an operator resets every halted portfolio breaker on both
            for a in range(n):
                if scalar.state_of("portfolio", p_scopes[a]) != 0:
                    scalar.reset("portfolio", p_scopes[a], when, actor="ops")
                    bank.reset("portfolio", p_scopes[a], when, actor="ops")
        if t % 97 == 0:
            assert _norm(bank) == _norm(scalar), f"bar {t}"
    assert [asdict(e) for e in bank.drain_events()] == [asdict(e) for e in scalar.drain_events()]
    assert _norm(bank) == _norm(scalar)


def test_account_bank_state_round_trips_through_state_dict() -> None:
    n, T = 4, 200
    eq, streak, gross, largest = _paths(5, n, T)
    a, b = CircuitBreakers(CFG), CircuitBreakers(CFG)
    s_scopes, p_scopes = [f"s#{i}" for i in range(n)], [str(i) for i in range(n)]
    for t in range(T):
        ms = 1_600_000_000_000 + t * 3_600_000
        if t == 120:
            b.load_state_dict(a.state_dict())
            a.drain_events()
        for cb in (a, b) if t >= 120 else (a,):
            cb.update_accounts(s_scopes, p_scopes, ms, equity=eq[t], losing_streak=streak[t],
                               gross_exposure=gross[t], largest_position=largest[t])
    assert _norm(a) == _norm(b)
    assert [asdict(e) for e in a.drain_events()] == [asdict(e) for e in b.drain_events()]
