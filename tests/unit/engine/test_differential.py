"""Differential tests: the njit kernel, the streaming engine and the pure-Python reference agree exactly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.engine.conftest import random_market, random_orders, record_tuples, sigma_for, stream_orders
from trading_core.engine import Engine, FeeTier, MarketModel, simulate_orders, simulate_signals
from trading_core.engine import enums as E
from trading_core.engine.reference import reference_run

MODELS = {
    "plain": MarketModel(),
    "costs": MarketModel(spread_bps=4, slippage_bps=3, impact_coef=0.5, participation_rate=0.3,
                         fee_tiers=(FeeTier(0, 10, 20), FeeTier(2_000, 5, 12), FeeTier(5_000, 0, 8))),
    "venue": MarketModel(tick_size=0.01, lot_size=0.1, min_notional=50, max_orders_per_interval=3,
                         rate_interval_bars=2, reject_prob=0.1, touch_fill_prob=0.5, allow_short=True,
                         short_margin=0.5, borrow_rate_annual=0.2),
    "latency": MarketModel(latency_kind="exponential", latency_a=0, latency_b=1.5, participation_rate=0.5,
                           allow_short=True, max_open_orders=6),
}




def _check_orders(seed: int, model_name: str, T: int = 40, S: int = 2, P: int = 3, n: int = 60) -> None:
    model = MODELS[model_name]
    ts, bars = random_market(seed, T, S)
    ords = random_orders(seed, T, S, P, n, bars)
    res = simulate_orders(ts, *(bars[:, :, i] for i in range(5)), orders=ords, n_portfolios=P, model=model,
                          cash=10_000.0, device="cpu", seed=seed)
    rf, re_, req, rcash = reference_run(ts, bars, model, n_portfolios=P, cash=10_000.0, seed=seed, orders=ords,
                                        sigma=sigma_for(model, bars))
    assert record_tuples(res.events) == re_
    assert record_tuples(res.fills) == rf
    np.testing.assert_array_equal(res.equity, req)
    np.testing.assert_array_equal(res.cash, rcash)


@pytest.mark.parametrize("model_name", sorted(MODELS))
@settings(max_examples=6, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10_000))
def test_kernel_matches_reference_on_random_order_streams(model_name: str, seed: int) -> None:
    _check_orders(seed, model_name)


@pytest.mark.slow
@pytest.mark.parametrize("model_name", sorted(MODELS))
@settings(max_examples=150, deadline=None, derandomize=True)
@given(seed=st.integers(0, 1_000_000))
def test_kernel_matches_reference_many_examples(model_name: str, seed: int) -> None:
    _check_orders(seed, model_name, T=80, n=150)


@pytest.mark.parametrize("fill_at", ["close", "next_open"])
@pytest.mark.parametrize("size_mode", ["all_in", "fixed", "risk"])
@settings(max_examples=4, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10_000), short=st.booleans())
def test_signals_match_reference(fill_at: str, size_mode: str, seed: int, short: bool) -> None:
    T, S, P = 60, 2, 3
    ts, bars = random_market(seed, T, S)
    g = np.random.default_rng(seed)
    ent, ex = g.random((T, P)) < 0.15, g.random((T, P)) < 0.15
    sym = np.arange(P) % S
    model = MarketModel(fill_at=fill_at, slippage_bps=5, fee_tiers=(FeeTier(0, 10, 10),))
    size = 3.0 if size_mode == "fixed" else 0.5
    res = simulate_signals(ts, *(bars[:, :, i] for i in range(5)), entries=ent, exits=ex, symbol_of=sym,
                           model=model, size_mode=size_mode, size=size, short=short, device="cpu")
    sm = {"all_in": E.SizeMode.ALL_IN, "fixed": E.SizeMode.QTY, "risk": E.SizeMode.RISK}[size_mode]
    rf, re_, req, rcash = reference_run(ts, bars, model, n_portfolios=P, entries=ent, exits=ex, symbol_of=sym,
                                        size_mode=sm, size=size, allow_short=short)
    assert record_tuples(res.fills) == rf
    assert record_tuples(res.events) == re_
    np.testing.assert_array_equal(res.equity, req)


@pytest.mark.parametrize("model_name", ["costs", "venue", "latency"])
def test_batch_and_streaming_give_identical_ledgers(model_name: str) -> None:
    model = MODELS[model_name]
    T, S, P, seed = 40, 2, 3, 7
    ts, bars = random_market(seed, T, S)
    ords = random_orders(seed, T, S, P, 60, bars)
    batch = simulate_orders(ts, *(bars[:, :, i] for i in range(5)), orders=ords, n_portfolios=P, model=model,
                            cash=10_000.0, device="cpu", seed=seed)
    eng = Engine(P, S, model, cash=10_000.0, seed=seed, bar_ms=float(ts[1] - ts[0]))
    f, equity = stream_orders(eng, ts, bars, ords)
    assert record_tuples(f) == record_tuples(batch.fills)
    ev = eng.all_events()
    ev = ev[np.argsort(ev["portfolio"], kind="stable")]
    assert record_tuples(ev) == record_tuples(batch.events)
    np.testing.assert_array_equal(equity, batch.equity)


@pytest.mark.parametrize("fill_at", ["close", "next_open"])
def test_signals_batch_and_streaming_parity(fill_at: str) -> None:
    T, S, P = 80, 2, 4
    ts, bars = random_market(3, T, S)
    g = np.random.default_rng(3)
    ent, ex = g.random((T, P)) < 0.1, g.random((T, P)) < 0.1
    sym = np.arange(P) % S
    model = MarketModel(fill_at=fill_at, slippage_bps=5)
    batch = simulate_signals(ts, *(bars[:, :, i] for i in range(5)), entries=ent, exits=ex, symbol_of=sym,
                             model=model, device="cpu")
    eng = Engine(P, S, model, bar_ms=float(ts[1] - ts[0]))
    eng.set_signals(sym)
    fills, eq = [], []
    for t in range(T):
        fills.append(eng.step(int(ts[t]), *(bars[t, :, i] for i in range(5)), entries=ent[t], exits=ex[t]))
        eq.append(eng.equity)
    f = np.concatenate(fills)
    f = f[np.argsort(f["portfolio"], kind="stable")]
    assert record_tuples(f) == record_tuples(batch.fills)
    np.testing.assert_array_equal(np.array(eq), batch.equity)


def test_signal_fast_path_equals_general_path() -> None:
    """The fused signal fill (empty book, fill at close, no latency) gives the same bits as the order-book path."""
    T, S, P = 200, 2, 5
    ts, bars = random_market(11, T, S)
    g = np.random.default_rng(11)
    ent, ex = g.random((T, P)) < 0.05, g.random((T, P)) < 0.05
    sym = np.arange(P) % S
    m = MarketModel(fill_at="close", slippage_bps=5)
    fast = simulate_signals(ts, *(bars[:, :, i] for i in range(5)), entries=ent, exits=ex, symbol_of=sym, model=m,
                            size_mode="risk", size=0.3, device="cpu")
    assert fast.meta["signal_fast_path"]
    # a fixed latency of 0 bars disables the fused fill (orders go through the book), nothing else changes
    m2 = m.replace(latency_kind="fixed", latency_a=0.0)
    slow = simulate_signals(ts, *(bars[:, :, i] for i in range(5)), entries=ent, exits=ex, symbol_of=sym, model=m2,
                            size_mode="risk", size=0.3, device="cpu")
    assert not slow.meta["signal_fast_path"]
    assert record_tuples(fast.fills) == record_tuples(slow.fills)
    assert record_tuples(fast.events) == record_tuples(slow.events)
    np.testing.assert_array_equal(fast.equity, slow.equity)
    np.testing.assert_array_equal(fast.cash, slow.cash)
    np.testing.assert_array_equal(fast.position, slow.position)


def test_same_seed_same_result_and_seed_matters() -> None:
    model = MODELS["venue"]
    ts, bars = random_market(5, 40, 2)
    ords = random_orders(5, 40, 2, 3, 80, bars)
    run = lambda seed: simulate_orders(ts, *(bars[:, :, i] for i in range(5)), orders=ords, n_portfolios=3,  # noqa: E731
                                       model=model, device="cpu", seed=seed, cash=10_000.0)
    a, b, c = run(1), run(1), run(2)
    assert record_tuples(a.fills) == record_tuples(b.fills)
    assert record_tuples(a.events) == record_tuples(b.events)
    assert record_tuples(a.events) != record_tuples(c.events)
