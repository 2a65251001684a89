"""Pre-trade order verification: the checks between a strategy's orders and the engine.

One rule, two forms. ``check_order_nb`` is the scalar rule, compiled with ``numba.njit``;
``verify_orders`` runs it in a compiled loop over arrays of proposed orders (a backtest checks
every bar's orders in one call) and ``verify_order`` runs the same function on one order (paper
trading). There is no second implementation to drift apart.

Checks run in a fixed order and the first failure is the reason (NautilusTrader's
``_check_order``): symbol known -> quantity valid -> price valid -> trading state (halted,
reduce-only) -> market filter (entries paused) -> price within ``max_price_deviation`` of the
last price -> quantity within ``max_adv_fraction`` of the average daily volume. A refused order
is a reason code, never an exception: a backtest over many bars must not stop on one bad order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numba
import numpy as np
import polars as pl

from .codes import RiskReason, TradingState, decision_of, reason_name
from .config import OrderLimits

__all__ = [
    "check_order_nb", "verify_orders", "verify_order", "verify_order_records", "OrderCheck",
    "Verification", "average_daily_volume", "adv_asof", "BUY", "SELL",
]

BUY, SELL = 0, 1  # the engine's Side codes

_OK = RiskReason.NONE
_UNKNOWN = RiskReason.UNKNOWN_SYMBOL
_BAD_QTY = RiskReason.INVALID_QUANTITY
_BAD_PX = RiskReason.INVALID_PRICE
_DEV = RiskReason.PRICE_DEVIATION
_ADV = RiskReason.ADV_EXCEEDED
_NO_ADV = RiskReason.NO_VOLUME_HISTORY
_HALT = RiskReason.TRADING_HALTED
_REDUCE = RiskReason.REDUCE_ONLY
_FILTER = RiskReason.MARKET_FILTER
_ST_REDUCE = TradingState.REDUCE_ONLY
_ST_HALT = TradingState.HALTED
_TOL = 1e-12  # a limit hit exactly (10.0 % away) passes; float noise must not flip it


@numba.njit(cache=True)
def reduces_position_nb(side: int, qty: float, position: float) -> bool:
    """True when the order only shrinks the current position (never opens, adds or flips)."""
    if position > 0.0:
        return side == SELL and qty <= position * (1.0 + _TOL)
    if position < 0.0:
        return side == BUY and qty <= -position * (1.0 + _TOL)
    return False


@numba.njit(cache=True)
def check_order_nb(symbol: int, n_symbols: int, side: int, qty: float, price: float,
                   last_price: float, adv: float, position: float, state: int,
                   entries_paused: bool, max_price_deviation: float, max_adv_fraction: float,
                   require_adv: bool) -> int:
    """Reason code of one order (0 = passes). Scalar, allocation-free, usable in any kernel."""
    if symbol < 0 or symbol >= n_symbols or not (last_price > 0.0) or not math.isfinite(last_price):
        return _UNKNOWN
    if not (qty > 0.0) or not math.isfinite(qty):
        return _BAD_QTY
    if not (price > 0.0) or not math.isfinite(price):
        return _BAD_PX
    if state == _ST_HALT:
        return _HALT
    reducing = reduces_position_nb(side, qty, position)
    if state == _ST_REDUCE and not reducing:
        return _REDUCE
    if entries_paused and not reducing:
        return _FILTER
    if abs(price / last_price - 1.0) > max_price_deviation + _TOL:
        return _DEV
    if not (adv > 0.0) or not math.isfinite(adv):
        if require_adv:
            return _NO_ADV
        return _OK
    if qty > max_adv_fraction * adv * (1.0 + _TOL):
        return _ADV
    return _OK


@numba.njit(cache=True)
def _verify_nb(symbol: np.ndarray, bar: np.ndarray, side: np.ndarray, qty: np.ndarray, price: np.ndarray,
               position: np.ndarray, state: np.ndarray, paused: np.ndarray, last_price: np.ndarray,
               adv: np.ndarray, max_dev: float, max_adv: float, require_adv: bool) -> np.ndarray:
    n = symbol.shape[0]
    n_rows, n_symbols = last_price.shape
    out = np.zeros(n, np.int64)
    for i in range(n):
        s = symbol[i]
        b = bar[i]
        ok_sym = 0 <= s < n_symbols and 0 <= b < n_rows
        lp = last_price[b, s] if ok_sym else np.nan
        a = adv[b, s] if ok_sym else np.nan
        out[i] = check_order_nb(s, n_symbols, side[i], qty[i], price[i], lp, a, position[i],
                                state[i], paused[i], max_dev, max_adv, require_adv)
    return out


@dataclass(frozen=True)
class Verification:
    """Reasons of a batch of orders; ``allowed`` is the mask of what may reach the engine."""

    reason: np.ndarray  # int64 per order, RiskReason codes

    @property
    def allowed(self) -> np.ndarray:
        return self.reason == RiskReason.NONE

    @property
    def n_rejected(self) -> int:
        return int((~self.allowed).sum())

    def names(self) -> list[str]:
        return [reason_name(r) for r in self.reason]

    def decisions(self) -> list[str]:
        return [decision_of(r) for r in self.reason]


def _per_order(v: Any, n: int, dtype: Any, name: str) -> np.ndarray:
    a = np.asarray(v, dtype=dtype)
    if a.ndim == 0:
        return np.full(n, a.item(), dtype=dtype)
    if a.shape != (n,):
        raise ValueError(f"{name} must be a scalar or have one value per order ({n}), got {a.shape}")
    return np.ascontiguousarray(a)


def verify_orders(symbol: np.ndarray, side: np.ndarray, qty: np.ndarray, price: np.ndarray, *,
                  last_price: np.ndarray, adv: np.ndarray, limits: OrderLimits | None = None,
                  position: np.ndarray | float = 0.0, state: np.ndarray | int = TradingState.ACTIVE,
                  entries_paused: np.ndarray | bool = False, bar: np.ndarray | None = None) -> Verification:
    """Check N proposed orders at once; nothing is dropped, every order gets a reason code.

    ``last_price``/``adv`` are (S,) arrays for one decision point, or (T, S) arrays for orders
    spread over many bars, in which case ``bar`` (one row index per order) picks the row: row b
    must hold what is known when orders for bar b are checked (e.g. the close of bar b-1), never
    bar b's own close. ``symbol`` indexes the columns; ADV is in the same units as ``qty``. ``price`` is the order's price: the limit/stop price, or the
    expected fill price (usually ``last_price``) for a market order. ``position`` (the signed
    position in the order's symbol before it), ``state`` (``TradingState`` code) and
    ``entries_paused`` are scalars or one value per order. Orders of one batch are judged
    against the same position; submit them bar by bar if they must see each other.
    """
    limits = limits or OrderLimits()
    sym = np.ascontiguousarray(np.asarray(symbol, dtype=np.int64))
    n = sym.shape[0]
    lp, av = _table(last_price, "last_price"), _table(adv, "adv")
    if lp.shape != av.shape:
        raise ValueError(f"last_price {lp.shape} and adv {av.shape} must have the same shape")
    if np.ndim(last_price) == 2 and bar is None:
        raise ValueError("2-D last_price/adv need `bar`: the row of each order")
    rows = np.zeros(n, np.int64) if bar is None else _per_order(bar, n, np.int64, "bar")
    reason = _verify_nb(
        sym, rows, _per_order(side, n, np.int64, "side"), _per_order(qty, n, np.float64, "qty"),
        _per_order(price, n, np.float64, "price"), _per_order(position, n, np.float64, "position"),
        _per_order(state, n, np.int64, "state"), _per_order(entries_paused, n, np.bool_, "entries_paused"),
        lp, av, float(limits.max_price_deviation), float(limits.max_adv_fraction),
        bool(limits.require_volume_history),
    )
    return Verification(reason)


def _table(a: Any, name: str) -> np.ndarray:
    t = np.asarray(a, dtype=np.float64)
    if t.ndim == 1:
        t = t[None, :]
    if t.ndim != 2:
        raise ValueError(f"{name} must be (S,) or (T, S), got shape {t.shape}")
    return np.ascontiguousarray(t)


@dataclass(frozen=True)
class OrderCheck:
    """The verdict on one order (paper trading): reason code, its name and the decision kind."""

    reason: int

    @property
    def allowed(self) -> bool:
        return self.reason == RiskReason.NONE

    @property
    def reason_name(self) -> str:
        return reason_name(self.reason)

    @property
    def decision(self) -> str:
        return decision_of(self.reason)


def verify_order(symbol: int, side: int, qty: float, price: float, *, last_price: np.ndarray,
                 adv: np.ndarray, limits: OrderLimits | None = None, position: float = 0.0,
                 state: int = TradingState.ACTIVE, entries_paused: bool = False) -> OrderCheck:
    """Check one order with exactly the rule ``verify_orders`` uses (paper trading's path)."""
    limits = limits or OrderLimits()
    last = np.asarray(last_price, dtype=np.float64).ravel()
    adv_a = np.asarray(adv, dtype=np.float64).ravel()
    n_symbols = last.shape[0]
    ok = 0 <= symbol < n_symbols
    code = check_order_nb(int(symbol), n_symbols, int(side), float(qty), float(price),
                          float(last[symbol]) if ok else math.nan,
                          float(adv_a[symbol]) if ok else math.nan, float(position), int(state),
                          bool(entries_paused), float(limits.max_price_deviation),
                          float(limits.max_adv_fraction), bool(limits.require_volume_history))
    return OrderCheck(int(code))


def verify_order_records(orders: np.ndarray, *, last_price: np.ndarray, adv: np.ndarray,
                         limits: OrderLimits | None = None, positions: np.ndarray | None = None,
                         state: np.ndarray | int = TradingState.ACTIVE,
                         entries_paused: np.ndarray | bool = False) -> Verification:
    """Check engine order records (``trading_core.engine.ORDER_DTYPE``) before ``simulate_orders``.

    The price judged is ``limit_price`` for limit orders, ``stop_price`` for stop orders and the
    last price for market-type orders (market, trailing, market-on-close). CANCEL actions always
    pass (they only remove risk); a REPLACE is checked on the fields it changes (0 = unchanged).
    Orders whose ``size_mode`` is not a plain quantity are sized by the engine at fill: only their
    symbol, state and filter are checked here, so size them with ``trading_core.risk.sizing``
    first when the ADV limit must hold. ``positions`` is (P, S) signed quantities (default flat).
    ``last_price``/``adv`` may be (T, S): each order then uses row ``orders["bar"]`` (see
    ``verify_orders`` -- row b holds what is known before bar b opens).
    """
    from ..engine import enums as E  # the record layout belongs to the engine

    limits = limits or OrderLimits()
    last = _table(last_price, "last_price")
    n, n_sym = orders.shape[0], last.shape[1]
    sym = orders["symbol"].astype(np.int64)
    rows = orders["bar"].astype(np.int64) if np.ndim(last_price) == 2 else np.zeros(n, np.int64)
    ok = (sym >= 0) & (sym < n_sym) & (rows >= 0) & (rows < last.shape[0])
    ref = np.full(n, np.nan)
    ref[ok] = last[rows[ok], sym[ok]]
    typ = orders["type"].astype(np.int64)
    price = ref.copy()
    is_limit = (typ == E.OrderType.LIMIT) | (typ == E.OrderType.STOP_LIMIT)
    is_stop = (typ == E.OrderType.STOP) | (typ == E.OrderType.TAKE_PROFIT)
    price[is_limit] = orders["limit_price"][is_limit]
    price[is_stop] = orders["stop_price"][is_stop]
    qty = orders["qty"].astype(np.float64).copy()
    action = orders["action"].astype(np.int64)
    sized_later = orders["size_mode"] != E.SizeMode.QTY
    replace = action == E.Action.REPLACE
    # Fields a REPLACE leaves unchanged, and sizes the engine decides, are not judged here: a
    # neutral value (the last price, a tiny quantity) makes those checks pass.
    keep_px = replace & (price == 0.0)
    price[keep_px] = ref[keep_px]
    neutral_qty = sized_later | (replace & (qty == 0.0))
    qty[neutral_qty] = np.finfo(np.float64).tiny
    if positions is None:
        pos = np.zeros(n)
    else:
        p = np.asarray(positions, dtype=np.float64)
        in_p = (sym >= 0) & (sym < p.shape[1])
        pos = np.where(in_p, p[orders["portfolio"].astype(np.int64), np.clip(sym, 0, p.shape[1] - 1)], 0.0)
    pos = np.where(orders["size_mode"] == E.SizeMode.CLOSE, np.where(orders["side"] == BUY, -1.0, 1.0)
                   * np.finfo(np.float64).max, pos)  # a CLOSE order reduces by definition
    res = verify_orders(sym, orders["side"], qty, price, last_price=last, adv=_table(adv, "adv"),
                        limits=limits, position=pos, state=state, entries_paused=entries_paused, bar=rows)
    reason = res.reason.copy()
    reason[action == E.Action.CANCEL] = RiskReason.NONE
    return Verification(reason)


def average_daily_volume(bars: pl.DataFrame, window_days: int = 20) -> pl.DataFrame:
    """ADV known at the start of each UTC day: the mean volume of the ``window_days`` days before.

    Intraday bars are summed per day first. Day D's own volume is excluded (it is not complete
    when D's orders are checked), so the value has no look-ahead. Returns ``day`` (Date) and
    ``adv`` (null until one full day of history exists).
    """
    daily = (bars.lazy().select(pl.col("ts").dt.date().alias("day"), "volume")
             .group_by("day").agg(pl.col("volume").sum()).sort("day"))
    return daily.select(
        "day",
        pl.col("volume").rolling_mean(window_size=window_days, min_samples=1).shift(1).alias("adv"),
    ).collect()


def adv_asof(bars: pl.DataFrame, ts: list[datetime] | pl.Series, window_days: int = 20) -> np.ndarray:
    """ADV in force at each decision timestamp (the value of that timestamp's UTC day; NaN if none)."""
    adv = average_daily_volume(bars, window_days)
    days = pl.DataFrame({"ts": ts}).with_columns(
        pl.col("ts").cast(pl.Datetime("ms", "UTC")).dt.date().alias("day"))
    out = days.join(adv, on="day", how="left")
    return out["adv"].fill_null(float("nan")).to_numpy().astype(np.float64)
