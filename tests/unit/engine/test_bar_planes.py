"""The kernels read five (T, S) bar planes: a caller's writable float64 columns go in without a copy,
read-only ones (polars / Arrow views) are copied, and a run gives the same records either way."""

from __future__ import annotations

import numpy as np

from trading_core.engine import MarketModel, simulate_signals
from trading_core.engine import enums as E
from trading_core.engine.state import bar_planes


def _bars(T: int = 300, S: int = 2, seed: int = 4) -> tuple[np.ndarray, ...]:
    g = np.random.default_rng(seed)
    c = 100.0 * np.exp(np.cumsum(g.normal(0.0, 0.01, (T, S)), axis=0))
    o = np.vstack([c[:1], c[:-1]])
    return o, np.maximum(o, c) * 1.001, np.minimum(o, c) * 0.999, c, g.lognormal(3.0, 0.5, (T, S))


def test_writable_contiguous_planes_are_used_as_they_are_and_unused_ones_share_one_zero_array() -> None:
    o, h, lo, c, v = _bars()
    planes = bar_planes(o, h, lo, c, v)
    assert all(np.shares_memory(p, a) for p, a in zip(planes, (o, h, lo, c, v), strict=True))  # no copy
    fast = bar_planes(o, h, lo, c, v, planes=(E.B_CLOSE,))
    assert np.shares_memory(fast[E.B_CLOSE], c) and fast[E.B_OPEN] is fast[E.B_VOLUME] and not fast[E.B_OPEN].any()
    col = [np.ascontiguousarray(a[:, 0]) for a in (o, h, lo, c, v)]  # 1-D series: (T, 1) views of them
    one = bar_planes(*col)
    assert one[E.B_CLOSE].shape == (300, 1) and np.shares_memory(one[E.B_CLOSE], col[E.B_CLOSE])
    strided = bar_planes(o[:, 0], h[:, 0], lo[:, 0], c[:, 0], v[:, 0])  # a column of a wider array
    assert strided[E.B_CLOSE].flags.c_contiguous and np.array_equal(strided[E.B_CLOSE][:, 0], c[:, 0])


def test_read_only_planes_are_copied_and_trade_exactly_like_writable_ones() -> None:
    o, h, lo, c, v = _bars()
    ro = tuple(a.copy() for a in (o, h, lo, c, v))
    for a in ro:
        a.flags.writeable = False
    planes = bar_planes(*ro)
    assert all(p.flags.writeable and not np.shares_memory(p, a) for p, a in zip(planes, ro, strict=True))
    ts = np.arange(300, dtype=np.int64) * 3_600_000
    ent = np.zeros((300, 2), np.bool_)
    ex = np.zeros((300, 2), np.bool_)
    ent[10::40] = True
    ex[30::40] = True
    model = MarketModel(participation_rate=0.2, impact_coef=0.1, latency_kind="fixed", latency_a=1.0)
    a = simulate_signals(ts, o, h, lo, c, v, entries=ent, exits=ex, symbol_of=np.array([0, 1]), model=model,
                         device="cpu")
    b = simulate_signals(ts, *ro, entries=ent, exits=ex, symbol_of=np.array([0, 1]), model=model, device="cpu")
    assert a.fills.size > 10 and np.array_equal(a.fills, b.fills) and np.array_equal(a.equity, b.equity)
