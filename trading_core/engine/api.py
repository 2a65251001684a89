"""Host side of the engine: shape inputs, size buffers, run one kernel call, wrap records once.

``simulate_signals`` / ``simulate_orders`` are the batch API (T bars in one kernel call);
``Engine`` is the streaming API (one bar per call) used by paper trading. Both drive the same
``run_portfolio_nb`` -> ``step_nb`` code, so they produce identical ledgers on identical bars.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np

from trading_core.engine import enums as E
from trading_core.engine import nb
from trading_core.engine.model import MarketModel
from trading_core.errors import InvalidInput

_SIZE_MODES = {"all_in": E.SizeMode.ALL_IN, "fixed": E.SizeMode.QTY, "risk": E.SizeMode.RISK}
_NO_DAY = -(1 << 40)


# ############# Results ############# #


@dataclass
class SimResult:
    """Everything one simulation produced; arrays are (T, P) unless stated."""

    fills: np.ndarray  # FILL_DTYPE, sorted by portfolio then execution order
    events: np.ndarray  # EVENT_DTYPE: the order log (accepted, rejected, canceled, expired, filled, ...)
    equity: np.ndarray
    cash: np.ndarray
    position: np.ndarray  # (T, P) traded symbol for signals; (T, P, S) for order streams
    final_equity: np.ndarray  # (P,)
    fees_paid: np.ndarray  # (P,)
    borrow_paid: np.ndarray  # (P,)
    model_hash: str
    device: str
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def rejections(self) -> np.ndarray:
        """Refused orders with their ``RejectReason`` code in ``reason``."""
        return self.events[self.events["kind"] == E.EventKind.REJECTED]

    @property
    def orders(self) -> np.ndarray:
        return self.events

    def trades(self, portfolio: int) -> list[Any]:
        """Round trips of one portfolio from its fills: the one builder (``trading.trips``), so a
        backtest, a paper session and this result agree on every trade."""
        from ..trading.trips import round_trips

        last = self.meta.get("last_close")
        return round_trips(self.fills[self.fills["portfolio"] == portfolio], last_close=last)

    def to_frames(self) -> dict[str, Any]:
        """pandas views: fills, events, equity, cash (index = bar), built once on demand."""
        import pandas as pd

        frames = {
            "fills": pd.DataFrame(self.fills),
            "events": pd.DataFrame(self.events),
            "equity": pd.DataFrame(self.equity),
            "cash": pd.DataFrame(self.cash),
        }
        if self.position.ndim == 2:
            frames["position"] = pd.DataFrame(self.position)
        return frames


# ############# State ############# #


@dataclass
class _State:
    af: np.ndarray
    ai: np.ndarray
    pf: np.ndarray
    oi: np.ndarray
    of: np.ndarray
    rng: np.ndarray


def _new_state(P: int, S: int, model: MarketModel, cash: float | np.ndarray, seed: int) -> _State:
    af = np.zeros((P, E.N_AF), np.float64)
    af[:, E.AF_CASH] = np.broadcast_to(np.asarray(cash, np.float64), (P,))
    ai = np.zeros((P, E.N_AI), np.int64)
    ai[:, E.AI_NEXT_ID] = 1
    ai[:, E.AI_DAY] = -1
    ai[:, E.AI_RATE_WIN] = -1
    ai[:, E.AI_DAYID:] = _NO_DAY
    K = model.max_open_orders
    rng = (np.random.default_rng(seed).random((P, model.rng_pool)) if model.uses_rng
           else np.zeros((P, 1), np.float64))
    return _State(af, ai, np.zeros((P, S, E.N_PF)), np.zeros((P, K, E.N_OI), np.int64),
                  np.zeros((P, K, E.N_OF)), rng)


def _bar_ms(ts: np.ndarray) -> float:
    if ts.shape[0] > 1:
        d = np.diff(ts)
        return float(np.median(d)) if d.size else 60_000.0
    return 60_000.0


def _stack_bars(open_, high, low, close, volume, planes: tuple[int, ...] = (0, 1, 2, 3, 4)) -> np.ndarray:
    """(5, T, S) bar planes (open, high, low, close, volume); planes not in ``planes`` stay zero
    (``np.zeros`` maps them lazily, so an unused plane costs neither time nor memory)."""
    close = np.asarray(close, np.float64)
    if close.ndim == 1:
        close = close[:, None]
    T, S = close.shape
    bars = np.zeros((E.N_B, T, S), np.float64)
    for i, a in enumerate((open_, high, low, close, volume)):
        if i in planes:
            bars[i] = np.asarray(a, np.float64).reshape(T, S)
    return bars


def _orders_to_queue(orders: np.ndarray, P: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """ORDER_DTYPE -> flat queue sorted (stably) by portfolio then bar; returns (oq_i, oq_f, start, end)."""
    orders = np.asarray(orders, dtype=E.ORDER_DTYPE)
    if orders.size and (orders["portfolio"].min() < 0 or orders["portfolio"].max() >= P):
        raise ValueError("orders.portfolio out of range")
    order = np.lexsort((orders["bar"], orders["portfolio"])) if orders.size else np.zeros(0, np.int64)
    o = orders[order]
    oq_i = np.zeros((o.size, E.N_QI), np.int64)
    oq_f = np.zeros((o.size, E.N_QF), np.float64)
    for col, name in ((E.QI_PORT, "portfolio"), (E.QI_BAR, "bar"), (E.QI_ACTION, "action"), (E.QI_ID, "order_id"),
                      (E.QI_SYM, "symbol"), (E.QI_TYPE, "type"), (E.QI_SIDE, "side"), (E.QI_TIF, "tif"),
                      (E.QI_SIZEMODE, "size_mode"), (E.QI_EXP_BARS, "expire_bars"), (E.QI_EXP_TS, "expire_ts")):
        oq_i[:, col] = o[name]
    for col, name in ((E.QF_QTY, "qty"), (E.QF_LIMIT, "limit_price"), (E.QF_STOP, "stop_price"),
                      (E.QF_TRAIL, "trail_amount"), (E.QF_TRAIL_PCT, "trail_pct"), (E.QF_SL, "sl_price"),
                      (E.QF_TP, "tp_price")):
        oq_f[:, col] = o[name]
    counts = np.bincount(o["portfolio"], minlength=P).astype(np.int64) if o.size else np.zeros(P, np.int64)
    end = np.cumsum(counts)
    start = end - counts
    return oq_i, oq_f, start, end


def _wrap_fills(fi: np.ndarray, ff: np.ndarray, n: np.ndarray) -> np.ndarray:
    _P, C = fi.shape[0], fi.shape[1]
    m = np.arange(C)[None, :] < np.minimum(n, C)[:, None]
    pi, ci = np.nonzero(m)
    out = np.empty(pi.size, E.FILL_DTYPE)
    out["portfolio"] = pi
    a, b = fi[pi, ci], ff[pi, ci]
    for name, col in (("symbol", E.FI_SYM), ("bar", E.FI_BAR), ("ts", E.FI_TS), ("order_id", E.FI_ID),
                      ("side", E.FI_SIDE), ("role", E.FI_ROLE), ("reason", E.FI_REASON), ("order_type", E.FI_TYPE)):
        out[name] = a[:, col]
    for name, col in (("qty", E.FF_QTY), ("price", E.FF_PRICE), ("fee", E.FF_FEE), ("slippage_cost", E.FF_SLIP)):
        out[name] = b[:, col]
    return out


def _pack_fills(fi: np.ndarray, ff: np.ndarray, ai: np.ndarray) -> np.ndarray:
    """Same records as ``_wrap_fills(fi, ff, ai[:, AI_NFILL])``, written by one compiled pass."""
    n = int(np.minimum(ai[:, E.AI_NFILL], fi.shape[1]).sum())
    out = np.empty(n, E.FILL_DTYPE)
    k = len(E.FILL_DTYPE.names or ())
    nb.pack_fills_nb(fi, ff, ai, out.view(np.int64).reshape(n, k), out.view(np.float64).reshape(n, k))
    return out


def _pack_events(ei: np.ndarray, ai: np.ndarray) -> np.ndarray:
    """Same records as ``_wrap_events(ei, ai[:, AI_NEV])``, written by one compiled pass."""
    n = int(np.minimum(ai[:, E.AI_NEV], ei.shape[1]).sum())
    out = np.empty(n, E.EVENT_DTYPE)
    nb.pack_events_nb(ei, ai, out.view(np.int64).reshape(n, len(E.EVENT_DTYPE.names or ())))
    return out


def _wrap_events(ei: np.ndarray, n: np.ndarray) -> np.ndarray:
    C = ei.shape[1]
    m = np.arange(C)[None, :] < np.minimum(n, C)[:, None]
    pi, ci = np.nonzero(m)
    out = np.empty(pi.size, E.EVENT_DTYPE)
    out["portfolio"] = pi
    a = ei[pi, ci]
    for name, col in (("symbol", E.EI_SYM), ("bar", E.EI_BAR), ("ts", E.EI_TS), ("order_id", E.EI_ID),
                      ("kind", E.EI_KIND), ("reason", E.EI_REASON)):
        out[name] = a[:, col]
    return out


# ############# Device selection ############# #


def _simulator_on() -> bool:
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


def cuda_unavailable_reason() -> str | None:
    """Why no real CUDA device is usable, in one line; None when one is (or the simulator is on)."""
    if _simulator_on():
        return None
    try:
        from numba import cuda

        if cuda.is_available():
            return None
        from numba.cuda.cudadrv.driver import driver

        err = getattr(driver, "initialization_error", None)
    except Exception as e:  # noqa: BLE001 - driver problems mean "no GPU"; say which
        err = str(e) or type(e).__name__
    first = next((line.strip() for line in str(err or "").splitlines() if line.strip()), "")
    return first or "no CUDA device found"


def cuda_available() -> bool:
    """A real CUDA device (never the simulator) is usable."""
    return not _simulator_on() and cuda_unavailable_reason() is None


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when a real GPU is present, else 'cpu'; 'cuda' is honoured when a GPU is
    usable or the CUDA simulator is on, and otherwise refused with ``InvalidInput`` saying why."""
    if device == "auto":
        return "cuda" if cuda_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise InvalidInput(f"device must be auto|cpu|cuda, got {device!r}")
    if device == "cuda":
        reason = cuda_unavailable_reason()
        if reason is not None:
            raise InvalidInput(f"device cuda requested but no usable CUDA GPU: {reason}")
    return device


