"""Run in a subprocess with NUMBA_ENABLE_CUDASIM=1: the CUDA kernel (simulated) must equal the CPU kernel."""

from __future__ import annotations

import os
import sys

assert os.environ.get("NUMBA_ENABLE_CUDASIM") == "1", "set NUMBA_ENABLE_CUDASIM=1 before numba is imported"

import numpy as np  # noqa: E402

from tests.unit.engine.conftest import CUDA_MODEL, random_market, random_orders  # noqa: E402
from trading_core.engine import MarketModel, simulate_orders, simulate_signals  # noqa: E402


def main() -> int:
    model = CUDA_MODEL
    checks = 0
    for seed in range(int(sys.argv[1]) if len(sys.argv) > 1 else 3):
        ts, bars = random_market(seed, 25, 2)
        ords = random_orders(seed, 25, 2, 3, 40, bars)
        args = (ts, *(bars[:, :, i] for i in range(5)))
        a = simulate_orders(*args, orders=ords, n_portfolios=3, model=model, device="cpu", seed=seed, cash=1e4)
        b = simulate_orders(*args, orders=ords, n_portfolios=3, model=model, device="cuda", seed=seed, cash=1e4)
        assert b.device == "cuda"
        assert a.fills.tobytes() == b.fills.tobytes(), "fills differ"
        assert a.events.tobytes() == b.events.tobytes(), "events differ"
        np.testing.assert_array_equal(a.equity, b.equity)
        own = [model.replace(slippage_bps=3.0 * p, touch_fill_prob=1.0 - 0.25 * p, latency_b=1.0 + p)
               for p in range(3)]  # one market model per portfolio
        a = simulate_orders(*args, orders=ords, n_portfolios=3, model=own, device="cpu", seed=seed, cash=1e4)
        b = simulate_orders(*args, orders=ords, n_portfolios=3, model=own, device="cuda", seed=seed, cash=1e4)
        assert a.fills.tobytes() == b.fills.tobytes(), "per-portfolio-model fills differ"
        np.testing.assert_array_equal(a.equity, b.equity)
        g = np.random.default_rng(seed)
        ent, ex = g.random((25, 3)) < 0.2, g.random((25, 3)) < 0.2
        for m in (MarketModel(fill_at="close", slippage_bps=5), model):
            a = simulate_signals(*args, entries=ent, exits=ex, symbol_of=np.array([0, 1, 0]), model=m, device="cpu")
            b = simulate_signals(*args, entries=ent, exits=ex, symbol_of=np.array([0, 1, 0]), model=m, device="cuda")
            assert a.fills.tobytes() == b.fills.tobytes(), "signal fills differ"
            np.testing.assert_array_equal(a.equity, b.equity)
        checks += 1
    print(f"CUDA-SIM PARITY OK {checks}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
