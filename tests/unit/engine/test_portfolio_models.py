"""One market model per portfolio in one kernel call (``PortfolioModels``): each portfolio trades
exactly as it would under its own model, in the compiled kernel, the streaming engine and the
reference; a shared model is the same thing with one row."""

from __future__ import annotations

import numpy as np
import pytest

from tests.unit.engine.conftest import (
    CUDA_MODEL,
    random_market,
    random_orders,
    record_tuples,
    sigma_for,
    stream_orders,
)
from trading_core.engine import (
    Engine,
    FeeTier,
    MarketModel,
    PortfolioModels,
    simulate_orders,
    simulate_signals,
)
from trading_core.engine.reference import reference_run

P = 4
# CUDA_MODEL's venue rules, each portfolio with its own costs, probabilities and latency
OWN = [CUDA_MODEL.replace(slippage_bps=s, spread_bps=sp, impact_coef=im, touch_fill_prob=tf, reject_prob=rj,
                          latency_a=la, latency_b=lb, borrow_rate_annual=br,
                          fee_tiers=(FeeTier(0, mk, tk), FeeTier(2_000, mk / 2, tk / 2)))
       for s, sp, im, tf, rj, la, lb, br, mk, tk in [(0, 0, 0, 1.0, 0.0, 0, 0, 0, 0, 0),
                                                    (3, 4, 0.5, 0.5, 0.1, 0, 2, 0.2, 10, 20),
                                                    (25, 10, 1.0, 0.2, 0.3, 1, 3, 0.5, -2, 40),
                                                    (8, 0, 0, 0.9, 0.0, 2, 2, 0, 5, 5)]]


def _per_portfolio_columns(res, p: int) -> tuple[list[tuple], list[tuple], np.ndarray]:
    return (record_tuples(res.fills[res.fills["portfolio"] == p]), record_tuples(res.events[res.events["portfolio"] == p]),
            res.equity[:, p])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_portfolio_trades_under_its_own_model_exactly_as_under_that_model_shared(seed: int) -> None:
    ts, bars = random_market(seed, 40, 2)
    ords = random_orders(seed, 40, 2, P, 80, bars)
    args = (ts, *(bars[:, :, i] for i in range(5)))
    mixed = simulate_orders(*args, orders=ords, n_portfolios=P, model=OWN, cash=1e4, device="cpu", seed=seed)
    for p, m in enumerate(OWN):
        alone = simulate_orders(*args, orders=ords, n_portfolios=P, model=m, cash=1e4, device="cpu", seed=seed)
        got, want = _per_portfolio_columns(mixed, p), _per_portfolio_columns(alone, p)
        assert got[0] == want[0] and got[1] == want[1]
        np.testing.assert_array_equal(got[2], want[2])
    finals = mixed.final_equity
    assert np.unique(finals).size == P  # the models really differ in what they cost


def test_signal_portfolios_with_their_own_models_match_the_reference() -> None:
    ts, bars = random_market(7, 60, 2)
    g = np.random.default_rng(7)
    ent, ex = g.random((60, P)) < 0.15, g.random((60, P)) < 0.15
    sym = np.arange(P) % 2
    res = simulate_signals(ts, *(bars[:, :, i] for i in range(5)), entries=ent, exits=ex, symbol_of=sym,
                           model=OWN, device="cpu", seed=7, short=True)

    rf, re_, req, _ = reference_run(ts, bars, OWN, n_portfolios=P, seed=7, entries=ent, exits=ex, symbol_of=sym,
                                    allow_short=True, sigma=sigma_for(OWN[1], bars))
    assert record_tuples(res.fills) == rf
    assert record_tuples(res.events) == re_
    np.testing.assert_array_equal(res.equity, req)


def test_order_portfolios_with_their_own_models_match_the_reference_and_the_streaming_engine() -> None:

    ts, bars = random_market(11, 40, 2)
    ords = random_orders(11, 40, 2, P, 80, bars)
    res = simulate_orders(ts, *(bars[:, :, i] for i in range(5)), orders=ords, n_portfolios=P, model=OWN,
                          cash=1e4, device="cpu", seed=11)
    rf, re_, req, _ = reference_run(ts, bars, OWN, n_portfolios=P, cash=1e4, seed=11, orders=ords,
                                    sigma=sigma_for(OWN[1], bars))
    assert record_tuples(res.fills) == rf and record_tuples(res.events) == re_
    np.testing.assert_array_equal(res.equity, req)
    eng = Engine(P, 2, OWN, cash=1e4, seed=11, bar_ms=float(ts[1] - ts[0]))
    fills, equity = stream_orders(eng, ts, bars, ords)
    assert record_tuples(fills) == record_tuples(res.fills)
    np.testing.assert_array_equal(equity, res.equity)


def test_identical_models_collapse_to_the_shared_model_and_its_hash() -> None:
    m = MarketModel(slippage_bps=2)
    same = PortfolioModels.of([m, m, m], 3)
    assert same.shared and same.execution_model_hash() == m.execution_model_hash()
    own = PortfolioModels.of([m, m.replace(slippage_bps=3), m], 3)
    swapped = PortfolioModels.of([m.replace(slippage_bps=3), m, m], 3)
    assert not own.shared and own.execution_model_hash() not in (m.execution_model_hash(),
                                                                 swapped.execution_model_hash())
    mp, _, tiers = same.arrays(3, 60_000.0)
    assert mp.shape[0] == 3 and mp.strides[0] == 0 and tiers.strides[0] == 0  # one row, broadcast