def _kernel(device: str, P: int) -> Callable[..., None]:
    if device == "cuda":
        from trading_core.engine.cuda import simulate_cuda

        return simulate_cuda
    return nb.simulate_parallel_nb if P > 1 else nb.simulate_serial_nb


# ############# Batch ############# #


def _run_batch(ts, bars, entries, exits, sig_i, sig_f, orders, model: MarketModel, cash, seed: int, device: str,
               allow_short: bool, pos_series_on: bool, save_series: bool, P: int, fill_cap: int,
               ev_cap: int) -> SimResult:
    T, S = bars.shape[1], bars.shape[2]
    bar_ms = _bar_ms(ts)
    mp, mi, tiers = model.to_arrays(bar_ms, allow_short=allow_short)
    mi[E.MI_SERIES] = int(save_series)
    mi[E.MI_POS_SERIES] = int(pos_series_on and save_series)
    mi[E.MI_N_BLOCKS] = 4 * numba.get_num_threads()
    mi[E.MI_SIMPLE] = int(model.fill_at == "close" and model.latency_kind == "none" and model.participation_rate == 0
                          and len(model.fee_tiers) == 1 and (mp[E.MP_BORROW] == 0.0 or not allow_short))
    if model.impact_coef > 0:
        sigma = nb.ewm_sigma_nb(np.ascontiguousarray(bars[E.B_CLOSE]), model.vol_lambda(),
                                np.zeros(S), np.zeros(S))
    else:
        sigma = np.zeros((1, 1))
    oq_i, oq_f, start, end = _orders_to_queue(orders if orders is not None else np.zeros(0, E.ORDER_DTYPE), P)
    dev = resolve_device(device)
    while True:
        st = _new_state(P, S, model, cash, seed)
        st.ai[:, E.AI_OQ] = start
        fi = np.zeros((P, fill_cap, E.N_FI), np.int64)
        ff = np.zeros((P, fill_cap, E.N_FF), np.float64)
        ei = np.zeros((P, ev_cap, E.N_EI), np.int64)
        series = np.zeros((E.N_SE, T if save_series else 1, P), np.float64)
        pos_series = np.zeros((T, P, S) if mi[E.MI_POS_SERIES] else (1, 1, 1), np.float64)
        _kernel(dev, P)(T, 0, ts, bars, sigma, entries, exits, sig_i, sig_f, oq_i, oq_f, end, mp, mi, st.rng,
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
        fills=_pack_fills(fi, ff, st.ai), events=_pack_events(ei, st.ai),
        equity=series[E.SE_EQUITY], cash=series[E.SE_CASH],
        position=pos_series if mi[E.MI_POS_SERIES] else series[E.SE_POS],
        final_equity=final_eq, fees_paid=st.af[:, E.AF_FEES].copy(), borrow_paid=st.af[:, E.AF_BORROW].copy(),
        model_hash=model.execution_model_hash(), device=dev,
        meta={"bar_ms": bar_ms, "fill_cap": fill_cap, "simple_path": bool(mi[E.MI_SIMPLE])},
    )


