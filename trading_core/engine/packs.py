"""The kernel state in two packs, so a rule takes ``(p, <scalars>, m, b)`` instead of 10-29 arrays.

``Market`` holds the read-only inputs of a run (bars, signals, the order queue, the market model, the
draw pool), ``Book`` the mutable per-portfolio state (account, positions, order book) and the records
the kernels write (fills, events, series). Both are plain module-level NamedTuples of the same arrays
the kernels always took (shapes, dtypes and meaning as in ``enums``), so the arrays themselves, the
streaming engine's bound buffers and its snapshots are unchanged. Numba passes a NamedTuple argument
as its flattened fields, so a call costs what it did with the arrays spelled out.

``MARKET_T`` / ``BOOK_T`` are their Numba types for the explicit ``@rule`` signatures. ``MP`` and
``TIERS`` are any-layout: a market model shared by every portfolio is one row broadcast with stride 0
(``state.per_portfolio``). The flat entry points (``cpu.simulate_serial_nb`` / ``simulate_parallel_nb``,
called from Python by ``batch`` and ``stream``, and the CUDA kernel) build the packs from their arguments.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import types as nt

I0, F0 = nt.int64, nt.float64  # scalars
I1, I2, I3 = nt.int64[::1], nt.int64[:, ::1], nt.int64[:, :, ::1]
F1, F2, F3 = nt.float64[::1], nt.float64[:, ::1], nt.float64[:, :, ::1]
B2 = nt.boolean[:, ::1]
# The bar planes (open, high, low, close, volume): five (T, S) arrays, not one stacked (5, T, S) copy, so
# a caller's C-contiguous float64 columns go in as they are (stacking 10^6 bars cost ~9 ms of fresh pages).
BARS = nt.UniTuple(F2, 5)
# The market model: one row per portfolio, (P, N_MP) and (P, n_tiers, 3). Any layout, because a model
# shared by every portfolio is one row broadcast with stride 0 (``state.per_portfolio``): no copy, and
# every portfolio reads the same cache line.
MP, TIERS = nt.float64[:, :], nt.float64[:, :, :]


class Market(NamedTuple):
    """Read-only inputs: timestamps, bar planes, impact sigma, signals, the order queue, the model."""

    ts: np.ndarray  # (T,) int64
    bars: tuple[np.ndarray, ...]  # N_B planes (open, high, low, close, volume), each (T, S) float64
    sigma: np.ndarray  # (T, S) float64 (or (1, 1) when the impact model is off)
    entries: np.ndarray  # (T, P) bool
    exits: np.ndarray  # (T, P) bool
    sig_i: np.ndarray  # (P, 4) int64: on, symbol, size mode, single symbol
    sig_f: np.ndarray  # (P, 1) float64: size
    oq_i: np.ndarray  # (N, N_QI) int64 order queue
    oq_f: np.ndarray  # (N, N_QF) float64
    oq_end: np.ndarray  # (P,) int64: end of each portfolio's queue region
    mp: np.ndarray  # (P, N_MP) float64, any layout
    mi: np.ndarray  # (N_MI,) int64
    rng: np.ndarray  # (P, n) float64 draw pool (cursor: ai[p, AI_RNG])
    tiers: np.ndarray  # (P, n_tiers, 3) float64, any layout


class Book(NamedTuple):
    """Mutable state: account, positions, order book, and the fill / event / series records."""

    af: np.ndarray  # (P, N_AF) float64
    ai: np.ndarray  # (P, N_AI) int64
    pf: np.ndarray  # (P, S, N_PF) float64
    oi: np.ndarray  # (P, K, N_OI) int64
    of: np.ndarray  # (P, K, N_OF) float64
    fi: np.ndarray  # (P, C, N_FI) int64
    ff: np.ndarray  # (P, C, N_FF) float64
    ei: np.ndarray  # (P, C, N_EI) int64
    series: np.ndarray  # (N_SE, T, P) float64
    pos_series: np.ndarray  # (T, P, S) float64 (or (1, 1, 1) when off)


MARKET_T = nt.NamedTuple([I1, BARS, F2, B2, B2, I2, F2, I2, F2, I1, MP, I1, F2, TIERS], Market)
BOOK_T = nt.NamedTuple([F2, I2, F3, I3, F3, I3, F3, I3, F3, F3], Book)
