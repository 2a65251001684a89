"""The streaming step on pre-bound state: any array-like bar input gives the same ledger, and the
Python-side views are the memory the compiled step writes."""

from __future__ import annotations

import numpy as np

from tests.unit.engine.conftest import random_market
from trading_core.engine import Engine, MarketModel


def _run(bars_of, ts, n: int) -> tuple[np.ndarray, np.ndarray]:
    eng = Engine(2, 2, MarketModel(fill_at="close", impact_coef=0.3, slippage_bps=2), cash=1e4,
                 bar_ms=float(ts[1] - ts[0]))
    eng.set_signals(np.array([0, 1]))
    g = np.random.default_rng(1)
    fills = []
    for t in range(n):
        ent, ex = g.random(2) < 0.2, g.random(2) < 0.2
        fills.append(eng.step(int(ts[t]), *bars_of(t), entries=ent, exits=ex))
    return np.concatenate(fills), eng.equity


def test_step_when_bar_fields_are_strided_lists_or_ints_then_same_ledger_as_float_arrays() -> None:
    ts, bars = random_market(4, 60, 2)  # (T, S, 5)
    wide = np.repeat(bars, 2, axis=1)  # a strided view bars[t, ::2, i] of the same values
    ref_f, ref_eq = _run(lambda t: [np.ascontiguousarray(bars[t, :, i]) for i in range(5)], ts, 60)
    f1, eq1 = _run(lambda t: [wide[t, ::2, i] for i in range(5)], ts, 60)
    f2, eq2 = _run(lambda t: [bars[t, :, i].tolist() for i in range(5)], ts, 60)
    assert len(ref_f) > 0
    assert f1.tobytes() == ref_f.tobytes() and f2.tobytes() == ref_f.tobytes()
    np.testing.assert_array_equal(eq1, ref_eq)
    np.testing.assert_array_equal(eq2, ref_eq)


def test_engine_views_share_the_bound_buffers() -> None:
    eng = Engine(1, 1, MarketModel(fill_at="close"), cash=100.0)
    eng.set_signals(np.zeros(1, np.int64))
    one = np.ones(1) * 10.0
    eng.step(0, one, one, one, one, one, entries=np.array([True]), exits=np.array([False]))
    fbuf = eng._bound[0]
    assert np.shares_memory(eng._st.af, fbuf) and np.shares_memory(eng._st.pf, fbuf)
    assert eng.positions[0, 0] > 0 and eng.cash[0] < 100.0