@pytest.mark.parametrize("change, field", [({"tick_size": 0.5}, "tick_size"), ({"fill_at": "close"}, "fill_at"),
                                           ({"latency_kind": "fixed"}, "latency_kind"),
                                           ({"fee_tiers": (FeeTier(0, 1, 1),)}, "fee_tiers")])
def test_models_that_differ_in_venue_rules_are_refused_by_name(change: dict, field: str) -> None:
    with pytest.raises(ValueError, match=f"portfolio 1 differs from portfolio 0 in .*{field}"):
        PortfolioModels.of([CUDA_MODEL, CUDA_MODEL.replace(**change)], 2)


def test_a_model_list_of_the_wrong_length_is_refused() -> None:
    ts, bars = random_market(0, 10, 1)
    with pytest.raises(ValueError, match="2 market models for 3 portfolios"):
        simulate_signals(ts, *(bars[:, :, i] for i in range(5)), entries=np.zeros((10, 3), bool),
                         exits=np.zeros((10, 3), bool), model=[MarketModel(), MarketModel()])


def _random_models(seed: int) -> list[MarketModel]:
    g = np.random.default_rng(seed)
    return [CUDA_MODEL.replace(slippage_bps=float(g.uniform(0, 30)), spread_bps=float(g.uniform(0, 10)),
                               impact_coef=float(g.choice([0.0, g.uniform(0, 1)])),
                               touch_fill_prob=float(g.uniform(0.2, 1)), reject_prob=float(g.uniform(0, 0.3)),
                               latency_a=float(g.uniform(0, 1)), latency_b=float(g.uniform(1, 3)),
                               borrow_rate_annual=float(g.uniform(0, 0.5)),
                               fee_tiers=(FeeTier(0, float(g.uniform(-2, 10)), float(g.uniform(0, 30))),
                                          FeeTier(2_000, float(g.uniform(-2, 5)), float(g.uniform(0, 15)))))
            for _ in range(P)]


@pytest.mark.parametrize("seed", range(6))
def test_random_per_portfolio_models_match_the_reference_exactly(seed: int) -> None:
    models = _random_models(seed)
    ts, bars = random_market(100 + seed, 40, 2)
    ords = random_orders(100 + seed, 40, 2, P, 80, bars)
    res = simulate_orders(ts, *(bars[:, :, i] for i in range(5)), orders=ords, n_portfolios=P, model=models,
                          cash=1e4, device="cpu", seed=seed)
    rf, re_, req, rcash = reference_run(ts, bars, models, n_portfolios=P, cash=1e4, seed=seed, orders=ords,
                                        sigma=sigma_for(CUDA_MODEL, bars))
    assert record_tuples(res.fills) == rf and record_tuples(res.events) == re_
    np.testing.assert_array_equal(res.equity, req)
    np.testing.assert_array_equal(res.cash, rcash)


def test_bar_length_is_the_median_step_with_or_without_gaps() -> None:
    from trading_core.engine.state import bar_ms_of

    assert bar_ms_of(np.arange(1000, dtype=np.int64) * 60_000) == 60_000.0  # regular: the one-pass path
    gaps = np.array([0, 60_000, 120_000, 300_000, 360_000, 420_000], np.int64)  # one 3-minute gap
    assert bar_ms_of(gaps) == float(np.median(np.diff(gaps))) == 60_000.0
    assert bar_ms_of(np.array([0, 10, 30, 60], np.int64)) == 20.0
    assert bar_ms_of(np.array([5], np.int64)) == 60_000.0  # a single bar: one minute
    # one odd step anywhere -- in the first block of the branch-free check, a later one, the last step
    for at in (1, 4095, 4096, 4097, 9999):
        ts = np.arange(10_000, dtype=np.int64) * 60_000
        ts[at:] += 60_000
        assert bar_ms_of(ts) == float(np.median(np.diff(ts))), at
    ts = np.arange(10_000, dtype=np.int64) * 60_000
    ts[5000] += 1  # a step off by 1 ms, then one 1 ms short: not regular, median unchanged
    assert bar_ms_of(ts) == 60_000.0


def test_record_buffers_are_sized_by_the_busiest_portfolios_signals() -> None:
    from trading_core.engine.cpu import max_signals_nb

    g = np.random.default_rng(3)
    for P in (1, 3):
        e, x = g.random((5_000, P)) < 0.05, g.random((5_000, P)) < 0.03
        assert max_signals_nb(e, x) == int((e.sum(axis=0) + x.sum(axis=0)).max()), P


def test_record_buffers_are_zeroed_writable_and_shaped() -> None:
    from trading_core.engine.state import record_buffer

    buf = record_buffer((3, 5, 4), np.int64)
    assert buf.shape == (3, 5, 4) and buf.flags.c_contiguous and buf.flags.writeable and not buf.any()
    buf[2, 4, 3] = 7
    assert buf.sum() == 7
    assert record_buffer((0, 5, 4), np.float64).shape == (0, 5, 4)
