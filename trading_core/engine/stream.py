"""Streaming API: ``Engine`` (submit/cancel/replace between bars, ``step`` one bar) and its
compiled per-bar entry point. A step runs the same ``run_block_nb`` as the batch kernel on a
one-bar window, so streaming and batch give identical ledgers on identical bars."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numba import njit
from numba import types as nt

from trading_core.engine import enums as E
from trading_core.engine.cpu import (
    ewm_sigma_into_nb,
    ewm_sigma_nb,
    pack_events_nb,
    pack_fills_nb,
    simulate_serial_nb,
)
from trading_core.engine.dispatch import kernel_for, resolve_with_note
from trading_core.engine.model import MarketModel, PortfolioModels
from trading_core.engine.state import SIZE_MODES, new_state, orders_to_queue

# ############# Pre-bound state ############# #
# The engine's arrays live in three flat buffers (float64, int64, bool); every named part is a view
# into one of them at the offset and shape recorded in ``lay`` (one row per part: offset, d0, d1, d2).
# The per-bar entry point takes the buffers and rebuilds the views inside the compiled code, so a
# step unboxes a dozen arguments instead of 35 arrays (~0.13 us each).

# ``fillrec`` / ``evrec`` are the FILL_DTYPE / EVENT_DTYPE record buffers (every field is 8 bytes), so a
# bar's fills and events are packed inside the compiled step too.
_F_PARTS = ("af", "pf", "of", "ff", "bars", "sigma", "series", "mp", "tiers", "sig_f", "rng", "var", "prev", "lam",
            "pos", "fillrec")
_I_PARTS = ("ai", "oi", "fi", "ei", "ts", "mi", "sig_i", "oq_end", "evrec")
_B_PARTS = ("ent", "ex")
(LF_AF, LF_PF, LF_OF, LF_FF, LF_BARS, LF_SIGMA, LF_SERIES, LF_MP, LF_TIERS, LF_SIGF, LF_RNG, LF_VAR, LF_PREV,
 LF_LAM, LF_POS, LF_FILLREC) = range(len(_F_PARTS))
LI_AI, LI_OI, LI_FI, LI_EI, LI_TS, LI_MI, LI_SIGI, LI_OQEND, LI_EVREC = range(len(_F_PARTS),
                                                                             len(_F_PARTS) + len(_I_PARTS))
LB_ENT, LB_EX = range(len(_F_PARTS) + len(_I_PARTS), len(_F_PARTS) + len(_I_PARTS) + len(_B_PARTS))


def _bind(parts: dict[str, np.ndarray]) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
                                                   dict[str, np.ndarray]]:
    """Copy ``parts`` into three flat buffers; returns (fbuf, ibuf, bbuf, lay) and the views by name."""
    groups = ((_F_PARTS, np.float64), (_I_PARTS, np.int64), (_B_PARTS, np.bool_))
    lay = np.zeros((sum(len(g) for g, _ in groups), 4), np.int64)
    bufs, views, row = [], {}, 0
    for names, dtype in groups:
        buf = np.zeros(sum(parts[n].size for n in names), dtype)
        off = 0
        for n in names:
            a = np.asarray(parts[n], dtype)
            shape = (*a.shape, 1, 1, 1)[:3]
            lay[row] = (off, *shape)
            view = buf[off:off + a.size].reshape(a.shape)
            view[...] = a
            views[n] = view
            off += a.size
            row += 1
        bufs.append(buf)
    return (bufs[0], bufs[1], bufs[2], lay), views


# One signature per buffer dtype: called with a constant part index, a lazily typed view compiled one
# literal-specialised version per part index (~20 in all, ~2 s of a cold import).
_VIEW_SIGS = [(nt.Array(d, 1, "C"), nt.int64[:, ::1], nt.int64) for d in (nt.float64, nt.int64, nt.boolean)]


@njit(_VIEW_SIGS, cache=True)
def _v1(buf, lay, i):
    return buf[lay[i, 0]:lay[i, 0] + lay[i, 1]]


@njit(_VIEW_SIGS, cache=True)
def _v2(buf, lay, i):
    return buf[lay[i, 0]:lay[i, 0] + lay[i, 1] * lay[i, 2]].reshape((lay[i, 1], lay[i, 2]))


@njit(_VIEW_SIGS, cache=True)
def _v3(buf, lay, i):
    return buf[lay[i, 0]:lay[i, 0] + lay[i, 1] * lay[i, 2] * lay[i, 3]].reshape((lay[i, 1], lay[i, 2], lay[i, 3]))


_BAR_SIG = (nt.int64, nt.int64, *(nt.float64[:],) * 5, nt.boolean[:], nt.boolean[:], nt.boolean, nt.boolean,
            nt.float64[::1], nt.int64[::1], nt.boolean[::1], nt.int64[:, ::1], nt.int64[:, ::1], nt.float64[:, ::1])


@njit(_BAR_SIG, cache=True)
def stream_bar_nb(ts_val, bar0, o, h, lo, c, v, ent_in, ex_in, has_sig, reset_oq, fbuf, ibuf, bbuf, lay, oq_i,
                  oq_f):
    """One streaming bar on the pre-bound state: load the bar (and this bar's signals when ``has_sig``),
    update the impact model's sigma, reset per-step counters, run the serial kernel on the one-bar
    window, pack this bar's fills and events into the record buffers and return
    (most fills of a portfolio, most events of a portfolio, fills packed, events packed) -- the whole
    step in one dispatch (packing in Python cost two more dispatches, ~2 us, on every fill bar)."""
    af, pf, of, ff = _v2(fbuf, lay, LF_AF), _v3(fbuf, lay, LF_PF), _v3(fbuf, lay, LF_OF), _v3(fbuf, lay, LF_FF)
    bars, sigma, series = _v3(fbuf, lay, LF_BARS), _v2(fbuf, lay, LF_SIGMA), _v3(fbuf, lay, LF_SERIES)
    mp, tiers, sig_f, rng = _v2(fbuf, lay, LF_MP), _v3(fbuf, lay, LF_TIERS), _v2(fbuf, lay, LF_SIGF), \
        _v2(fbuf, lay, LF_RNG)
    ai, oi, fi, ei = _v2(ibuf, lay, LI_AI), _v3(ibuf, lay, LI_OI), _v3(ibuf, lay, LI_FI), _v3(ibuf, lay, LI_EI)
    ts, mi, sig_i, oq_end = _v1(ibuf, lay, LI_TS), _v1(ibuf, lay, LI_MI), _v2(ibuf, lay, LI_SIGI), \
        _v1(ibuf, lay, LI_OQEND)
    entries, exits = _v2(bbuf, lay, LB_ENT), _v2(bbuf, lay, LB_EX)
    ts[0] = ts_val
    if has_sig:
        for p in range(min(entries.shape[1], ent_in.shape[0], ex_in.shape[0])):
            entries[0, p] = ent_in[p]
            exits[0, p] = ex_in[p]
    for s in range(bars.shape[2]):
        bars[E.B_OPEN, 0, s] = o[s]
        bars[E.B_HIGH, 0, s] = h[s]
        bars[E.B_LOW, 0, s] = lo[s]
        bars[E.B_CLOSE, 0, s] = c[s]
        bars[E.B_VOLUME, 0, s] = v[s]
    impact = False
    for p in range(mp.shape[0]):
        impact = impact or mp[p, E.MP_IMPACT] > 0.0
    if impact:
        ewm_sigma_into_nb(bars[E.B_CLOSE], fbuf[lay[LF_LAM, 0]], _v1(fbuf, lay, LF_VAR), _v1(fbuf, lay, LF_PREV),
                          sigma)
    for p in range(af.shape[0]):
        ai[p, E.AI_NFILL] = 0
        ai[p, E.AI_NEV] = 0
        if reset_oq:
            ai[p, E.AI_OQ] = 0
    planes = (bars[E.B_OPEN], bars[E.B_HIGH], bars[E.B_LOW], bars[E.B_CLOSE], bars[E.B_VOLUME])
    simulate_serial_nb(1, bar0, ts, planes, sigma, entries, exits, sig_i, sig_f, oq_i, oq_f, oq_end, mp, mi, rng,
                       tiers, af, ai, pf, oi, of, fi, ff, ei, series, _v3(fbuf, lay, LF_POS))
    nf = 0
    ne = 0
    for p in range(af.shape[0]):
        nf = max(nf, ai[p, E.AI_NFILL])
        ne = max(ne, ai[p, E.AI_NEV])
    n_fills = 0
    n_events = 0
    if 0 < nf <= fi.shape[1]:
        rec = _v2(fbuf, lay, LF_FILLREC)
        n_fills = pack_fills_nb(fi, ff, ai, rec.view(np.int64), rec)
    if 0 < ne <= ei.shape[1]:
        n_events = pack_events_nb(ei, ai, _v2(ibuf, lay, LI_EVREC))
    return nf, ne, n_fills, n_events


class Engine:
    """Streaming engine: submit/cancel/replace between bars, ``step`` one bar, get that bar's fills.

    Instructions submitted before ``step(bar)`` arrive before that bar's open (``bar`` field =
    the engine's next bar index). Uses the same kernel as the batch API on a one-bar window.
    """

    def __init__(self, n_portfolios: int, n_symbols: int,
                 model: MarketModel | Sequence[MarketModel] | PortfolioModels | None = None,
                 cash: float | np.ndarray = 100_000.0, seed: int = 0, device: str = "cpu",
                 bar_ms: float = 60_000.0) -> None:
        self.P, self.S = int(n_portfolios), int(n_symbols)
        self.models = PortfolioModels.of(model, self.P)
        self.model = self.models.base  # the venue rules every portfolio shares
        self.seed = seed
        self.device, note = resolve_with_note(device)
        self.device_fallback: str | None = note.get("device_fallback")  # why ``auto`` chose the CPU
        mp, self._mi, tiers = self.models.arrays(self.P, bar_ms)
        self._mp, self._tiers = np.ascontiguousarray(mp), np.ascontiguousarray(tiers)  # bound below: P rows
        self._mi[E.MI_POS_SERIES] = 0
        self._st = new_state(self.P, self.S, self.models, cash, seed)
        self._sig_i = np.zeros((self.P, 4), np.int64)
        self._sig_f = np.zeros((self.P, 1), np.float64)
        self._ent = np.zeros((1, max(self.P, 1)), np.bool_)
        self._ex = np.zeros((1, max(self.P, 1)), np.bool_)
        self._bars = np.zeros((E.N_B, 1, self.S), np.float64)
        self._ts = np.zeros(1, np.int64)
        self._var = np.zeros(self.S)
        self._prev = np.zeros(self.S)
        self._sigma = np.zeros((1, max(self.S, 1)))  # written by the step when the impact model is on
        self._lam = self.model.vol_lambda()
        K = self.model.max_open_orders
        self._fcap = 4 * K + 8
        self._fi = np.zeros((self.P, self._fcap, E.N_FI), np.int64)
        self._ff = np.zeros((self.P, self._fcap, E.N_FF), np.float64)
        self._ecap = 8 * K + 16
        self._ei = np.zeros((self.P, self._ecap, E.N_EI), np.int64)
        self._series = np.zeros((E.N_SE, 1, self.P), np.float64)
        self._pos_dummy = np.zeros((1, 1, 1), np.float64)
        self._queue: list[np.ndarray] = []
        self._no_q = (np.zeros((0, E.N_QI), np.int64), np.zeros((0, E.N_QF), np.float64), np.zeros(self.P, np.int64))
        self._next_id = np.ones(self.P, np.int64)
        self._empty_fills = np.zeros(0, E.FILL_DTYPE)
        # record buffers written by pack_*_nb through plain int64/float64 views (all fields are 8 bytes)
        self._fill_vf = np.zeros((self.P * self._fcap, len(E.FILL_DTYPE.names or ())), np.float64)
        self._ev_vi = np.zeros((self.P * self._ecap, len(E.EVENT_DTYPE.names or ())), np.int64)
        self.bar = 0
        self.events: list[np.ndarray] = []
        self._kernel = kernel_for(self.device, 1)
        self._impact_on = self.models.impact_on
        self._no_sig = np.zeros(max(self.P, 1), np.bool_)
        self._bind_state()
        self._step_entry = _entry(stream_bar_nb)  # one compiled entry point, pre-bound state

    def _bind_state(self) -> None:
        """Move every per-step array into the flat buffers ``stream_bar_nb`` takes; the attributes
        become views into them, so the Python side (properties, snapshot, CUDA) sees the same memory."""
        st = self._st
        self._bound, v = _bind({
            "af": st.af, "pf": st.pf, "of": st.of, "ff": self._ff, "bars": self._bars, "sigma": self._sigma,
            "series": self._series, "mp": self._mp, "tiers": self._tiers, "sig_f": self._sig_f, "rng": st.rng,
            "var": self._var, "prev": self._prev, "lam": np.array([self._lam]), "pos": self._pos_dummy,
            "fillrec": self._fill_vf, "ai": st.ai, "oi": st.oi, "fi": self._fi, "ei": self._ei, "ts": self._ts,
            "mi": self._mi, "sig_i": self._sig_i, "oq_end": self._no_q[2], "evrec": self._ev_vi, "ent": self._ent,
            "ex": self._ex})
        st.af, st.pf, st.of, st.rng, st.ai, st.oi = v["af"], v["pf"], v["of"], v["rng"], v["ai"], v["oi"]
        self._ff, self._bars, self._sigma, self._series, self._mp = v["ff"], v["bars"], v["sigma"], v["series"], v["mp"]
        self._tiers, self._sig_f, self._var, self._prev, self._pos_dummy = v["tiers"], v["sig_f"], v["var"], \
            v["prev"], v["pos"]
        self._fi, self._ei, self._ts, self._mi, self._sig_i = v["fi"], v["ei"], v["ts"], v["mi"], v["sig_i"]
        self._oq_end, self._ent, self._ex = v["oq_end"], v["ent"], v["ex"]
        self._no_q = (self._no_q[0], self._no_q[1], self._oq_end)
        self._fill_vf, self._ev_vi = v["fillrec"], v["evrec"]
        self._fill_vi = self._fill_vf.view(np.int64)

    # ---- signals (optional: streaming twin of simulate_signals) ------------------------------
    def set_signals(self, symbol_of: np.ndarray, size_mode: str = "all_in", size: float | np.ndarray = 1.0,
                    short: bool = False, single_symbol: bool = True) -> None:
        """Let ``step(..., entries=, exits=)`` trade signals exactly as ``simulate_signals`` does."""
        self._sig_i[:, 0] = 1
        self._sig_i[:, 1] = np.asarray(symbol_of, np.int64)
        self._sig_i[:, 2] = SIZE_MODES[size_mode]
        self._sig_i[:, 3] = int(single_symbol)
        self._sig_f[:, 0] = np.broadcast_to(np.asarray(size, np.float64), (self.P,))
        self._mi[E.MI_ALLOW_SHORT] = int(short)

    # ---- instructions -------------------------------------------------------------------------
    def submit(self, orders: np.ndarray) -> np.ndarray:
        """Queue NEW/CANCEL/REPLACE records for the next bar; returns the order ids (assigned if 0).

        A bracket's stop-loss gets ``id + 1`` and its take-profit the next id."""
        o = np.array(orders, dtype=E.ORDER_DTYPE, copy=True).reshape(-1)
        o["bar"] = self.bar
        np.maximum(self._next_id, self._st.ai[:, E.AI_NEXT_ID], out=self._next_id)
        for r in o:
            if r["action"] == E.Action.NEW:
                p = int(r["portfolio"])
                if r["order_id"] <= 0:
                    r["order_id"] = self._next_id[p]
                n_child = int(r["sl_price"] > 0) + int(r["tp_price"] > 0)
                self._next_id[p] = max(self._next_id[p], int(r["order_id"]) + 1 + n_child)
        self._queue.append(o)
        return o["order_id"].copy()

    def submit_one(self, portfolio: int, **kw: Any) -> int:
        """Queue one instruction given as ``ORDER_DTYPE`` fields (``size_mode``: for ALL_IN/RISK/
        CLOSE ``qty`` is the sizing parameter -- RISK's equity fraction -- not a quantity)."""
        rec = np.zeros(1, E.ORDER_DTYPE)
        rec["portfolio"] = portfolio
        for k, v in kw.items():
            rec[k] = v
        return int(self.submit(rec)[0])

    def submit_market(self, portfolio: int, symbol: int, side: int, qty: float, *, tif: int = E.TimeInForce.GTC,
                      sl_price: float = 0.0, tp_price: float = 0.0, size_mode: int = E.SizeMode.QTY) -> int:
        return self.submit_one(portfolio, symbol=symbol, type=E.OrderType.MARKET, side=side, qty=qty, tif=tif,
                         sl_price=sl_price, tp_price=tp_price, size_mode=size_mode)

    def submit_limit(self, portfolio: int, symbol: int, side: int, qty: float, limit_price: float, *,
                     tif: int = E.TimeInForce.GTC, expire_bars: int = 0, expire_ts: int = 0,
                     sl_price: float = 0.0, tp_price: float = 0.0) -> int:
        return self.submit_one(portfolio, symbol=symbol, type=E.OrderType.LIMIT, side=side, qty=qty,
                         limit_price=limit_price, tif=tif, expire_bars=expire_bars, expire_ts=expire_ts,
                         sl_price=sl_price, tp_price=tp_price)

    def submit_stop(self, portfolio: int, symbol: int, side: int, qty: float, stop_price: float, *,
                    limit_price: float = 0.0, tif: int = E.TimeInForce.GTC) -> int:
        typ = E.OrderType.STOP_LIMIT if limit_price > 0 else E.OrderType.STOP
        return self.submit_one(portfolio, symbol=symbol, type=typ, side=side, qty=qty, stop_price=stop_price,
                         limit_price=limit_price, tif=tif)

    def submit_take_profit(self, portfolio: int, symbol: int, side: int, qty: float, price: float) -> int:
        return self.submit_one(portfolio, symbol=symbol, type=E.OrderType.TAKE_PROFIT, side=side, qty=qty, stop_price=price)

    def submit_trailing_stop(self, portfolio: int, symbol: int, side: int, qty: float, *, amount: float = 0.0,
                             pct: float = 0.0) -> int:
        typ = E.OrderType.TRAILING_STOP_PCT if pct > 0 else E.OrderType.TRAILING_STOP
        return self.submit_one(portfolio, symbol=symbol, type=typ, side=side, qty=qty, trail_amount=amount, trail_pct=pct)

    def cancel(self, portfolio: int, order_id: int) -> None:
        self.submit_one(portfolio, action=E.Action.CANCEL, order_id=order_id)

    def replace(self, portfolio: int, order_id: int, *, qty: float = 0.0, limit_price: float = 0.0,
                stop_price: float = 0.0) -> None:
        self.submit_one(portfolio, action=E.Action.REPLACE, order_id=order_id, qty=qty, limit_price=limit_price,
                  stop_price=stop_price)

    # ---- the bar ------------------------------------------------------------------------------
    def step(self, ts: int, open: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray,
             volume: np.ndarray, entries: np.ndarray | None = None, exits: np.ndarray | None = None) -> np.ndarray:
        """Process one bar for every portfolio; returns the fills of this bar (FILL_DTYPE)."""
        if self.device == "cpu" and not self._queue:
            # hot path: bar, signals, sigma and counter resets all happen inside one compiled call
            if entries is not None:
                ent_in = _b1(entries, self.P)
                ex_in = _b1(exits, self.P) if exits is not None else self._no_sig
                has_sig = True
            else:
                ent_in = ex_in = self._no_sig
                has_sig = False
            nf, ne, n_f, n_e = self._step_entry(ts, self.bar, _f64(open), _f64(high), _f64(low), _f64(close),
                                                _f64(volume), ent_in, ex_in, has_sig, True, *self._bound,
                                                self._no_q[0], self._no_q[1])
            return self._after_step(nf, ne, n_f, n_e)
        st = self._st
        if entries is not None:
            self._ent[0, :] = entries
            self._ex[0, :] = exits if exits is not None else False
        if self._queue:
            q = np.concatenate(self._queue)
            self._queue.clear()
            oq_i, oq_f, start, end = orders_to_queue(q, self.P)
            st.ai[:, E.AI_OQ] = start
            self._oq_end[:] = end
            reset = False
        else:
            oq_i, oq_f = self._no_q[0], self._no_q[1]
            reset = True
        n_f = n_e = -1  # the CUDA path packs on the host
        if self.device == "cpu":
            nf, ne, n_f, n_e = stream_bar_nb(ts, self.bar, _f64(open), _f64(high), _f64(low), _f64(close),
                                             _f64(volume), self._no_sig, self._no_sig, False, reset, *self._bound,
                                             oq_i, oq_f)
        else:
            if self._impact_on:
                row = np.asarray(close, np.float64).reshape(1, self.S).copy()
                self._sigma[...] = ewm_sigma_nb(row, self._lam, self._var, self._prev)
            b = self._bars
            for i_, a_ in enumerate((open, high, low, close, volume)):
                b[i_, 0, :] = a_
            self._ts[0] = ts
            if reset:
                st.ai[:, E.AI_OQ] = 0
            st.ai[:, E.AI_NFILL] = 0
            st.ai[:, E.AI_NEV] = 0
            self._kernel(1, self.bar, self._ts, tuple(b), self._sigma, self._ent, self._ex, self._sig_i,
                         self._sig_f, oq_i, oq_f, self._oq_end, self._mp, self._mi, st.rng, self._tiers, st.af,
                         st.ai, st.pf, st.oi, st.of, self._fi, self._ff, self._ei, self._series, self._pos_dummy)
            nf, ne = int(st.ai[:, E.AI_NFILL].max()), int(st.ai[:, E.AI_NEV].max())
        self._oq_end[:] = 0  # the queue is consumed: the hot path runs with an empty one
        return self._after_step(nf, ne, n_f, n_e)

    def _after_step(self, nf: int, ne: int, n_fills: int = -1, n_events: int = -1) -> np.ndarray:
        """This bar's events logged and fills returned; ``n_*`` = records the compiled step already
        packed (-1: pack them here)."""
        st = self._st
        self.bar += 1
        if ne:
            if ne > self._ecap:  # pragma: no cover - sized for the worst case
                raise RuntimeError("event buffer overflow")
            if n_events < 0:
                n_events = pack_events_nb(self._ei, st.ai, self._ev_vi)
            self.events.append(_records(self._ev_vi, n_events, E.EVENT_DTYPE))
        if not nf:
            return self._empty_fills
        if nf > self._fcap:  # pragma: no cover
            raise RuntimeError("fill buffer overflow")
        if n_fills < 0:
            n_fills = pack_fills_nb(self._fi, self._ff, st.ai, self._fill_vi, self._fill_vf)
        return _records(self._fill_vf, n_fills, E.FILL_DTYPE)

    # ---- state --------------------------------------------------------------------------------
    @property
    def cash(self) -> np.ndarray:
        return self._st.af[:, E.AF_CASH].copy()

    @property
    def positions(self) -> np.ndarray:
        """(P, S) signed quantities."""
        return self._st.pf[:, :, E.PF_QTY].copy()

    def cells(self, portfolios: np.ndarray, symbols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(quantity, last mark) of the book cells (portfolios[i], symbols[i]): what a caller that
        trades a few cells of a large (P, S) book reads, without copying the whole book."""
        pf = self._st.pf
        return pf[portfolios, symbols, E.PF_QTY], pf[portfolios, symbols, E.PF_LAST]

    @property
    def equity(self) -> np.ndarray:
        """(P,) cash + positions marked at the last close."""
        st = self._st
        return st.af[:, E.AF_CASH] + (st.pf[:, :, E.PF_QTY] * st.pf[:, :, E.PF_LAST]).sum(axis=1)

    def open_orders(self, portfolio: int) -> np.ndarray:
        """Order ids currently live (pending, active or waiting for a bracket parent)."""
        oi = self._st.oi[portfolio]
        return oi[oi[:, E.OI_STATUS] != E.OrderStatus.FREE, E.OI_ID].copy()

    def all_events(self) -> np.ndarray:
        return np.concatenate(self.events) if self.events else np.zeros(0, E.EVENT_DTYPE)

    def snapshot(self) -> dict[str, np.ndarray]:
        """Arrays that fully describe the engine (checkpoint), including instructions submitted
        since the last step; restore() brings it back bit for bit."""
        st = self._st
        return {"af": st.af.copy(), "ai": st.ai.copy(), "pf": st.pf.copy(), "oi": st.oi.copy(), "of": st.of.copy(),
                "rng": st.rng.copy(), "var": self._var.copy(), "prev": self._prev.copy(),
                "next_id": self._next_id.copy(), "bar": np.array([self.bar], np.int64),
                "mi": self._mi.copy(), "sig_i": self._sig_i.copy(), "sig_f": self._sig_f.copy(),
                "queue": np.concatenate(self._queue) if self._queue else np.zeros(0, E.ORDER_DTYPE),
                "model_hash": np.array([self.models.execution_model_hash()])}

    def restore(self, snap: dict[str, np.ndarray]) -> None:
        if str(snap["model_hash"][0]) != self.models.execution_model_hash():
            raise ValueError("snapshot was taken under a different MarketModel")
        st = self._st
        dst = {"af": st.af, "ai": st.ai, "pf": st.pf, "oi": st.oi, "of": st.of, "rng": st.rng, "var": self._var,
               "prev": self._prev, "mi": self._mi, "sig_i": self._sig_i, "sig_f": self._sig_f}
        for name, view in dst.items():  # into the bound buffers, in place
            if np.shape(snap[name]) != view.shape:
                raise ValueError(f"snapshot {name} has shape {np.shape(snap[name])}, the engine {view.shape}")
            view[...] = snap[name]
        self._next_id = snap["next_id"].copy()
        self.bar = int(snap["bar"][0])
        self._queue.clear()
        q = snap.get("queue")
        if q is not None and len(q):  # instructions sent after the last step, not yet arrived
            self._queue.append(np.array(q, dtype=E.ORDER_DTYPE, copy=True))


def _entry(dispatcher: Any) -> Any:
    """The compiled entry point of a dispatcher with one explicit signature: calling it skips the
    per-call type dispatch (~0.7 us); the caller guarantees argument types (``_f64`` / ``_b1``)."""
    try:
        return dispatcher.overloads[dispatcher.signatures[0]].entry_point
    except (AttributeError, IndexError, KeyError):  # pragma: no cover - other Numba internals: dispatch
        return dispatcher


def _records(rows: np.ndarray, n: int, dtype: np.dtype) -> np.ndarray:
    """The first ``n`` rows of a plain 8-byte record buffer as an owned, writable record array: one
    byte copy (~0.5 us; a structured-array ``copy()`` walks the fields, ~3 us for one fill)."""
    return np.frombuffer(bytearray(rows[:n]), dtype)


# NumPy's canonical dtype instances: ``a.dtype is _F64`` is ~10x cheaper than ``a.dtype == np.float64``
# (a bar calls these seven times); an equal but distinct dtype object just takes the copying path.
_F64, _BOOL = np.dtype(np.float64), np.dtype(np.bool_)


def _b1(a: Any, P: int) -> np.ndarray:
    """This bar's (P,) signal flags as a 1-D bool array (no copy when already one)."""
    if type(a) is np.ndarray and a.dtype is _BOOL and a.ndim == 1 and a.shape[0] == max(P, 1):
        return a
    out = np.zeros(max(P, 1), np.bool_)
    out[:P] = a
    return out


def _f64(a: Any) -> np.ndarray:
    """A (S,) bar field as a 1-D float64 array (no copy when already one)."""
    if type(a) is np.ndarray and a.dtype is _F64 and a.ndim == 1:
        return a
    return np.asarray(a, np.float64).reshape(-1)
