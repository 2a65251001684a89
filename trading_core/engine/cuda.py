"""The CUDA twin of the CPU kernel: the same rule functions, compiled a second time.

Every rule in ``rules`` and ``bar`` is an ``@njit`` dispatcher; here its Python source (``py_func``) is
re-bound to a globals namespace in which the other rules are their CUDA device versions, and then
compiled with ``numba.cuda.jit(device=True)``. One thread runs one portfolio over all T bars
(``run_portfolio_nb``), exactly as one ``prange`` iteration does on the CPU. Random numbers come
from the host-drawn pool, so both devices see the same draws.

Imported lazily (``numba.cuda`` costs ~0.3 s). Works under the CUDA simulator
(``NUMBA_ENABLE_CUDASIM=1`` set before numba is imported), which is how the tests check parity.
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np
from numba import cuda

from trading_core.engine import bar, packs, rules
from trading_core.engine.packs import Book, Market

RULES: tuple[str, ...] = (
    "draw_nb", "floor_lot_nb", "off_grid_nb", "event_nb", "fee_rate_nb", "taker_price_nb", "equity_nb",
    "roll_day_nb", "add_day_volume_nb", "apply_fill_nb", "find_slot_nb", "free_slot_nb", "release_children_nb",
    "close_slot_nb", "latency_bars_nb", "validate_nb", "submit_nb", "_write_slot_nb", "size_qty_nb",
    "size_reject_nb", "cap_qty_nb", "execute_nb", "signal_fill_nb",
    "fill_slot_nb", "closed_nb", "start_bar_nb", "trail_level_nb", "match_point_nb", "process_queue_nb", "signal_nb",
    "_signal_order_nb", "end_bar_nb", "step_nb", "run_block_nb", "run_portfolio_nb",
)
THREADS_PER_BLOCK = 64


def _build_device_functions() -> dict[str, Any]:
    ns: dict[str, Any] = {**vars(packs), **vars(rules), **vars(bar)}  # the packs' classes included
    dev: dict[str, Any] = {}
    for name in RULES:
        f = ns[name].py_func
        g = types.FunctionType(f.__code__, ns, f.__name__, f.__defaults__, f.__closure__)
        g.__qualname__ = f.__qualname__
        dev[name] = cuda.jit(device=True)(g)
    ns.update(dev)  # the rules now call each other's device versions
    return dev


_DEV = _build_device_functions()
_run_portfolio_dev = _DEV["run_portfolio_nb"]


@cuda.jit
def simulate_kernel(T, bar0, ts, bars3, sigma, entries, exits, sig_i, sig_f, oq_i, oq_f, oq_end, mp, mi, rng, tiers,
                    af, ai, pf, oi, of, fi, ff, ei, series, pos_series):
    """One thread per portfolio; the body is the shared ``run_portfolio_nb`` rule. Flat array arguments
    (a tuple of device arrays is not a reliable kernel argument): the bar planes come stacked as one
    (5, T, S) device array and the packs, planes included, are built here."""
    p = cuda.grid(1)
    if p < af.shape[0]:
        bars = (bars3[0], bars3[1], bars3[2], bars3[3], bars3[4])
        m = Market(ts, bars, sigma, entries, exits, sig_i, sig_f, oq_i, oq_f, oq_end, mp, mi, rng, tiers)
        b = Book(af, ai, pf, oi, of, fi, ff, ei, series, pos_series)
        _run_portfolio_dev(p, T, bar0, m, b)


def simulate_cuda(T: int, bar0: int, ts: np.ndarray, bars: tuple[np.ndarray, ...], sigma: np.ndarray,
                  entries: np.ndarray, exits: np.ndarray, sig_i: np.ndarray, sig_f: np.ndarray, oq_i: np.ndarray,
                  oq_f: np.ndarray, oq_end: np.ndarray, mp: np.ndarray, mi: np.ndarray, rng: np.ndarray, tiers: np.ndarray,
                  af: np.ndarray, ai: np.ndarray, pf: np.ndarray, oi: np.ndarray, of: np.ndarray, fi: np.ndarray,
                  ff: np.ndarray, ei: np.ndarray, series: np.ndarray, pos_series: np.ndarray) -> None:
    """Same signature and in-place semantics as ``cpu.simulate_parallel_nb``, on the GPU."""
    P = af.shape[0]
    inputs = [cuda.to_device(np.ascontiguousarray(a)) for a in (ts, np.stack(bars), sigma, entries, exits, sig_i,
                                                                sig_f, oq_i, oq_f, oq_end, mp, mi, rng, tiers)]
    mutable = (af, ai, pf, oi, of, fi, ff, ei, series, pos_series)
    dev_mut = [cuda.to_device(a) for a in mutable]
    blocks = max(1, (P + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK)
    simulate_kernel[blocks, THREADS_PER_BLOCK](T, bar0, *inputs, *dev_mut)
    for host, d in zip(mutable, dev_mut, strict=True):
        d.copy_to_host(host)
