"""The risk gate: strategies -> gate -> engine, with every decision kept for the audit table.

``RiskGate`` is the one risk path. The Trader (``trading_core.trading``) calls its per-bar,
array methods for every account at once: ``entry_reasons`` (order checks of a would-be entry of
each symbol), ``market_pause`` (the VIX filter), ``scale_for_correlation`` (correlation-aware
sizing) and ``update_breakers`` (the four breaker levels fed the book at a close, and which
accounts the kill switch must flatten). ``review`` is the same checks for a few named orders
(an operator's or an external caller's order) and returns one ``RiskDecision`` per order.
``decision_frame`` builds audit rows for a batch of engine order records without a Python loop
over orders; ``flush`` writes pending decisions and breaker changes to the warehouse.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
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
                 breakers: CircuitBreakers | None = None, strategy: str = "default", n_accounts: int = 1) -> None:
        if len(set(symbols)) != len(symbols):
            raise InvalidInput("symbols are listed twice")
        self.config = config
        self.symbols = list(symbols)
        self._index = {s: i for i, s in enumerate(self.symbols)}
        self.run_id = run_id
        self.context = context
        self.strategy = strategy
        self.breakers = breakers or CircuitBreakers(config.breakers)
        self._pending: list[dict[str, Any]] = []
        self._idx = np.arange(len(self.symbols), dtype=np.int64)
        self._buy = np.zeros(len(self.symbols), dtype=np.int64)
        # per-bar breaker feed: the last inputs per account (an unchanged active account is skipped)
        self._feed: dict[str, Any] = {
            "system": None, "market": None,
            "state": np.zeros(n_accounts, np.int64),
            "scopes": ([f"{strategy}#{a}" for a in range(n_accounts)], [str(a) for a in range(n_accounts)])}

    # ---- the Trader's per-bar path ------------------------------------------------------------
    def entry_reasons(self, *, price: np.ndarray, last_price: np.ndarray, adv: np.ndarray, qty: np.ndarray,
                      paused: bool, first_bar: bool = False) -> np.ndarray:
        """Reason code (0 = passes) of a buy entry of each symbol at ``price`` (this close), judged
        against ``last_price`` (the previous close) and ``adv`` (both (S,)). On the first bar
        nothing is known to judge price or size against: only the market filter applies."""
        if first_bar:
            code = RiskReason.MARKET_FILTER if paused else RiskReason.NONE
            return np.full(len(self.symbols), code, dtype=np.int64)
        return verify_orders(self._idx, self._buy, qty, price, last_price=last_price, adv=adv,
                             limits=self.config.orders, entries_paused=paused).reason.astype(np.int64)

    def market_pause(self, decision_ms: int, vix_close: float, vix_known_at: int | None) -> tuple[bool, str | None]:
        """The VIX filter at one decision instant (``market_filter.market_filter_frame``'s rule):
        (entries paused, reason: vix_above_threshold | vix_missing | vix_stale | None)."""
        mf = self.config.market_filter
        if not mf.enabled:
            return False, None
        if vix_known_at is None or not math.isfinite(vix_close):
            reason = "vix_missing"
        elif decision_ms - vix_known_at > mf.max_vix_age_days * 86_400_000:
            reason = "vix_stale"
        elif vix_close > mf.vix_threshold:
            reason = "vix_above_threshold"
        else:
            return False, None
        return reason == "vix_above_threshold" or mf.on_missing_vix == "pause", reason

    def vix_reading(self, decision_ms: int, vix_close: float, vix_known_at: int | None) -> float | None:
        """The VIX the market breaker judges: the close known then, None if missing or stale."""
        if vix_known_at is None or not math.isfinite(vix_close):
            return None
        if decision_ms - vix_known_at > self.config.market_filter.max_vix_age_days * 86_400_000:
            return None
        return float(vix_close)

    def scale_for_correlation(self, side: int, correlations: np.ndarray, exposures: np.ndarray) -> float:
        """How much of a new position's size survives its correlation with what is held."""
        ok = np.isfinite(correlations)
        return float(correlation_scale(side, correlations[ok], exposures[ok],
                                       floor=self.config.sizing.correlation_floor))

    def update_breakers(self, when_ms: int, *, equity: np.ndarray, losing_streak: np.ndarray, gross: np.ndarray,
                        largest: np.ndarray, requests: int, errors: int, data_age_bars: float,
                        vix: float | None, vol_percentile: float | None) -> tuple[np.ndarray, list[Any], list[int]]:
        """Feed every breaker the book at one close; (state per account, transitions, accounts the
        kill switch must flatten).

        Every account is judged at every close (``CircuitBreakers.update_accounts``, vectorised);
        the system and market breakers only when their inputs changed or they are not active (their
        rules are functions of those inputs and, only when not active, of time).
        """
        br = self.breakers
        feed = self._feed
        n = int(equity.shape[0])
        if not br.config.enabled:
            return np.zeros(n, np.int64), [], []
        acct = br.update_accounts(feed["scopes"][0], feed["scopes"][1], when_ms, equity=equity,
                                  losing_streak=losing_streak, gross_exposure=gross, largest_position=largest)
        sys_in = (requests, errors, float(data_age_bars))
        if sys_in != feed["system"] or br.state_of("system", "system") != TradingState.ACTIVE:
            feed["system"] = sys_in
            br.update_system(int(when_ms), requests=requests, errors=errors, data_age_bars=float(data_age_bars))
        if (vix, vol_percentile) != feed["market"] or br.state_of("market", "market") != TradingState.ACTIVE:
            feed["market"] = (vix, vol_percentile)
            br.update_market(int(when_ms), vix=vix, vol_percentile=vol_percentile)
        state = np.maximum(acct, max(br.state_of("system", "system"), br.state_of("market", "market")))
        feed["state"] = state
        events = br.drain_events()
        halting: list[int] = []
        if br.config.flatten_on_loss_halt:
            for ev in events:
                if ev.to_state == "halted" and ev.event == "trip_halt" and ev.level in ("strategy", "portfolio"):
                    halting.append(int(ev.scope.rsplit("#", 1)[-1]) if ev.level == "strategy" else int(ev.scope))
        return state, events, sorted(set(halting))

    def state(self) -> dict[str, Any]:
        """The gate's carried state (breakers and the feed's last inputs) for a checkpoint."""
        f = self._feed
        return {"breakers": self.breakers.state_dict(),
                "system": None if f["system"] is None else list(f["system"]),
                "market": None if f["market"] is None else list(f["market"]), "state": f["state"].copy()}

    def load_state(self, s: dict[str, Any]) -> None:
        self.breakers.load_state_dict(s["breakers"])
        self._feed = {**self._feed,
                      "system": None if s["system"] is None else (int(s["system"][0]), int(s["system"][1]),
                                                                  float(s["system"][2])),
                      "market": None if s["market"] is None else tuple(s["market"]),
                      "state": np.array(s["state"], np.int64)}

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


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000.0, tz=UTC)


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