def simulate_signals(ts: np.ndarray, open: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray,
                     volume: np.ndarray, *, entries: np.ndarray, exits: np.ndarray, symbol_of: np.ndarray | None = None,
                     model: MarketModel | None = None, cash: float | np.ndarray = 100_000.0,
                     size_mode: str = "all_in", size: float | np.ndarray = 1.0, short: bool = False,
                     device: str = "auto", seed: int = 0, save_series: bool = True) -> SimResult:
    """Backtest P signal portfolios in one kernel call.

    Signals at bar t are decided at t's close and fill at that close (``model.fill_at="close"``,
    vectorbt's assumption) or at the next bar's open (``"next_open"``), never earlier. An entry
    and an exit on the same bar cancel out. ``short=True`` makes exits reverse into a short.
    """
    model = model or MarketModel()
    ts = np.ascontiguousarray(ts, np.int64)
    planes: tuple[int, ...] = (0, 1, 2, 3, 4)
    if model.fill_at == "close" and model.latency_kind == "none" and model.participation_rate == 0:
        # signals fill at once at the close and never rest: open/high/low are never read, volume only
        # by the impact term
        planes = (3, 4) if model.impact_coef > 0 else (3,)
    bars = _stack_bars(open, high, low, close, volume, planes)
    T, S = bars.shape[1], bars.shape[2]
    entries = np.ascontiguousarray(entries, np.bool_)
    exits = np.ascontiguousarray(exits, np.bool_)
    if entries.ndim == 1:
        entries, exits = entries[:, None], exits[:, None]
    if entries.shape != exits.shape or entries.shape[0] != T:
        raise ValueError(f"entries/exits must be (T={T}, P) and equal, got {entries.shape} and {exits.shape}")
    P = entries.shape[1]
    symbol_of = np.zeros(P, np.int64) if symbol_of is None else np.asarray(symbol_of, np.int64)
    if symbol_of.shape != (P,) or (P and (symbol_of.min() < 0 or symbol_of.max() >= S)):
        raise ValueError("symbol_of must be (P,) with values in [0, S)")
    if size_mode not in _SIZE_MODES:
        raise ValueError(f"size_mode must be one of {sorted(_SIZE_MODES)}")
    sig_i = np.zeros((P, 4), np.int64)
    sig_i[:, 0] = 1
    sig_i[:, 1] = symbol_of
    sig_i[:, 2] = _SIZE_MODES[size_mode]
    sig_i[:, 3] = 1
    sig_f = np.zeros((P, 1), np.float64)
    sig_f[:, 0] = np.broadcast_to(np.asarray(size, np.float64), (P,))
    n_sig = int((entries.sum(axis=0) + exits.sum(axis=0)).max(initial=0))
    return _run_batch(ts, bars, entries, exits, sig_i, sig_f, None, model, cash, seed, device, short, False,
                      save_series, P, 2 * n_sig + 16, 8 * n_sig + 16)


