"""CPU kernels: the batch loop over all portfolios (parallel blocks or serial), the volatility
pre-pass of the impact model, and the compiled record packing of fills and events."""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from trading_core.engine import enums as E
from trading_core.engine.bar import run_block_nb
from trading_core.engine.packs import B2, BARS, F2, F3, I0, I1, I2, I3, MP, TIERS, Book, Market
from trading_core.engine.rules import rule


@njit(cache=True, parallel=True)
def simulate_parallel_nb(T, bar0, ts, bars, sigma, entries, exits, sig_i, sig_f, oq_i, oq_f, oq_end, mp, mi, rng,
                         tiers, af, ai, pf, oi, of, fi, ff, ei, series, pos_series):
    """Batch kernel: blocks of portfolios in parallel (prange), each block time-major over all T bars.

    Block edges are multiples of 8 portfolios so two threads never write one cache line of a
    (T, P) row; a few blocks per thread even out uneven work. Flat arguments (called from Python);
    the packs are built in the loop body (tuples of views: no copy). ``mp[:, :]`` / ``tiers[:, :, :]``
    are any-layout views whether the model came C-contiguous (one per portfolio) or broadcast
    (shared), so ``Market`` has exactly the type ``MARKET_T`` (Numba converts a bare array's layout
    at a call, not a NamedTuple's fields)."""
    P = af.shape[0]
    n_units = (P + 7) // 8
    n_blk = max(1, min(n_units, mi[E.MI_N_BLOCKS]))
    for blk in prange(n_blk):
        p0 = min(P, (blk * n_units // n_blk) * 8)
        p1 = min(P, ((blk + 1) * n_units // n_blk) * 8)
        m = Market(ts, bars, sigma, entries, exits, sig_i, sig_f, oq_i, oq_f, oq_end, mp[:, :], mi, rng,
                   tiers[:, :, :])
        run_block_nb(p0, p1, T, bar0, m, Book(af, ai, pf, oi, of, fi, ff, ei, series, pos_series))


@rule(I0, I0, I1, BARS, F2, B2, B2, I2, F2, I2, F2, I1, MP, I1, F2, TIERS, F2, I2, F3, I3, F3, I3, F3, I3, F3, F3)
def simulate_serial_nb(T, bar0, ts, bars, sigma, entries, exits, sig_i, sig_f, oq_i, oq_f, oq_end, mp, mi, rng,
                       tiers, af, ai, pf, oi, of, fi, ff, ei, series, pos_series):
    """Same as ``simulate_parallel_nb`` without the thread pool (streaming steps, tiny batches)."""
    m = Market(ts, bars, sigma, entries, exits, sig_i, sig_f, oq_i, oq_f, oq_end, mp, mi, rng, tiers)
    b = Book(af, ai, pf, oi, of, fi, ff, ei, series, pos_series)
    run_block_nb(0, af.shape[0], T, bar0, m, b)


@njit(cache=True)
def regular_step_nb(ts):
    """The spacing of ``ts`` when every step is the same (bars without gaps), else -1: what the
    median step is for such bars, in one pass and no (T,) allocation.

    Blocks of 4096 steps are checked without a branch per step (so the loop vectorises; ~4x faster
    than stopping at the first odd step), and a gapped series stops at the end of its first block."""
    n = ts.shape[0]
    step = ts[1] - ts[0]
    for i0 in range(1, n, 4096):
        odd = 0
        for i in range(i0, min(n, i0 + 4096)):
            odd |= (ts[i] - ts[i - 1]) ^ step
        if odd != 0:
            return -1
    return step


@njit(cache=True)
def max_signals_nb(entries, exits):
    """The most entry + exit flags any one portfolio has (sizes its record buffers): one pass over
    the (T, P) flags, row by row (NumPy's bool ``sum(axis=0)`` casts every flag, ~5x slower).
    One portfolio's flags are one contiguous run, summed as bytes."""
    T, P = entries.shape
    if P == 1:
        n = 0
        e = entries.ravel().view(np.uint8)
        x = exits.ravel().view(np.uint8)
        for t in range(T):
            n += e[t] + x[t]
        return n
    cnt = np.zeros(P, np.int64)
    for t in range(T):
        for p in range(P):
            cnt[p] += entries[t, p] + exits[t, p]
    m = 0
    for p in range(P):
        m = max(m, cnt[p])
    return m


@njit(cache=True)
def ewm_sigma_into_nb(close, lam, var, prev, out):
    """Per-bar volatility known *before* each bar (EWMA of squared log returns up to the previous close),
    written into ``out`` (same shape as ``close``).

    ``var``/``prev`` (S,) carry the state across calls so streaming and batch agree exactly.
    """
    T, S = close.shape
    for s in range(S):
        v = var[s]
        pc = prev[s]
        for t in range(T):
            out[t, s] = math.sqrt(v)
            c = close[t, s]
            if c != c:
                continue  # no bar (closed market): the next real close returns against the last one
            if pc > 0.0 and c > 0.0:
                r = math.log(c / pc)
                v = lam * v + (1.0 - lam) * r * r
            pc = c
        var[s] = v
        prev[s] = pc


@njit(cache=True)
def ewm_sigma_nb(close, lam, var, prev):
    """``ewm_sigma_into_nb`` into a new (T, S) array."""
    out = close.copy()
    ewm_sigma_into_nb(close, lam, var, prev, out)
    return out


@njit(cache=True)
def pack_fills_nb(fi, ff, ai, out_i, out_f):
    """Fill rows of every portfolio (portfolio order) into an int64 / float64 view pair of a FILL_DTYPE
    buffer; returns the count. The streaming engine's per-bar record wrap, without NumPy fancy indexing."""
    n = 0
    for p in range(ai.shape[0]):
        for j in range(min(ai[p, E.AI_NFILL], fi.shape[1])):
            out_i[n, 0] = p
            out_i[n, 1] = fi[p, j, E.FI_SYM]
            out_i[n, 2] = fi[p, j, E.FI_BAR]
            out_i[n, 3] = fi[p, j, E.FI_TS]
            out_i[n, 4] = fi[p, j, E.FI_ID]
            out_i[n, 5] = fi[p, j, E.FI_SIDE]
            out_f[n, 6] = ff[p, j, E.FF_QTY]
            out_f[n, 7] = ff[p, j, E.FF_PRICE]
            out_f[n, 8] = ff[p, j, E.FF_FEE]
            out_f[n, 9] = ff[p, j, E.FF_SLIP]
            out_i[n, 10] = fi[p, j, E.FI_ROLE]
            out_i[n, 11] = fi[p, j, E.FI_REASON]
            out_i[n, 12] = fi[p, j, E.FI_TYPE]
            n += 1
    return n


@njit(cache=True)
def pack_events_nb(ei, ai, out_i):
    """Event rows of every portfolio into the int64 view of an EVENT_DTYPE buffer; returns the count."""
    n = 0
    for p in range(ai.shape[0]):
        for j in range(min(ai[p, E.AI_NEV], ei.shape[1])):
            out_i[n, 0] = p
            for c in range(E.N_EI):
                out_i[n, 1 + c] = ei[p, j, c]
            n += 1
    return n
