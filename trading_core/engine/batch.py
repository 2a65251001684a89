"""Batch API: ``simulate_signals`` / ``simulate_orders`` run all T bars of P portfolios in one
kernel call (buffers re-sized and the run repeated in the rare case a portfolio logs more records
than estimated), then wrap the records once."""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np

from trading_core.engine import enums as E
from trading_core.engine.cpu import ewm_sigma_nb, max_signals_nb
from trading_core.engine.dispatch import kernel_for, resolve_with_note
from trading_core.engine.model import MarketModel, PortfolioModels
from trading_core.engine.results import SimResult, pack_events, pack_fills
from trading_core.engine.state import (
    SIZE_MODES,
    bar_ms_of,
    bar_planes,
    new_state,
    orders_to_queue,
    record_buffer,
)


def _run_batch(ts, bars, entries, exits, sig_i, sig_f, orders, models: PortfolioModels, cash, seed: int, device: str,
               allow_short: bool, pos_series_on: bool, save_series: bool, P: int, fill_cap: int,
               ev_cap: int) -> SimResult:
    T, S = bars[E.B_CLOSE].shape
    bar_ms = bar_ms_of(ts)
    model = models.base
    mp, mi, tiers = models.arrays(P, bar_ms, allow_short=allow_short)
    mi[E.MI_SERIES] = int(save_series)
    mi[E.MI_POS_SERIES] = int(pos_series_on and save_series)
    mi[E.MI_N_BLOCKS] = 4 * numba.get_num_threads()
    if models.impact_on:
        sigma = ewm_sigma_nb(bars[E.B_CLOSE], model.vol_lambda(),
                                np.zeros(S), np.zeros(S))
    else:
        sigma = np.zeros((1, 1))
    oq_i, oq_f, start, end = orders_to_queue(orders if orders is not None else np.zeros(0, E.ORDER_DTYPE), P)
    dev, note = resolve_with_note(device)
    while True:
        st = new_state(P, S, models, cash, seed)
        st.ai[:, E.AI_OQ] = start
        fi = record_buffer((P, fill_cap, E.N_FI), np.int64)
        ff = record_buffer((P, fill_cap, E.N_FF), np.float64)
        ei = record_buffer((P, ev_cap, E.N_EI), np.int64)
        series = np.zeros((E.N_SE, T if save_series else 1, P), np.float64)
        pos_series = np.zeros((T, P, S) if mi[E.MI_POS_SERIES] else (1, 1, 1), np.float64)
        kernel_for(dev, P)(T, 0, ts, bars, sigma, entries, exits, sig_i, sig_f, oq_i, oq_f, end, mp, mi, st.rng,
                        tiers, st.af, st.ai, st.pf, st.oi, st.of, fi, ff, ei, series, pos_series)
        nf, ne = st.ai[:, E.AI_NFILL], st.ai[:, E.AI_NEV]
        if nf.max(initial=0) <= fill_cap and ne.max(initial=0) <= ev_cap:
            break
        fill_cap = int(max(fill_cap, nf.max()) + 8)
        ev_cap = int(max(ev_cap, ne.max()) + 8)
    final_eq = st.af[:, E.AF_CASH] + (st.pf[:, :, E.PF_QTY] * st.pf[:, :, E.PF_LAST]).sum(axis=1)
    if save_series:
        final_eq = series[E.SE_EQUITY, -1].copy() if T else final_eq
    return SimResult(
        fills=pack_fills(fi, ff, st.ai), events=pack_events(ei, st.ai),
        equity=series[E.SE_EQUITY], cash=series[E.SE_CASH],
        position=pos_series if mi[E.MI_POS_SERIES] else series[E.SE_POS],
        final_equity=final_eq, fees_paid=st.af[:, E.AF_FEES].copy(), borrow_paid=st.af[:, E.AF_BORROW].copy(),
        model_hash=models.execution_model_hash(), device=dev,
        meta={"bar_ms": bar_ms, "fill_cap": fill_cap, "signal_fast_path": signal_fast_path(model), **note},
    )


def signal_fast_path(model: MarketModel) -> bool:
    """Whether signal orders on an empty book take the fused fill (``rules.signal_fill_nb``): they
    fill at the close at once and can never rest."""
    return model.fill_at == "close" and model.latency_kind == "none" and model.participation_rate == 0