def simulate_orders(ts: np.ndarray, open: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray,
                    volume: np.ndarray, *, orders: np.ndarray, n_portfolios: int, model: MarketModel | None = None,
                    cash: float | np.ndarray = 100_000.0, device: str = "auto", seed: int = 0) -> SimResult:
    """Batch-run an order stream (ORDER_DTYPE; ``bar`` = first bar each instruction acts on)."""
    model = model or MarketModel()
    ts = np.ascontiguousarray(ts, np.int64)
    bars = _stack_bars(open, high, low, close, volume)
    P = int(n_portfolios)
    sig_i = np.zeros((P, 4), np.int64)
    sig_f = np.zeros((P, 1), np.float64)
    dummy = np.zeros((1, 1), np.bool_)
    n = len(orders)
    return _run_batch(ts, bars, dummy, dummy, sig_i, sig_f, orders, model, cash, seed, device, model.allow_short,
                      True, True, P, 4 * n + 16, 8 * n + 16)


# ############# Streaming ############# #


class Engine:
    """Streaming engine: submit/cancel/replace between bars, ``step`` one bar, get that bar's fills.

    Instructions submitted before ``step(bar)`` arrive before that bar's open (``bar`` field =
    the engine's next bar index). Uses the same kernel as the batch API on a one-bar window.
    """

    def __init__(self, n_portfolios: int, n_symbols: int, model: MarketModel | None = None,
                 cash: float | np.ndarray = 100_000.0, seed: int = 0, device: str = "cpu",
                 bar_ms: float = 60_000.0) -> None:
        self.model = model or MarketModel()
        self.P, self.S = int(n_portfolios), int(n_symbols)
        self.seed = seed
        self.device = resolve_device(device)
        self._mp, self._mi, self._tiers = self.model.to_arrays(bar_ms)
        self._mi[E.MI_POS_SERIES] = 0
        self._st = _new_state(self.P, self.S, self.model, cash, seed)
        self._sig_i = np.zeros((self.P, 4), np.int64)
        self._sig_f = np.zeros((self.P, 1), np.float64)
        self._ent = np.zeros((1, max(self.P, 1)), np.bool_)
        self._ex = np.zeros((1, max(self.P, 1)), np.bool_)
        self._bars = np.zeros((E.N_B, 1, self.S), np.float64)
        self._ts = np.zeros(1, np.int64)
        self._var = np.zeros(self.S)
        self._prev = np.zeros(self.S)
        self._sigma = np.zeros((1, 1))
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
        # record buffers written by nb.pack_*_nb through plain int64/float64 views (all fields are 8 bytes)
        self._fill_rec = np.zeros(self.P * self._fcap, E.FILL_DTYPE)
        self._fill_vi = self._fill_rec.view(np.int64).reshape(-1, len(E.FILL_DTYPE.names or ()))
        self._fill_vf = self._fill_rec.view(np.float64).reshape(-1, len(E.FILL_DTYPE.names or ()))
        self._ev_rec = np.zeros(self.P * self._ecap, E.EVENT_DTYPE)
        self._ev_vi = self._ev_rec.view(np.int64).reshape(-1, len(E.EVENT_DTYPE.names or ()))
        self.bar = 0
        self.events: list[np.ndarray] = []
        self._kernel = _kernel(self.device, 1)
        self._impact_on = bool(self._mp[E.MP_IMPACT] > 0.0)
        self._no_sig = np.zeros(max(self.P, 1), np.bool_)

    # ---- signals (optional: streaming twin of simulate_signals) ------------------------------
    def set_signals(self, symbol_of: np.ndarray, size_mode: str = "all_in", size: float | np.ndarray = 1.0,
                    short: bool = False, single_symbol: bool = True) -> None:
        """Let ``step(..., entries=, exits=)`` trade signals exactly as ``simulate_signals`` does."""
        self._sig_i[:, 0] = 1
        self._sig_i[:, 1] = np.asarray(symbol_of, np.int64)
        self._sig_i[:, 2] = _SIZE_MODES[size_mode]
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
        st = self._st
        if self._impact_on:
            row = np.asarray(close, np.float64).reshape(1, self.S).copy()
            self._sigma = nb.ewm_sigma_nb(row, self._lam, self._var, self._prev)
        if self.device == "cpu" and not self._queue:
            # hot path: the per-step copies (bar, signals, counter resets) happen inside one compiled call
            has_sig = entries is not None
            if has_sig:
                ent_in = _b1(entries, self.P)
                ex_in = _b1(exits, self.P) if exits is not None else self._no_sig
            else:
                ent_in = ex_in = self._no_sig
            nf, ne = nb.stream_step_nb(
                ts, _f64(open), _f64(high), _f64(low), _f64(close), _f64(volume), ent_in, ex_in, has_sig, True,
                self.bar, self._ts, self._bars, self._sigma, self._ent, self._ex, self._sig_i, self._sig_f,
                *self._no_q, self._mp, self._mi, st.rng, self._tiers, st.af, st.ai, st.pf, st.oi, st.of, self._fi,
                self._ff, self._ei, self._series, self._pos_dummy)
            return self._after_step(nf, ne)
        if entries is not None:
            self._ent[0, :] = entries
            self._ex[0, :] = exits if exits is not None else False
        if self._queue:
            q = np.concatenate(self._queue)
            self._queue.clear()
            oq_i, oq_f, start, end = _orders_to_queue(q, self.P)
            st.ai[:, E.AI_OQ] = start
            reset = False
        else:
            oq_i, oq_f, end = self._no_q
            reset = True
        if self.device == "cpu":
            nf, ne = nb.stream_step_nb(
                ts, _f64(open), _f64(high), _f64(low), _f64(close), _f64(volume), self._no_sig, self._no_sig,
                False, reset, self.bar, self._ts,
                self._bars, self._sigma, self._ent, self._ex, self._sig_i, self._sig_f, oq_i, oq_f, end, self._mp,
                self._mi, st.rng, self._tiers, st.af, st.ai, st.pf, st.oi, st.of, self._fi, self._ff, self._ei,
                self._series, self._pos_dummy)
        else:
            b = self._bars
            for i_, a_ in enumerate((open, high, low, close, volume)):
                b[i_, 0, :] = a_
            self._ts[0] = ts
            if reset:
                st.ai[:, E.AI_OQ] = 0
            st.ai[:, E.AI_NFILL] = 0
            st.ai[:, E.AI_NEV] = 0
            self._kernel(1, self.bar, self._ts, b, self._sigma, self._ent, self._ex, self._sig_i, self._sig_f, oq_i,
                         oq_f, end, self._mp, self._mi, st.rng, self._tiers, st.af, st.ai, st.pf, st.oi, st.of,
                         self._fi, self._ff, self._ei, self._series, self._pos_dummy)
            nf, ne = int(st.ai[:, E.AI_NFILL].max()), int(st.ai[:, E.AI_NEV].max())
        return self._after_step(nf, ne)

    def _after_step(self, nf: int, ne: int) -> np.ndarray:
        st = self._st
        self.bar += 1
        if ne:
            if ne > self._ecap:  # pragma: no cover - sized for the worst case
                raise RuntimeError("event buffer overflow")
            n = nb.pack_events_nb(self._ei, st.ai, self._ev_vi)
            self.events.append(self._ev_rec[:n].copy())
        if not nf:
            return self._empty_fills
        if nf > self._fcap:  # pragma: no cover
            raise RuntimeError("fill buffer overflow")
        n = nb.pack_fills_nb(self._fi, self._ff, st.ai, self._fill_vi, self._fill_vf)
        return self._fill_rec[:n].copy()

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
                "model_hash": np.array([self.model.execution_model_hash()])}

    def restore(self, snap: dict[str, np.ndarray]) -> None:
        if str(snap["model_hash"][0]) != self.model.execution_model_hash():
            raise ValueError("snapshot was taken under a different MarketModel")
        st = self._st
        for name in ("af", "ai", "pf", "oi", "of", "rng"):
            setattr(st, name, np.array(snap[name], copy=True))
        self._var, self._prev = snap["var"].copy(), snap["prev"].copy()
        self._next_id = snap["next_id"].copy()
        self._mi, self._sig_i, self._sig_f = snap["mi"].copy(), snap["sig_i"].copy(), snap["sig_f"].copy()
        self.bar = int(snap["bar"][0])
        self._queue.clear()
        q = snap.get("queue")
        if q is not None and len(q):  # instructions sent after the last step, not yet arrived
            self._queue.append(np.array(q, dtype=E.ORDER_DTYPE, copy=True))


