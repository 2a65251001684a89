"""Run in a subprocess with NUMBA_ENABLE_CUDASIM=1: on a union calendar (one symbol's weekend rows
NaN) the CUDA kernel (simulated) equals the CPU kernel bit for bit."""

from __future__ import annotations

import os

assert os.environ.get("NUMBA_ENABLE_CUDASIM") == "1", "set NUMBA_ENABLE_CUDASIM=1 before numba is imported"

import numpy as np  # noqa: E402

from tests.unit.engine.conftest import CUDA_MODEL, random_orders  # noqa: E402
from tests.unit.engine.test_closed_bars import mixed_market  # noqa: E402
from trading_core.engine import MarketModel, simulate_orders, simulate_signals  # noqa: E402


def main() -> int:
    model = CUDA_MODEL
    seed, T = 3, 24
    ts, bars, full, closed = mixed_market(seed, T)
    assert closed.any()
    ords = random_orders(seed, T, 2, 3, 40, full)
    args = (ts, *(bars[:, :, i] for i in range(5)))
    a = simulate_orders(*args, orders=ords, n_portfolios=3, model=model, device="cpu", seed=seed, cash=1e4)
    b = simulate_orders(*args, orders=ords, n_portfolios=3, model=model, device="cuda", seed=seed, cash=1e4)
    assert b.device == "cuda"
    assert a.fills.tobytes() == b.fills.tobytes(), "fills differ"
    assert a.events.tobytes() == b.events.tobytes(), "events differ"
    np.testing.assert_array_equal(a.equity, b.equity)
    assert np.isfinite(b.equity).all()
    g = np.random.default_rng(seed)
    ent, ex = g.random((T, 4)) < 0.25, g.random((T, 4)) < 0.25
    ent[closed, 1::2] = True
    sym = np.arange(4) % 2
    for m in (MarketModel(fill_at="close", slippage_bps=5), model):
        a = simulate_signals(*args, entries=ent, exits=ex, symbol_of=sym, model=m, device="cpu")
        b = simulate_signals(*args, entries=ent, exits=ex, symbol_of=sym, model=m, device="cuda")
        assert a.fills.tobytes() == b.fills.tobytes(), "signal fills differ"
        np.testing.assert_array_equal(a.equity, b.equity)
        assert np.isfinite(b.equity).all()
    print("CUDA-SIM CLOSED BARS OK")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
