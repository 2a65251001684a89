"""A union calendar (24/7 crypto + weekday equity in one portfolio): the equity's weekend rows are
NaN ("closed"). The compiled kernel, the streaming engine and the pure-Python reference agree
exactly there; nothing of a closed symbol activates, fills, triggers or signals on a closed bar,
it is valued at its last close, and equity never becomes NaN."""

from __future__ import annotations

import numpy as np
import pytest

from tests.unit.engine.conftest import order, orders, random_orders, record_tuples, sigma_for, stream_orders
from trading_core.engine import Engine, FeeTier, MarketModel, simulate_orders, simulate_signals
from trading_core.engine import enums as E
from trading_core.engine.reference import reference_run

DAY = 86_400_000
THU = 1_483_574_400_000  # 2017-01-05, a Thursday (00:00 UTC)

MODELS = {
    "plain": MarketModel(),
    "costs": MarketModel(spread_bps=4, slippage_bps=3, impact_coef=0.5, participation_rate=0.3,
                         fee_tiers=(FeeTier(0, 10, 20), FeeTier(2_000, 5, 12))),
    "venue": MarketModel(tick_size=0.01, reject_prob=0.1, touch_fill_prob=0.5, allow_short=True,
                         borrow_rate_annual=0.2, max_open_orders=8),
    "latency": MarketModel(latency_kind="uniform", latency_a=0, latency_b=2, allow_short=True),
}