def _b1(a: Any, P: int) -> np.ndarray:
    """This bar's (P,) signal flags as a bool array (no copy when already one)."""
    if type(a) is np.ndarray and a.dtype == np.bool_ and a.shape == (P,):
        return a
    out = np.zeros(max(P, 1), np.bool_)
    out[:P] = a
    return out


def _f64(a: Any) -> np.ndarray:
    if type(a) is np.ndarray and a.dtype == np.float64:
        return a
    return np.asarray(a, np.float64).reshape(-1)


# ############# Warm-up ############# #


def warmup(device: str = "cpu") -> None:
    """Compile (or load from cache) every kernel on tiny inputs so a paper session's first bar is fast."""
    T, P = 4, 2
    ts = np.arange(T, dtype=np.int64) * 60_000
    c = np.full((T, 1), 100.0)
    ent = np.zeros((T, P), np.bool_)
    ent[0] = True
    ex = np.zeros((T, P), np.bool_)
    ex[2] = True
    for m in (MarketModel(fill_at="close"), MarketModel(participation_rate=0.5, impact_coef=0.1)):
        simulate_signals(ts, c, c, c, c, c * 10, entries=ent, exits=ex, model=m, device=device)
        simulate_signals(ts, c, c, c, c, c * 10, entries=ent[:, :1], exits=ex[:, :1], model=m, device=device)
    eng = Engine(1, 1, MarketModel(), device=device)
    eng.submit_limit(0, 0, E.Side.BUY, 1.0, 99.0)
    one = np.ones(1)
    eng.step(0, 100.0 * one, 101.0 * one, 98.0 * one, 100.0 * one, 1e6 * one)
