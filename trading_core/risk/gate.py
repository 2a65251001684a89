"""The risk gate: strategies -> gate -> engine, with every decision kept for the audit table.

``RiskGate.review`` is the paper-trading path (a few orders per bar, names not indices): it reads
the breaker state, applies correlation-aware resizing, runs the same order checks as a backtest
(``verify_orders``) and returns one ``RiskDecision`` per order; only decisions with
``approved_qty > 0`` go on to the engine. ``decision_frame`` builds audit rows for a whole
backtest batch (``verify_order_records`` output) without a Python loop over orders.
``flush`` writes the pending decisions and breaker changes to the warehouse.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from ..errors import InvalidInput
from .breakers import CircuitBreakers
from .codes import STATE_NAMES, RiskReason, TradingState, decision_of, reason_name
from .config import RiskConfig
from .orders import reduces_position_nb, verify_orders
from .sizing import correlation_scale

__all__ = ["OrderRequest", "RiskDecision", "RiskGate", "decision_frame"]


@dataclass(frozen=True)
class OrderRequest:
    """A strategy's proposed order. ``price``: limit/stop price, or the expected fill for a
    market order. ``correlations``/``exposures``: the symbol's correlation with, and the signed
    notional/equity of, each open position (empty = no correlation scaling)."""

    symbol: str
    side: int  # 0 buy, 1 sell (engine Side)
    qty: float
    price: float
    strategy: str = "default"
    portfolio: str = "0"
    order_ref: int = 0
    correlations: tuple[float, ...] = ()
    exposures: tuple[float, ...] = ()


@dataclass(frozen=True)
class RiskDecision:
    """What the gate decided on one order, and everything it looked at."""

    order: OrderRequest
    approved_qty: float
    reason: int
    state: int
    inputs: dict[str, Any] = field(default_factory=dict)

    @property
    def allowed(self) -> bool:
        return self.approved_qty > 0 and self.reason in (RiskReason.NONE, RiskReason.RESIZED)

    @property
    def decision(self) -> str:
        return decision_of(self.reason)

    @property
    def reason_name(self) -> str:
        return reason_name(self.reason)

    def to_row(self, *, run_id: str, context: str, ts: datetime) -> dict[str, Any]:
        """One ``risk.risk_decisions`` row (see ``warehouse.risk.DECISION_COLUMNS``)."""
        o = self.order
        return {"run_id": run_id, "context": context, "ts": ts, "portfolio": str(o.portfolio),
                "strategy": o.strategy, "order_ref": int(o.order_ref),
                "symbol": o.symbol if self.reason != RiskReason.UNKNOWN_SYMBOL else None,
                "side": "buy" if o.side == 0 else "sell", "requested_qty": float(o.qty),
                "approved_qty": float(self.approved_qty), "price": float(o.price),
                "decision": self.decision, "reason": self.reason_name, "reason_code": int(self.reason),
                "trading_state": STATE_NAMES[self.state], "inputs": {"order": asdict(o), **self.inputs}}


class RiskGate:
    """Stateful front of the engine for one trading context (a paper session, a backtest run)."""

    def __init__(self, config: RiskConfig, symbols: Sequence[str], *, run_id: str, context: str = "paper",
                 breakers: CircuitBreakers | None = None) -> None:
        if len(set(symbols)) != len(symbols):
            raise InvalidInput("symbols are listed twice")
        self.config = config
        self.symbols = list(symbols)
        self._index = {s: i for i, s in enumerate(self.symbols)}
        self.run_id = run_id
        self.context = context
        self.breakers = breakers or CircuitBreakers(config.breakers)
        self._pending: list[dict[str, Any]] = []

    def review(self, ts: datetime, orders: Sequence[OrderRequest], *, last_price: Mapping[str, float],
               adv: Mapping[str, float], positions: Mapping[str, float] | None = None,
               entries_paused: bool = False) -> list[RiskDecision]:
        """Decide every order of one decision point; queue the decisions for ``flush``.

        ``last_price``/``adv`` by symbol (ADV in quantity units, see ``orders.adv_asof``);
        ``positions``: signed quantity by symbol for the orders' portfolio; ``entries_paused``:
        the market filter's verdict at ``ts`` (``market_filter.entries_paused``).
        """
        positions = positions or {}
        n = len(orders)
        lp = np.array([float(last_price.get(s, np.nan)) for s in self.symbols])
        av = np.array([float(adv.get(s, np.nan)) for s in self.symbols])
        sym = np.array([self._index.get(o.symbol, -1) for o in orders], dtype=np.int64)
        side = np.array([o.side for o in orders], dtype=np.int64)
        req = np.array([o.qty for o in orders], dtype=np.float64)
        pos = np.array([float(positions.get(o.symbol, 0.0)) for o in orders])
        state = np.array([self.breakers.state_for(strategy=o.strategy, portfolio=str(o.portfolio))
                          for o in orders], dtype=np.int64)
        scale = np.ones(n)
        if self.config.sizing.correlation_scaling:
            for i, o in enumerate(orders):
                if o.correlations and np.isfinite(req[i]) and req[i] > 0 and not reduces_position_nb(
                        int(o.side), float(req[i]), float(pos[i])):
                    scale[i] = correlation_scale(o.side, o.correlations, o.exposures,
                                                 floor=self.config.sizing.correlation_floor)
        qty = req * scale
        res = verify_orders(sym, side, qty, np.array([o.price for o in orders], dtype=np.float64),
                            last_price=lp, adv=av, limits=self.config.orders, position=pos, state=state,
                            entries_paused=entries_paused)
        out: list[RiskDecision] = []
        for i, o in enumerate(orders):
            code = int(res.reason[i])
            approved = 0.0
            if code == RiskReason.NONE:
                approved = float(qty[i])
                if scale[i] < 1.0:
                    code = RiskReason.RESIZED
            s = int(sym[i])
            inputs = {"last_price": float(lp[s]) if s >= 0 else None, "adv": float(av[s]) if s >= 0 else None,
                      "position": float(pos[i]), "entries_paused": bool(entries_paused),
                      "correlation_scale": float(scale[i]),
                      "limits": self.config.orders.model_dump(),
                      "trading_state": STATE_NAMES[int(state[i])]}
            d = RiskDecision(o, approved, code, int(state[i]), inputs)
            out.append(d)
            if self.config.audit:
                self._pending.append(d.to_row(run_id=self.run_id, context=self.context, ts=ts))
        return out

    def pending_rows(self) -> list[dict[str, Any]]:
        return list(self._pending)

    def flush(self, con: Any) -> int:
        """Write queued decisions, then breaker states and transitions; return decisions written.

        ``con``: an open read-write connection on a migrated store (``Warehouse.connect()``).
        """
        from ..warehouse.risk import save_breakers, write_decisions

        written = write_decisions(con, self._pending) if self._pending else 0
        self._pending = []
        events = [asdict(e) for e in self.breakers.drain_events()]
        save_breakers(con, [s.to_row() for s in self.breakers.states()], events)
        return written


def decision_frame(*, run_id: str, context: str, ts: Sequence[datetime] | pl.Series, orders: np.ndarray,
                   reason: np.ndarray, symbols: Sequence[str], last_price: np.ndarray, adv: np.ndarray,
                   config: RiskConfig, state: np.ndarray | int = TradingState.ACTIVE,
                   entries_paused: np.ndarray | bool = False, strategy: str = "default") -> pl.DataFrame:
    """Audit rows for a batch of engine order records (``ORDER_DTYPE``) and their reasons.

    ``ts``: the decision time of each order; ``last_price``/``adv``: the per-order values
    the checks used (gather them per order). Rejected orders get ``approved_qty`` 0.
    """
    n = orders.shape[0]
    reason = np.asarray(reason, dtype=np.int64)
    sym = orders["symbol"].astype(np.int64)
    known = (sym >= 0) & (sym < len(symbols))
    names = [symbols[s] if k else None for s, k in zip(sym.tolist(), known.tolist(), strict=True)]
    st = np.broadcast_to(np.asarray(state, dtype=np.int64), (n,))
    paused = np.broadcast_to(np.asarray(entries_paused, dtype=np.bool_), (n,))
    qty = orders["qty"].astype(np.float64)
    price = np.where(orders["limit_price"] > 0, orders["limit_price"],
                     np.where(orders["stop_price"] > 0, orders["stop_price"], last_price))
    limits = config.orders.model_dump()
    lp = np.asarray(last_price, dtype=np.float64)
    av = np.asarray(adv, dtype=np.float64)
    inputs = [{"last_price": None if not np.isfinite(lp[i]) else float(lp[i]),
               "adv": None if not np.isfinite(av[i]) else float(av[i]), "entries_paused": bool(paused[i]),
               "order_type": int(orders["type"][i]), "size_mode": int(orders["size_mode"][i]),
               "bar": int(orders["bar"][i]), "limits": limits} for i in range(n)]
    return pl.DataFrame({
        "run_id": [run_id] * n, "context": [context] * n, "ts": ts,
        "portfolio": orders["portfolio"].astype(np.int64).astype(str),
        "strategy": [strategy] * n, "order_ref": np.where(orders["order_id"] > 0, orders["order_id"],
                                                          np.arange(n)).astype(np.int64),
        "symbol": names, "side": np.where(orders["side"] == 0, "buy", "sell"),
        "requested_qty": qty, "approved_qty": np.where(reason == 0, qty, 0.0), "price": price,
        "decision": [decision_of(r) for r in reason.tolist()],
        "reason": [reason_name(r) for r in reason.tolist()], "reason_code": reason.astype(np.int16),
        "trading_state": [STATE_NAMES[int(s)] for s in st.tolist()], "inputs": inputs,
    }, schema_overrides={"ts": pl.Datetime("us", "UTC"), "symbol": pl.Utf8})