def simulate_signals(ts: np.ndarray, open: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray,
                     volume: np.ndarray, *, entries: np.ndarray, exits: np.ndarray, symbol_of: np.ndarray | None = None,
                     model: MarketModel | Sequence[MarketModel] | None = None,
                     cash: float | np.ndarray = 100_000.0, size_mode: str = "all_in",
                     size: float | np.ndarray = 1.0, short: bool = False, device: str = "auto", seed: int = 0,
                     save_series: bool = True) -> SimResult:
    """Backtest P signal portfolios in one kernel call.

    Signals at bar t are decided at t's close and fill at that close (``model.fill_at="close"``,
    vectorbt's assumption) or at the next bar's open (``"next_open"``), never earlier. An entry
    and an exit on the same bar cancel out. ``short=True`` makes exits reverse into a short.
    ``model`` is one market model for every portfolio, or a sequence of one per portfolio
    (``PortfolioModels``: the same venue rules, each its own costs and probabilities).
    """
    ts = np.ascontiguousarray(ts, np.int64)
    entries = np.ascontiguousarray(entries, np.bool_)
    exits = np.ascontiguousarray(exits, np.bool_)
    if entries.ndim == 1:
        entries, exits = entries[:, None], exits[:, None]
    P = entries.shape[1]
    models = PortfolioModels.of(model, P)
    planes: tuple[int, ...] = (0, 1, 2, 3, 4)
    if signal_fast_path(models.base):
        # signals fill at once at the close and never rest: open/high/low are never read, volume only
        # by the impact term
        planes = (3, 4) if models.impact_on else (3,)
    bars = bar_planes(open, high, low, close, volume, planes)
    T, S = bars[E.B_CLOSE].shape
    if entries.shape != exits.shape or entries.shape[0] != T:
        raise ValueError(f"entries/exits must be (T={T}, P) and equal, got {entries.shape} and {exits.shape}")
    symbol_of = np.zeros(P, np.int64) if symbol_of is None else np.asarray(symbol_of, np.int64)
    if symbol_of.shape != (P,) or (P and (symbol_of.min() < 0 or symbol_of.max() >= S)):
        raise ValueError("symbol_of must be (P,) with values in [0, S)")
    if size_mode not in SIZE_MODES:
        raise ValueError(f"size_mode must be one of {sorted(SIZE_MODES)}")
    sig_i = np.zeros((P, 4), np.int64)
    sig_i[:, 0] = 1
    sig_i[:, 1] = symbol_of
    sig_i[:, 2] = SIZE_MODES[size_mode]
    sig_i[:, 3] = 1
    sig_f = np.zeros((P, 1), np.float64)
    sig_f[:, 0] = np.broadcast_to(np.asarray(size, np.float64), (P,))
    n_sig = int(max_signals_nb(entries, exits))
    return _run_batch(ts, bars, entries, exits, sig_i, sig_f, None, models, cash, seed, device, short, False,
                      save_series, P, 2 * n_sig + 16, 8 * n_sig + 16)


def simulate_orders(ts: np.ndarray, open: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray,
                    volume: np.ndarray, *, orders: np.ndarray, n_portfolios: int,
                    model: MarketModel | Sequence[MarketModel] | None = None, cash: float | np.ndarray = 100_000.0,
                    device: str = "auto", seed: int = 0) -> SimResult:
    """Batch-run an order stream (ORDER_DTYPE; ``bar`` = first bar each instruction acts on); ``model``
    as in ``simulate_signals``."""
    models = PortfolioModels.of(model, int(n_portfolios))
    ts = np.ascontiguousarray(ts, np.int64)
    bars = bar_planes(open, high, low, close, volume)
    P = int(n_portfolios)
    sig_i = np.zeros((P, 4), np.int64)
    sig_f = np.zeros((P, 1), np.float64)
    dummy = np.zeros((1, 1), np.bool_)
    n = len(orders)
    return _run_batch(ts, bars, dummy, dummy, sig_i, sig_f, orders, models, cash, seed, device,
                      models.base.allow_short, True, True, P, 4 * n + 16, 8 * n + 16)