def mixed_market(seed: int, T: int):
    """Daily bars from a Thursday: symbol 0 trades every day (crypto), symbol 1 only on weekdays
    (its weekend rows NaN in every field, as ``aligned_bars`` leaves them). Returns ts, bars (T, 2, 5),
    the full (unclosed) bars, and the (T,) mask of symbol 1's closed rows."""
    g = np.random.default_rng(seed)
    c = 100.0 * np.exp(np.cumsum(g.normal(0, 0.015, (T, 2)), 0))
    o = np.vstack([c[:1], c[:-1]]) * np.exp(g.normal(0, 0.004, (T, 2)))
    h = np.maximum(o, c) * (1 + g.uniform(0, 0.01, (T, 2)))
    lo = np.minimum(o, c) * (1 - g.uniform(0, 0.01, (T, 2)))
    o, h, lo, c = (np.round(x, 2) for x in (o, h, lo, c))
    h, lo = np.maximum.reduce([h, o, c]), np.minimum.reduce([lo, o, c])
    full = np.stack([o, h, lo, c, g.uniform(50, 500, (T, 2))], axis=2)
    ts = THU + np.arange(T, dtype=np.int64) * DAY
    weekday = (ts // DAY + 3) % 7  # 0 = Monday
    closed = weekday >= 5
    bars = full.copy()
    bars[closed, 1, :] = np.nan
    return ts, bars, full, closed




def _assert_nothing_on_closed(fills, events, closed) -> None:
    on_closed = closed[fills["bar"]] & (fills["symbol"] == 1)
    assert not on_closed.any(), "a fill of the closed symbol on a closed bar"
    ev = events[(events["symbol"] == 1) & closed[events["bar"]]]
    assert not np.isin(ev["kind"], [E.EventKind.FILLED, E.EventKind.TRIGGERED]).any()


@pytest.mark.parametrize("model_name", sorted(MODELS))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_orders_on_a_union_calendar_match_reference_and_never_fill_closed(model_name: str, seed: int) -> None:
    model = MODELS[model_name]
    T, P = 45, 3
    ts, bars, full, closed = mixed_market(seed, T)
    ords = random_orders(seed, T, 2, P, 70, full)  # prices from real closes; many rest over weekends
    res = simulate_orders(ts, *(bars[:, :, i] for i in range(5)), orders=ords, n_portfolios=P, model=model,
                          cash=10_000.0, device="cpu", seed=seed)
    rf, rev, req, rcash = reference_run(ts, bars, model, n_portfolios=P, cash=10_000.0, seed=seed, orders=ords,
                                        sigma=sigma_for(model, bars))
    assert record_tuples(res.fills) == rf
    assert record_tuples(res.events) == rev
    np.testing.assert_array_equal(res.equity, req)
    np.testing.assert_array_equal(res.cash, rcash)
    assert np.isfinite(res.equity).all()
    assert (res.fills["symbol"] == 1).any(), "the weekday symbol must trade at all for the test to mean much"
    _assert_nothing_on_closed(res.fills, res.events, closed)
    # valuation on a closed bar: cash + positions at the last traded close
    last = bars[:, :, 3].copy()  # NaN on symbol 1's closed rows
    for t in range(1, T):
        last[t] = np.where(np.isnan(last[t]), last[t - 1], last[t])
    val = res.cash + (res.position * last[:, None, :]).sum(axis=2)  # position (T, P, S) for order streams
    np.testing.assert_allclose(res.equity, val, rtol=1e-12)


@pytest.mark.parametrize("model_name", sorted(MODELS))
def test_streaming_engine_equals_batch_on_closed_bars(model_name: str) -> None:
    model = MODELS[model_name]
    T, P, seed = 40, 3, 5
    ts, bars, full, _ = mixed_market(seed, T)
    ords = random_orders(seed, T, 2, P, 60, full)
    batch = simulate_orders(ts, *(bars[:, :, i] for i in range(5)), orders=ords, n_portfolios=P, model=model,
                            cash=10_000.0, device="cpu", seed=seed)
    eng = Engine(P, 2, model, cash=10_000.0, seed=seed, bar_ms=float(DAY))
    f, equity = stream_orders(eng, ts, bars, ords)
    assert record_tuples(f) == record_tuples(batch.fills)
    np.testing.assert_array_equal(equity, batch.equity)


def test_resting_limit_and_stop_wait_for_the_symbols_next_real_bar() -> None:
    """A buy limit and a sell stop on the weekday symbol placed on Friday: the weekend bars (NaN)
    neither activate nor fill them -- they fill on Monday -- and Saturday/Sunday equity is cash
    plus the position at Friday's close."""
    T = 6  # Thu Fri Sat Sun Mon Tue
    ts = THU + np.arange(T, dtype=np.int64) * DAY
    px = np.array([[100, 101, 99, 100], [100, 100, 99, 100], [np.nan] * 4, [np.nan] * 4,
                   [90, 91, 85, 88], [88, 89, 87, 88]], np.float64)
    btc = np.array([[10, 11, 9, 10]] * T, np.float64)
    o = np.stack([btc[:, 0], px[:, 0]], 1)
    h = np.stack([btc[:, 1], px[:, 1]], 1)
    lo = np.stack([btc[:, 2], px[:, 2]], 1)
    c = np.stack([btc[:, 3], px[:, 3]], 1)
    v = np.where(np.isnan(c), np.nan, 1e9)
    ords = orders(
        order(bar=0, symbol=1, type=E.OrderType.MARKET, side=E.Side.BUY, qty=10.0),  # long 10 from Thursday's open
        order(bar=1, symbol=1, type=E.OrderType.LIMIT, side=E.Side.BUY, qty=5.0, limit_price=95.0),
        order(bar=1, symbol=1, type=E.OrderType.STOP, side=E.Side.SELL, qty=2.0, stop_price=96.0),
    )
    model = MarketModel()
    res = simulate_orders(ts, o, h, lo, c, v, orders=ords, n_portfolios=1, model=model, cash=10_000.0, device="cpu")
    rf, rev, req, _ = reference_run(ts, np.stack([o, h, lo, c, v], axis=2), model, n_portfolios=1, cash=10_000.0,
                                    orders=ords)
    assert record_tuples(res.fills) == rf and record_tuples(res.events) == rev
    np.testing.assert_array_equal(res.equity, req)
    by_bar = {int(f["order_id"]): int(f["bar"]) for f in res.fills}
    assert sorted(by_bar.values()) == [0, 4, 4]  # the market buy on Thursday; limit and stop on Monday's gap
    assert np.isfinite(res.equity).all()
    fri_cash = float(res.cash[1, 0])
    np.testing.assert_array_equal(res.equity[2:4, 0], fri_cash + 10.0 * 100.0)  # marked at Friday's close


@pytest.mark.parametrize("fill_at", ["close", "next_open"])
@pytest.mark.parametrize("seed", [0, 4])
def test_signals_on_closed_bars_are_ignored_and_match_reference(fill_at: str, seed: int) -> None:
    T, P = 60, 4
    ts, bars, _, closed = mixed_market(seed, T)
    g = np.random.default_rng(seed)
    ent, ex = g.random((T, P)) < 0.25, g.random((T, P)) < 0.25
    ent[closed, 1::2] = True  # every weekend bar signals an entry on the weekday symbol
    ex[closed, 1::2] = False
    sym = np.arange(P) % 2
    model = MarketModel(fill_at=fill_at, slippage_bps=5, fee_tiers=(FeeTier(0, 10, 10),))
    res = simulate_signals(ts, *(bars[:, :, i] for i in range(5)), entries=ent, exits=ex, symbol_of=sym,
                           model=model, device="cpu")
    rf, rev, req, _ = reference_run(ts, bars, model, n_portfolios=P, entries=ent, exits=ex, symbol_of=sym)
    assert record_tuples(res.fills) == rf
    assert record_tuples(res.events) == rev
    np.testing.assert_array_equal(res.equity, req)
    assert np.isfinite(res.equity).all()
    assert (res.fills["symbol"] == 1).any() and (res.fills["symbol"] == 0)[closed[res.fills["bar"]]].any()
    _assert_nothing_on_closed(res.fills, res.events, closed)
    # the same signals with the weekend rows deleted give the weekday symbol's portfolios the same fills
    keep = ~closed
    alone = simulate_signals(ts[keep], *(bars[keep][:, 1:2, i] for i in range(5)), entries=ent[keep][:, 1::2],
                             exits=ex[keep][:, 1::2], symbol_of=np.zeros(P // 2, np.int64), model=model,
                             device="cpu")
    mine = res.fills[res.fills["symbol"] == 1]
    np.testing.assert_array_equal(alone.fills["price"], mine["price"])
    np.testing.assert_array_equal(alone.fills["qty"], mine["qty"])
    np.testing.assert_array_equal(alone.fills["ts"], mine["ts"])
    np.testing.assert_array_equal(alone.equity, res.equity[keep][:, 1::2])


def test_cuda_kernel_under_simulator_equals_cpu_on_closed_bars() -> None:
    """As test_cuda_parity: a subprocess, since NUMBA_ENABLE_CUDASIM is read at numba's first import."""
    import os
    import subprocess
    import sys

    from trading_core.config import PROJECT_ROOT

    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", PYTHONPATH=str(PROJECT_ROOT))
    r = subprocess.run([sys.executable, "-m", "tests.unit.engine._cuda_closed_bars"], cwd=PROJECT_ROOT, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "CUDA-SIM CLOSED BARS OK" in r.stdout
