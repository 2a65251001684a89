"""The one trading loop: ``Trader.on_bar(bar) -> events``, one timestamp across its symbols.

Where signals become orders, for every user of the engine: stepped backtests replay stored bars
through it, paper sessions feed it a live or replayed feed and store its events, stress tests and
Monte Carlo step many accounts through it. Per bar, for all accounts at once:

1. inputs advance from this bar alone (bar clock and data gap, ADV, ATR, volatility percentile,
   returns window, VIX as of the close) -- ``inputs``;
2. the strategy's stream gives this bar's raw signals;
3. ``fill=next_open``: the engine fills what was sent at the previous close (and resting stops
   intrabar); the book is marked at this close. ``fill=close``: the decision comes first and its
   market-on-close orders fill at this close;
4. the risk gate is fed the book (four breaker levels; a loss halt flattens the account when the
   kill switch is on) and judges a would-be entry of each symbol (order checks, VIX filter);
5. the signal filters decide with the risk verdict as a block (reduce-only/halted stop new
   positions, halted also stops exits);
6. allowed signals become engine orders (sized; correlation-scaled or Markowitz-allocated across
   symbols) with their protective stops; trailing stops ratchet to this close's level.

One position state: the engine's. The side a signal column holds is read back from the engine
after every step (a protective stop that filled, a rejected entry); the filters and protection
follow it. ``snapshot()`` is the whole state as bytes; ``Trader.restore`` continues identically.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..engine import enums as E
from ..risk.codes import STATE_NAMES, RiskReason, TradingState, reason_name
from ..strategies.filters import DECISION_DTYPE, FILTER_REASON_NAMES, FilterConfig, FilterReason, SignalFilter
from ..strategies.streaming import BarSlice, SignalStream
from . import events as ev
from .config import TraderConfig
from .inputs import AdvTracker, AtrTracker, BarClock, ReturnWindow, VixAsOf, VolPercentileTracker
from .state import decode_state, encode_state
from .trips import TripBook

__all__ = ["Trader", "ERROR_WINDOW", "AUDIT_FIELDS", "floor_lot"]

ERROR_WINDOW = 50  # order outcomes the system breaker's error rate is measured over
VOL_WINDOW, VOL_RANK_WINDOW = 20, 252  # the feature defaults (features.compute.FeatureSpec)
_SIZE = {"all_in": E.SizeMode.ALL_IN, "fixed": E.SizeMode.QTY, "risk": E.SizeMode.RISK}
_SIDE = {E.Side.BUY: "buy", E.Side.SELL: "sell"}
_TYPE = {v: k.lower() for k, v in E.OrderType._asdict().items()}
_MODE = {v: k.lower() for k, v in E.SizeMode._asdict().items()}
_FILL_REASON = {0: "open", 1: "gap", 2: "intrabar", 3: "close"}
# audit record of one risk decision (the backtest's risk.risk_decisions rows are built from these)
AUDIT_FIELDS = ("bar", "column", "side", "requested", "approved", "reason", "state", "scale", "kill_switch",
                "last_price", "adv", "paused", "decision_ms", "price")


def floor_lot(q: float, lot: float) -> float:
    """Round a quantity down to the venue's lot size (0 = any fraction)."""
    return math.floor(q / lot + 1e-9) * lot if lot and lot > 0 else q


def _sign(q: float) -> int:
    return 1 if q > 0 else (-1 if q < 0 else 0)


class Trader:
    """See the module docstring. ``signals`` is the strategy's ``SignalStream`` (its columns
    are the config's signal columns); ``vix``: the VIX closes the market filter and breaker read
    (``VixAsOf``; None = none loaded)."""

    def __init__(self, config: TraderConfig, signals: SignalStream, *, vix: VixAsOf | None = None) -> None:
        from ..engine import Engine
        from ..risk.gate import RiskGate

        cfg = self.config = config
        self.signals = signals
        self.S = len(cfg.symbols)
        self.symbol_of = np.asarray(cfg.symbol_of, dtype=np.int64)
        self.C = int(self.symbol_of.shape[0])
        if signals.columns != self.C:
            raise ValueError(f"the strategy gives {signals.columns} signal columns, the config has {self.C}")
        self.account_of = (np.arange(self.C, dtype=np.int64) if cfg.account_of is None
                           else np.asarray(cfg.account_of, dtype=np.int64))
        self.A = int(self.account_of.max()) + 1 if self.C else 0
        self.cols_of = [np.flatnonzero(self.account_of == a) for a in range(self.A)]
        self.multi = any(len(c) > 1 for c in self.cols_of)
        self.bar_ms = int(cfg.bar_ms)
        self.engine = Engine(self.A, self.S, cfg.model, cfg.cash, cfg.seed, cfg.device, float(cfg.bar_ms))
        self.model = self.engine.model  # the venue rules (lot, fill timing, risk stop) every account shares
        self.fill_close = self.model.fill_at == "close"
        self.size_mode, self.size, self.short = _SIZE[cfg.size_mode], float(cfg.size), bool(cfg.short)
        self.alloc = cfg.allocation
        self.protection = cfg.protection
        self.rules = cfg.position
        self.risk = cfg.risk
        self.gate = (RiskGate(cfg.risk, cfg.symbols, run_id=cfg.run_id, context=cfg.context, strategy=cfg.strategy,
                              n_accounts=self.A) if cfg.risk is not None else None)
        self.breakers_on = bool(cfg.risk is not None and cfg.risk.breakers.enabled)
        self.corr_scaling = bool(cfg.risk is not None and cfg.risk.sizing.correlation_scaling and self.multi)
        self.filter = SignalFilter(cfg.filters or FilterConfig(), self.C, short=self.short)
        # incremental inputs
        self.clock = BarClock(self.bar_ms, cfg.calendar)
        self.adv = AdvTracker(self.S, cfg.risk.orders.adv_window_days if cfg.risk is not None else 20)
        trailing = cfg.protection.trailing
        self.atr = AtrTracker(self.S, trailing.atr_period) if trailing is not None and trailing.kind == "atr" else None
        self.vol = VolPercentileTracker(self.S, VOL_WINDOW, VOL_RANK_WINDOW) if self.breakers_on else None
        need_ret = max(self.alloc.lookback_bars if self.alloc.method == "markowitz" else 0,
                       self.alloc.correlation_window if self.corr_scaling else 0)
        self.returns = ReturnWindow(self.S, need_ret) if need_ret else None
        self.vix = vix
        # per signal column
        C = self.C
        self.side = np.zeros(C, np.int64)  # the side the column's orders aim for (-1/0/1)
        self.pending: list[set[int]] = [set() for _ in range(C)]  # signal orders not yet done
        self.protective: list[dict[str, int]] = [{} for _ in range(C)]  # kind -> order id
        self.protected = np.zeros(C, np.bool_)  # resting exits set up for the current position
        self.trail_level = np.full(C, np.nan)
        self.trail_extreme = np.full(C, np.nan)
        self.adds = np.zeros(C, np.int64)  # scale-in / average-down orders of the open position
        self.open_qty = np.zeros(C)  # the size the open position started with (adds are a share of it)
        self.scaled_out = np.zeros(C, np.bool_)
        self.col_of = {(int(self.account_of[c]), int(self.symbol_of[c])): c for c in range(C)}
        self.books = {(a, s): TripBook(a, s) for (a, s) in self.col_of}
        # per account
        self.losing_streak = np.zeros(self.A)  # closed losing trips in a row (a count, kept as float64)
        self.last_rebalance = np.full(self.A, -(10 ** 9))
        self.acct_state = np.zeros(self.A, np.int64)
        self.outcomes: list[int] = []  # 1 = rejected, 0 = filled (system breaker window)
        # the bar being decided
        self.t = 0
        self.prev_close: np.ndarray | None = None  # each symbol's last traded close
        self._mark: np.ndarray = np.zeros(self.S)
        self._seq = 0
        self._paused = False
        self._recheck = False  # a column's side was set since the engine was last read back
        self.last_fills = np.zeros(0, E.FILL_DTYPE)  # the engine's fill records of the last bar
        self._q = np.zeros(self.C)  # each column's cell of the book: signed quantity, last mark
        self._last = np.zeros(self.C)
        self._events: list[ev.Event] = []
        # run records, drained by the caller (a backtest keeps them, a paper session stores them)
        self.decisions: list[np.ndarray] = []
        self.audit: list[tuple[Any, ...]] = []
        self.breaker_events: list[Any] = []
        self.state_bars = {"active": 0, "reduce_only": 0, "halted": 0}
        self.paused_bars = 0
        self.vix_missing_bars = 0

    # ---- history before the first traded bar --------------------------------------------------
    def warm_up(self, bars: Iterable[BarSlice], *, strategy: bool = True) -> int:
        """Feed bars before the first traded one: the market inputs (and the strategy's stream,
        unless ``strategy=False``) learn from them; nothing trades. Returns the bars fed."""
        n = 0
        for b in bars:
            self._mark = self._marks(b.close)
            self._advance_inputs(b)
            if strategy:
                self.signals.update(b)
            self.prev_close = self._mark
            n += 1
        return n

    def _marks(self, close: np.ndarray) -> np.ndarray:
        """This bar's price of every symbol: its close, or for a closed symbol (NaN: no bar on a
        union calendar) its last traded close -- how equity, breakers and sizing value it."""
        c = np.asarray(close, dtype=np.float64)
        if not np.isnan(c).any():
            return c
        if self.prev_close is None:
            return c
        return np.where(np.isnan(c), self.prev_close, c)

    def _advance_inputs(self, b: BarSlice) -> float:
        gap = self.clock.gap(b.ts)
        self.adv.update(b.ts, b.volume)
        high, low, close, mark = b.high, b.low, b.close, self._mark
        if mark is not close and np.isnan(np.asarray(close, dtype=np.float64)).any():
            # a closed symbol: the risk inputs see a flat bar at its last close (strategies never
            # do: they run on each symbol's own bars)
            closed = np.isnan(np.asarray(close, dtype=np.float64))
            high = np.where(closed, mark, high)
            low = np.where(closed, mark, low)
            close = mark
        if self.atr is not None:
            self.atr.update(high, low, close)
        if self.vol is not None:
            self.vol.update(close)
        if self.returns is not None:
            self.returns.update(close)
        return gap

    # ---- the loop -----------------------------------------------------------------------------
    def on_bar(self, bar: BarSlice) -> list[ev.Event]:
        """Decide and execute one bar; the events it produced, in order."""
        self._events = []
        self._seq = 0
        self._bar = bar
        self._decision_ms = int(bar.ts) + self.bar_ms  # decisions happen at the bar's close
        self._mark = mark = self._marks(bar.close)
        self._gap = self._advance_inputs(bar)
        ent, ex = self.signals.update(bar)
        shut = np.isnan(np.asarray(bar.close, dtype=np.float64))
        if shut.any():  # a closed symbol (NaN bar) carries no signal, as in the engine's batch form
            shut = shut[self.symbol_of]
            ent, ex = np.asarray(ent, np.bool_) & ~shut, np.asarray(ex, np.bool_) & ~shut
        self._tag = getattr(self.signals, "event_tag", None)  # e.g. the model version that decided
        take_switch = getattr(self.signals, "take_switch", None)
        switch = take_switch() if take_switch is not None else None
        if switch:
            self._emit(ev.ModelSwitched, 0, None, previous=switch[0], current=switch[1])
        eng = self.engine
        row = (int(bar.ts), bar.open, bar.high, bar.low, bar.close, bar.volume)
        if self.fill_close:
            self._decide(ent, ex, self._equity(mark), self._q)
            fills = eng.step(*row)
            self._after_fills(fills)
            self._place_new_protection()
        else:
            fills = eng.step(*row)
            q = self._after_fills(fills)
            self._decide(ent, ex, self._equity(None), q)
        self._trail()
        self.prev_close = mark
        self.t += 1
        return self._events

    # ---- events ---------------------------------------------------------------------------------
    def _emit(self, cls: type[ev.Event], account: int, symbol: int | None, **kw: Any) -> None:
        if not self.config.record_events:
            return
        self._events.append(cls(id=f"{self.config.run_id}:{self.t}:{self._seq}", ts_event=self._decision_ms,
                                bar=self.t, account=int(account),
                                symbol=None if symbol is None else self.config.symbols[int(symbol)],
                                tag=getattr(self, "_tag", None), **kw))
        self._seq += 1

    def _submit(self, a: int, s: int, *, purpose: str, type: int, side: int, size_mode: int, qty: float = 0.0,
                stop_price: float = 0.0) -> int:
        oid = self.engine.submit_one(a, symbol=s, type=type, side=side, size_mode=size_mode, qty=qty,
                                     stop_price=stop_price)
        self._emit(ev.OrderSubmitted, a, s, order_id=oid, side=_SIDE[side], order_type=_TYPE[type],
                   size_mode=_MODE[size_mode], qty=float(qty), price=float(stop_price) if stop_price else None,
                   purpose=purpose)
        return oid

    # ---- after the engine step: fills, round trips, positions, protective orders ----------------
    def _equity(self, mark: np.ndarray | None) -> np.ndarray:
        """Each account's equity: marked at ``mark`` (this close, before the step), else the
        engine's marks after it. Accounts of one cell read just that cell of the book."""
        if self.multi:
            if mark is None:
                return self.engine.equity
            if np.isnan(mark).any():  # a symbol with no bar yet holds no position
                mark = np.nan_to_num(mark, nan=0.0)
            return self.engine.cash + (self.engine.positions * mark[None, :]).sum(axis=1)
        eq = self.engine.cash
        px = self._last if mark is None else mark[self.symbol_of]
        eq[self.account_of] = eq[self.account_of] + self._q * px
        return eq

    def _after_fills(self, fills: np.ndarray) -> np.ndarray:
        """Read the book back after the engine step: fills, order outcomes, each column's side."""
        self.last_fills = fills
        self._q, self._last = self.engine.cells(self.account_of, self.symbol_of)
        pos = self._q
        if fills.shape[0]:
            self._fold_fills(fills)
        evs = self.engine.events[-1] if self.engine.events else None
        fresh = evs is not None and evs.shape[0] and int(evs["bar"][0]) == self.engine.bar - 1
        if not fills.shape[0] and not fresh and not self._recheck:
            return pos  # nothing filled, refused or cancelled, no side set since: every side holds
        if fresh:
            assert evs is not None
            for r in evs:
                k = int(r["kind"])
                if k in (E.EventKind.REJECTED, E.EventKind.FILLED):
                    self.outcomes.append(1 if k == E.EventKind.REJECTED else 0)
                a, s, oid = int(r["portfolio"]), int(r["symbol"]), int(r["order_id"])
                if k == E.EventKind.REJECTED:
                    self._emit(ev.OrderRejected, a, s, order_id=oid, reason_code=int(r["reason"]),
                               reason=_reject_name(int(r["reason"])))
                elif k == E.EventKind.CANCELED:
                    self._emit(ev.OrderCanceled, a, s, order_id=oid)
                elif k == E.EventKind.EXPIRED:
                    self._emit(ev.OrderExpired, a, s, order_id=oid)
            del self.outcomes[:-ERROR_WINDOW]
        held = np.sign(pos).astype(np.int64)
        for c in np.flatnonzero((held != self.side) | np.array([bool(p) for p in self.pending])).tolist():
            a = int(self.account_of[c])
            if self.pending[c]:
                self.pending[c] &= set(self.engine.open_orders(a).tolist())
                if self.pending[c]:
                    continue
            h = int(held[c])
            if h != self.side[c]:  # a protective order filled, or a signal order was rejected
                self.side[c] = h
                self.filter.set_position(c, h)
                if h == 0:
                    self._cancel_protection(c)
        self._recheck = False
        return pos

    def _fold_fills(self, fills: np.ndarray) -> None:
        """Fills -> OrderFilled events and round trips (a closed trip feeds the losing streak);
        each fill that moves a position says so: PositionOpened, PositionChanged, or
        PositionClosed with the trip's PnL -- a reversal is a close and an open, and a position
        opened and stopped out within one bar reports both."""
        for f in fills:
            a, s = int(f["portfolio"]), int(f["symbol"])
            self._emit(ev.OrderFilled, a, s, order_id=int(f["order_id"]), side=_SIDE[int(f["side"])],
                       qty=float(f["qty"]), price=float(f["price"]), fee=float(f["fee"]),
                       slippage=float(f["slippage_cost"]), role="maker" if int(f["role"]) == E.Role.MAKER else "taker",
                       fill_reason=_FILL_REASON.get(int(f["reason"]), str(int(f["reason"]))))
            book = self.books.get((a, s))
            if book is None:
                book = self.books[(a, s)] = TripBook(a, s)
            q0, was_flat = book.pos, book.trip is None
            done = book.add(int(f["side"]), float(f["qty"]), float(f["price"]), float(f["fee"]),
                            float(f["slippage_cost"]), int(f["bar"]), int(f["ts"]))
            if done is not None:
                self.losing_streak[a] = self.losing_streak[a] + 1 if done.pnl < 0 else 0
                self._emit(ev.PositionClosed, a, s, previous_qty=q0, realized_pnl=done.pnl)
            if book.trip is not None and (was_flat or done is not None):
                c = self.col_of.get((a, s))
                if c is not None:
                    self.open_qty[c] = abs(book.pos)
                self._emit(ev.PositionOpened, a, s, qty=book.pos, avg_price=book.avg_entry_price)
            elif done is None and not was_flat and book.pos != q0:
                self._emit(ev.PositionChanged, a, s, qty=book.pos, previous_qty=q0, avg_price=book.avg_entry_price)

    # ---- the decision at a bar's close ------------------------------------------------------------
    def _decide(self, ent: np.ndarray, ex: np.ndarray, equity: np.ndarray, pos: np.ndarray) -> None:
        bar = self._bar
        t = self.t
        paused, vix_reason, vix_reading = self._market()
        acct_state = self._breaker_states(equity, pos, vix_reading)
        state = acct_state[self.account_of]
        for s_ in acct_state.tolist():
            self.state_bars[STATE_NAMES[s_]] += 1
        busy = bool(ent.any() or ex.any())
        if self.rules.any and not busy:
            self._manage_positions(equity, pos, state)
        if not busy:
            self.filter.step_quiet(int(bar.ts))
            if self.alloc.method == "markowitz":
                self._rebalance_due(equity, pos)
            return
        reason = np.zeros(self.C, np.int64)
        lp = self.prev_close if self.prev_close is not None else np.full(self.S, np.nan)
        adv = self.adv.value
        if self.gate is not None:
            qty_est = self._entry_estimate(self._mark)
            reason = self.gate.entry_reasons(price=self._mark, last_price=lp, adv=adv, qty=qty_est, paused=paused,
                                             first_bar=self.prev_close is None)[self.symbol_of]
        reason = np.where(state == TradingState.HALTED, RiskReason.TRADING_HALTED,
                          np.where(state == TradingState.REDUCE_ONLY, RiskReason.REDUCE_ONLY, reason))
        res = self.filter.step(ent, ex, int(bar.ts), decision_ts=self._decision_ms,
                               block=reason != 0, block_exit=state == TradingState.HALTED)
        self.decisions.append(res.decisions)
        allowed = res.entries[0] | res.exits[0]
        qty = {c: self._entry_qty(c, equity, pos, long=bool(res.entries[0, c]))
               for c in np.flatnonzero(allowed).tolist() if self.alloc.method == "signals"}
        for rec in res.decisions:
            c, kind, why = int(rec["portfolio"]), int(rec["kind"]), int(rec["reason"])
            a, s = int(self.account_of[c]), int(self.symbol_of[c])
            if why not in (FilterReason.ALLOWED, FilterReason.RISK_BLOCKED):
                self._emit(ev.SignalFiltered, a, s, signal="entry" if kind == 0 else "exit", column=c,
                           reason=FILTER_REASON_NAMES[why])
                continue
            opening = (kind == 0 and self.side[c] != 1) or (kind == 1 and self.short and self.side[c] != -1)
            closing = (kind == 0 and self.side[c] == -1) or (kind == 1 and self.side[c] == 1)
            if not (opening or closing) or self.gate is None:
                continue  # an exit while flat (long-only): no order exists to judge
            code = int(reason[c]) if why == FilterReason.RISK_BLOCKED else 0
            if why == FilterReason.RISK_BLOCKED and not opening:
                code = RiskReason.TRADING_HALTED
            if opening:
                want, got, scale = qty.get(c, (self._qty_estimate(c, float(equity[a]), float(bar.close[s])), 0.0, 1.0))
                if why != FilterReason.ALLOWED:
                    got = 0.0
                elif c not in qty:
                    got = want
            else:
                want = got = abs(float(pos[c]))
                scale = 1.0
            if code == 0 and scale < 1.0:
                code = RiskReason.RESIZED
            side = E.Side.BUY if kind == 0 else E.Side.SELL
            self.audit.append((t, c, side, want, got, code, int(state[c]), scale, False, float(lp[s]), float(adv[s]),
                               paused, self._decision_ms, float(bar.close[s])))
            if code not in (RiskReason.NONE, RiskReason.RESIZED):
                self._emit(ev.OrderDenied, a, s, side=_SIDE[side], requested_qty=float(want), reason_code=code,
                           reason=reason_name(code), trading_state=STATE_NAMES[int(state[c])])
        for c in np.flatnonzero(allowed).tolist():
            self._send(c, long=bool(res.entries[0, c]), qty=qty.get(c, (0.0, 0.0, 1.0))[1])
        if self.alloc.method == "markowitz":
            self._rebalance_due(equity, pos, changed={int(self.account_of[c]) for c in np.flatnonzero(allowed).tolist()})

    def _market(self) -> tuple[bool, str | None, float | None]:
        """The VIX filter's verdict and the breaker's VIX reading at this close."""
        if self.gate is None:
            return False, None, None
        close, known = (self.vix.at(self._decision_ms) if self.vix is not None else (math.nan, None))
        paused, why = self.gate.market_pause(self._decision_ms, close, known)
        self._paused = paused
        if why in ("vix_missing", "vix_stale"):
            self.vix_missing_bars += 1
        self.paused_bars += int(paused)
        return paused, why, self.gate.vix_reading(self._decision_ms, close, known)

    def _breaker_states(self, equity: np.ndarray, q: np.ndarray, vix: float | None) -> np.ndarray:
        if not self.breakers_on or self.gate is None:
            return self.acct_state
        v = np.abs(q * np.nan_to_num(self._mark[self.symbol_of]))  # each cell's position value
        gross: np.ndarray
        largest: np.ndarray
        if self.multi:
            gross = np.bincount(self.account_of, weights=v, minlength=self.A)
            largest = np.zeros(self.A)
            np.maximum.at(largest, self.account_of, v)
        else:
            gross = np.zeros(self.A)
            gross[self.account_of] = v
            largest = gross
        assert self.vol is not None
        vp = self.vol.median()
        state, transitions, halting = self.gate.update_breakers(
            self._decision_ms, equity=equity, losing_streak=self.losing_streak, gross=gross,
            largest=largest, requests=len(self.outcomes), errors=int(sum(self.outcomes)),
            data_age_bars=self._gap, vix=vix, vol_percentile=None if not math.isfinite(vp) else vp)
        self.acct_state = state
        for tr in transitions:
            self.breaker_events.append(tr)
            cls = ev.BreakerTripped if tr.event.startswith("trip") else ev.BreakerReset
            acct = -1
            if tr.level == "portfolio":
                acct = int(tr.scope)
            elif tr.level == "strategy":
                acct = int(tr.scope.rsplit("#", 1)[-1])
            extra: dict[str, Any] = ({"metrics": dict(tr.metrics)} if cls is ev.BreakerTripped else {"actor": tr.actor})
            self._emit(cls, acct, None, level=tr.level, scope=tr.scope, from_state=tr.from_state,
                       to_state=tr.to_state, reason=tr.rule, **extra)
        if halting:
            self._flatten(halting, q, state[self.account_of])
        return state

    def _flatten(self, accounts: list[int], q: np.ndarray, state: np.ndarray) -> None:
        """Kill switch: a loss breaker halted these accounts -- cancel their resting orders and
        close every position at the next fill. Audited as allowed orders with ``kill_switch``."""
        typ = E.OrderType.MARKET_ON_CLOSE if self.fill_close else E.OrderType.MARKET
        lp = self.prev_close if self.prev_close is not None else np.full(self.S, np.nan)
        for a in accounts:
            for c in self.cols_of[a].tolist():
                self._cancel_protection(c)
                s = int(self.symbol_of[c])
                held = float(q[c])
                if held == 0.0:
                    continue
                side = E.Side.SELL if held > 0 else E.Side.BUY
                self.pending[c].add(self._submit(a, s, purpose="kill_switch", type=typ, side=side,
                                                 size_mode=E.SizeMode.CLOSE))
                self.side[c] = 0
                self.filter.set_position(c, 0)
                self.audit.append((self.t, c, side, abs(held), abs(held), 0, int(state[c]), 1.0, True, float(lp[s]),
                                   float(self.adv.value[s]), self._paused, self._decision_ms, float(self._bar.close[s])))

    # ---- sizing -----------------------------------------------------------------------------------
    def _entry_estimate(self, close: np.ndarray) -> np.ndarray:
        """The entry size the order checks judge before the fill sizes it: ``fixed`` units, else
        the starting cash shared equally over the symbols at this close."""
        if self.size_mode == E.SizeMode.QTY:
            return np.full(self.S, self.size)
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(self.config.cash) / self.S / np.asarray(close, dtype=np.float64)

    def _qty_estimate(self, c: int, equity: float, px: float) -> float:
        """The size an engine-sized entry (ALL_IN/RISK, sized at its fill) is expected to have."""
        if self.size_mode == E.SizeMode.QTY:
            return self.size
        if self.size_mode == E.SizeMode.RISK:
            return self.size * equity / (px * self.model.risk_stop_pct)
        return equity / px

    def _entry_qty(self, c: int, equity: np.ndarray, q: np.ndarray, *, long: bool) -> tuple[float, float, float]:
        """(requested, approved, correlation scale) of the opening leg of column c's signal.

        One symbol per account: the engine sizes at the fill (requested = the estimate, approved
        0 = "engine-sized"). Several: the quantity is fixed here -- ``all_in`` is an equal share
        of equity per symbol -- and shrunk by the correlation with what the account holds."""
        a, s = int(self.account_of[c]), int(self.symbol_of[c])
        px = float(self._bar.close[s])
        if not self.multi:
            return self._qty_estimate(c, float(equity[a]), px), 0.0, 1.0
        eq = float(equity[a])
        n = len(self.cols_of[a])
        if self.size_mode == E.SizeMode.QTY:
            want = self.size
        elif self.size_mode == E.SizeMode.RISK:
            want = self.size * eq / (px * self.model.risk_stop_pct)
        else:
            want = eq / n / px
        scale = 1.0
        if self.corr_scaling and eq > 0 and self.gate is not None:
            cols = [int(k) for k in self.cols_of[a] if k != c and q[k] != 0]
            if cols:
                held = [int(self.symbol_of[k]) for k in cols]
                rho = self._correlations(s, held)
                expo = np.array([q[k] * self._mark[j] / eq for k, j in zip(cols, held, strict=True)])
                scale = self.gate.scale_for_correlation(E.Side.BUY if long else E.Side.SELL, rho, expo)
        cap = self._adv_cap(s)
        return want, min(floor_lot(want * scale, self.model.lot_size), cap), scale

    def _adv_cap(self, s: int) -> float:
        p = self.rules.max_adv_participation
        adv = float(self.adv.value[s])
        if p <= 0 or not math.isfinite(adv) or adv <= 0:
            return math.inf
        return floor_lot(p * adv, self.model.lot_size)

    def _correlations(self, s: int, others: list[int]) -> np.ndarray:
        """Correlations of symbol s with ``others`` over the last ``correlation_window`` returns
        up to this bar (NaN where there is too little history)."""
        assert self.returns is not None
        r = self.returns.last(self.alloc.correlation_window)
        out = np.full(len(others), np.nan)
        if r.shape[0] < 3:
            return out
        for i, j in enumerate(others):
            x, y = r[:, s], r[:, j]
            ok = np.isfinite(x) & np.isfinite(y)
            if ok.sum() >= 3 and x[ok].std() > 0 and y[ok].std() > 0:
                out[i] = float(np.corrcoef(x[ok], y[ok])[0, 1])
        return out

    def _send(self, c: int, *, long: bool, qty: float = 0.0) -> None:
        """Orders for an allowed signal: close the opposite side, then open the signal's side."""
        a, s = int(self.account_of[c]), int(self.symbol_of[c])
        typ = E.OrderType.MARKET_ON_CLOSE if self.fill_close else E.OrderType.MARKET
        self._cancel_protection(c)
        ids = []
        side = E.Side.BUY if long else E.Side.SELL
        if self.side[c] == (-1 if long else 1):  # close the opposite side first
            ids.append(self._submit(a, s, purpose="signal", type=typ, side=side, size_mode=E.SizeMode.CLOSE))
        target = 1 if long else (-1 if self.short else 0)
        if target != 0 and self.alloc.method == "signals":
            if self.multi:
                if qty > 0:
                    ids.append(self._submit(a, s, purpose="signal", type=typ, side=side, size_mode=E.SizeMode.QTY,
                                            qty=qty))
            else:
                cap = self._adv_cap(s)
                if math.isfinite(cap):  # a participation cap fixes the size here, not at the fill
                    q = min(self._qty_estimate(c, float(self.engine.equity[a]), float(self._bar.close[s])), cap)
                    if q > 0:
                        ids.append(self._submit(a, s, purpose="signal", type=typ, side=side,
                                                size_mode=E.SizeMode.QTY, qty=q))
                else:
                    ids.append(self._submit(a, s, purpose="signal", type=typ, side=side, size_mode=self.size_mode,
                                            qty=self.size))
        self.pending[c].update(ids)
        self.side[c] = target
        self._recheck = True
        self.adds[c] = 0
        self.scaled_out[c] = False
        if target != 0 and not self.fill_close:
            self._protect(c, target)

    # ---- position management: scale in/out, cost averaging ---------------------------------------
    def _manage_positions(self, equity: np.ndarray, pos: np.ndarray, state: np.ndarray) -> None:
        """Rules on open positions at this close (``PositionRules``); only on bars with no signal,
        only while the account trades freely, never with an order of the column in flight."""
        r = self.rules
        typ = E.OrderType.MARKET_ON_CLOSE if self.fill_close else E.OrderType.MARKET
        for c in range(self.C):
            side = int(self.side[c])
            if side == 0 or self.pending[c] or state[c] != TradingState.ACTIVE:
                continue
            a, s = int(self.account_of[c]), int(self.symbol_of[c])
            q = float(pos[c])
            avg = self.books[(a, s)].avg_entry_price
            if q == 0.0 or not math.isfinite(avg) or avg <= 0 or not math.isfinite(float(self._bar.close[s])):
                continue  # flat, or its market is closed at this bar
            gain = side * (float(self._bar.close[s]) / avg - 1.0)
            open_side, close_side = (E.Side.BUY, E.Side.SELL) if side == 1 else (E.Side.SELL, E.Side.BUY)
            if r.scale_out_pct and not self.scaled_out[c] and gain >= r.scale_out_pct:
                qty = floor_lot(abs(q) * r.scale_out_fraction, self.model.lot_size)
                if qty > 0:
                    self.pending[c].add(self._submit(a, s, purpose="scale_out", type=typ, side=close_side,
                                                     size_mode=E.SizeMode.QTY, qty=qty))
                    self.scaled_out[c] = True
                continue
            add = ((r.scale_in_max and r.scale_in_step_pct and self.adds[c] < r.scale_in_max
                    and gain >= r.scale_in_step_pct * (self.adds[c] + 1), "scale_in"),
                   (r.average_down_max and r.average_down_step_pct and self.adds[c] < r.average_down_max
                    and -gain >= r.average_down_step_pct * (self.adds[c] + 1), "average_down"))
            for fire, purpose in add:
                if fire:
                    qty = min(floor_lot(float(self.open_qty[c]) * r.scale_in_fraction, self.model.lot_size),
                              self._adv_cap(s))
                    if qty > 0:
                        self.pending[c].add(self._submit(a, s, purpose=purpose, type=typ, side=open_side,
                                                         size_mode=E.SizeMode.QTY, qty=qty))
                        self.adds[c] += 1
                    break

    # ---- markowitz allocation -------------------------------------------------------------------
    def _rebalance_due(self, equity: np.ndarray, pos: np.ndarray, changed: set[int] | None = None) -> None:
        every = self.alloc.rebalance_bars
        for a in range(self.A):
            due = (changed is not None and a in changed) or (every > 0 and self.t - self.last_rebalance[a] >= every)
            if due and self.acct_state[a] == TradingState.ACTIVE:
                self._rebalance(a, float(equity[a]), pos)

    def _rebalance(self, a: int, equity: float, pos: np.ndarray) -> None:
        """Trade account a to mean-variance weights over the symbols its signals hold."""
        from ..risk.sizing import InfeasiblePortfolio, markowitz_weights

        cols = [int(c) for c in self.cols_of[a] if self.side[c] == 1]
        syms = [int(self.symbol_of[c]) for c in cols]
        target = np.zeros(self.S)
        close = self._mark
        if syms and equity > 0:
            assert self.returns is not None
            r = self.returns.last(self.alloc.lookback_bars)[:, syms]
            r = r[np.isfinite(r).all(axis=1)]
            if len(syms) == 1 or r.shape[0] < max(10, 2 * len(syms)):
                w = np.full(len(syms), 1.0 / len(syms))  # too little history: equal weight
            else:
                cap = max(self.alloc.max_weight, 1.0 / len(syms))
                try:
                    w = markowitz_weights(r.mean(axis=0), np.cov(r, rowvar=False),
                                          risk_aversion=self.alloc.risk_aversion, bounds=(0.0, cap))
                except InfeasiblePortfolio:
                    w = np.full(len(syms), 1.0 / len(syms))
            for j, s in enumerate(syms):
                target[s] = w[j] * equity / float(close[s])
        typ = E.OrderType.MARKET_ON_CLOSE if self.fill_close else E.OrderType.MARKET
        held = np.zeros(self.S)
        for k in self.cols_of[a].tolist():
            held[self.symbol_of[k]] = pos[k]
        delta = target - held
        for s in sorted(range(self.S), key=lambda k: delta[k]):  # sells first: they fund the buys
            q = floor_lot(abs(float(delta[s])), self.model.lot_size)
            if q <= 1e-12 or (target[s] > 0 and q < 1e-6 * abs(target[s])):
                continue
            c = self.col_of.get((a, s))
            if target[s] == 0 and c is not None and self.pending[c]:
                continue  # its exit signal's CLOSE is already on the way
            oid = self._submit(a, s, purpose="rebalance", type=typ, side=E.Side.BUY if delta[s] > 0 else E.Side.SELL,
                               size_mode=E.SizeMode.CLOSE if target[s] == 0 else E.SizeMode.QTY,
                               qty=0.0 if target[s] == 0 else q)
            if c is not None:
                self.pending[c].add(oid)
        self.last_rebalance[a] = self.t

    # ---- protective orders ------------------------------------------------------------------------
    def _protect(self, c: int, side: int) -> None:
        """Resting exits for the position ``side`` about to exist; levels from this bar's close."""
        pr = self.protection
        if not pr.any:
            return
        self.protected[c] = True
        a, s = int(self.account_of[c]), int(self.symbol_of[c])
        b = self._bar
        px = float(b.close[s])
        out_side = E.Side.SELL if side == 1 else E.Side.BUY
        book = self.protective[c]
        if pr.stop_loss_pct:
            book["stop"] = self._submit(a, s, purpose="protect", type=E.OrderType.STOP, side=out_side,
                                        size_mode=E.SizeMode.CLOSE, stop_price=px * (1.0 - side * pr.stop_loss_pct))
        if pr.take_profit_pct:
            book["take_profit"] = self._submit(a, s, purpose="protect", type=E.OrderType.TAKE_PROFIT, side=out_side,
                                               size_mode=E.SizeMode.CLOSE,
                                               stop_price=px * (1.0 + side * pr.take_profit_pct))
        if pr.trailing is not None:
            self.trail_extreme[c] = float(b.high[s] if side == 1 else b.low[s])
            self.trail_level[c] = np.nan
            lvl = self._trail_candidate(c, side)
            if math.isfinite(lvl):
                self.trail_level[c] = lvl
                book["trail"] = self._submit(a, s, purpose="trail", type=E.OrderType.STOP, side=out_side,
                                             size_mode=E.SizeMode.CLOSE, stop_price=lvl)

    def _place_new_protection(self) -> None:
        """fill=close: entries filled at this close; their protection rests from the next bar."""
        for c in range(self.C):
            if self.side[c] != 0 and not self.protected[c] and not self.pending[c]:
                self._protect(c, int(self.side[c]))

    def _trail_candidate(self, c: int, side: int) -> float:
        from ..risk.trailing import trail_level

        cfg = self.protection.trailing
        assert cfg is not None
        atr = float(self.atr.value[self.symbol_of[c]]) if self.atr is not None else math.nan
        return trail_level(float(self.trail_extreme[c]), atr, side == 1, cfg.kind == "atr", float(cfg.atr_multiple),
                           float(cfg.trail_pct))

    def _trail(self) -> None:
        """Ratchet every live trailing stop to the level known at this close (never loosen)."""
        if self.protection.trailing is None:
            return
        b = self._bar
        for c in range(self.C):
            side = int(self.side[c])
            if side == 0 or (self.pending[c] and not self.protective[c]):
                continue
            a, s = int(self.account_of[c]), int(self.symbol_of[c])
            ext = self.trail_extreme[c]
            hi, lo = float(b.high[s]), float(b.low[s])
            if not (math.isfinite(hi) and math.isfinite(lo)):
                continue  # closed at this bar: the level waits for its next real bar
            if math.isfinite(ext):
                self.trail_extreme[c] = max(ext, hi) if side == 1 else min(ext, lo)
            else:
                self.trail_extreme[c] = hi if side == 1 else lo
            cand = self._trail_candidate(c, side)
            if not math.isfinite(cand):
                continue
            cur = self.trail_level[c]
            if math.isfinite(cur) and not (cand > cur if side == 1 else cand < cur):
                continue
            self.trail_level[c] = cand
            oid = self.protective[c].get("trail")
            if oid is None:
                self.protective[c]["trail"] = self._submit(
                    a, s, purpose="trail", type=E.OrderType.STOP, side=E.Side.SELL if side == 1 else E.Side.BUY,
                    size_mode=E.SizeMode.CLOSE, stop_price=cand)
            else:
                self.engine.replace(a, oid, stop_price=cand)

    def _cancel_protection(self, c: int) -> None:
        a = int(self.account_of[c])
        if self.protective[c]:
            live = set(self.engine.open_orders(a).tolist())
            for oid in self.protective[c].values():
                if oid in live:
                    self.engine.cancel(a, oid)
        self.protective[c] = {}
        self.protected[c] = False
        self.trail_level[c] = np.nan
        self.trail_extreme[c] = np.nan

    # ---- the book ---------------------------------------------------------------------------------
    @property
    def equity(self) -> np.ndarray:
        return self.engine.equity

    @property
    def cash(self) -> np.ndarray:
        return self.engine.cash

    @property
    def positions(self) -> np.ndarray:
        return self.engine.positions

    def all_decisions(self) -> np.ndarray:
        return np.concatenate(self.decisions) if self.decisions else np.zeros(0, DECISION_DTYPE)

    def drain_records(self) -> tuple[np.ndarray, list[tuple[Any, ...]], list[Any]]:
        """(signal decisions, risk audit records, breaker transitions) since the last drain, and
        forget them: a long-running session stores them as it goes instead of growing forever."""
        out = (self.all_decisions(), self.audit, self.breaker_events)
        self.decisions, self.audit, self.breaker_events = [], [], []
        return out

    # ---- checkpoint -------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The whole state as plain values and arrays (see ``snapshot``)."""
        f = self.filter
        return {
            "version": 1, "t": self.t, "prev_close": self.prev_close,
            "model_hash": self.engine.models.execution_model_hash(),
            "engine": self.engine.snapshot(),
            "signals": self.signals.state(),
            "filter": {"bars_seen": f.bars_seen, "prev_ts": f.prev_ts, **{k: v.copy() for k, v in f._state.items()}},
            "gate": self.gate.state() if self.gate is not None else None,
            "clock": self.clock.state(), "adv": self.adv.state(),
            "atr": self.atr.state() if self.atr is not None else None,
            "vol": self.vol.state() if self.vol is not None else None,
            "returns": self.returns.state() if self.returns is not None else None,
            "vix": self.vix.state() if self.vix is not None else None,
            "side": self.side.copy(), "pending": [sorted(p) for p in self.pending],
            "protective": [dict(p) for p in self.protective], "protected": self.protected.copy(),
            "trail_level": self.trail_level.copy(), "trail_extreme": self.trail_extreme.copy(),
            "adds": self.adds.copy(), "open_qty": self.open_qty.copy(), "scaled_out": self.scaled_out.copy(),
            "books": [b.state() for _, b in sorted(self.books.items())],
            "losing_streak": self.losing_streak.copy(), "last_rebalance": self.last_rebalance.copy(),
            "cells": [self._q.copy(), self._last.copy()], "acct_state": self.acct_state.copy(), "outcomes": list(self.outcomes), "recheck": self._recheck,
            "counters": [self.paused_bars, self.vix_missing_bars, dict(self.state_bars)],
        }

    def snapshot(self) -> bytes:
        """The whole Trader state as bytes (a paper session's checkpoint); ``restore`` continues
        bit for bit. The run records (decisions, audit) are not part of it: they were drained."""
        return encode_state(self.state())

    def load_state(self, s: dict[str, Any]) -> None:
        if s.get("version") != 1:
            raise ValueError(f"unknown Trader state version {s.get('version')!r}")
        if s["model_hash"] != self.engine.models.execution_model_hash():
            raise ValueError("the state was written under a different market model")
        self.t = int(s["t"])
        self.prev_close = s["prev_close"]
        self.engine.restore(s["engine"])
        self.signals.load_state(s["signals"])
        f = s["filter"]
        self.filter.bars_seen, self.filter.prev_ts = int(f["bars_seen"]), int(f["prev_ts"])
        for k in self.filter._state:
            self.filter._state[k] = np.array(f[k], copy=True)
        if self.gate is not None:
            self.gate.load_state(s["gate"])
        self.clock.load_state(s["clock"])
        self.adv.load_state(s["adv"])
        for name in ("atr", "vol", "returns", "vix"):
            obj = getattr(self, name)
            if obj is not None:
                obj.load_state(s[name])
        self.side = np.array(s["side"], np.int64)
        self.pending = [set(int(i) for i in p) for p in s["pending"]]
        self.protective = [{k: int(v) for k, v in p.items()} for p in s["protective"]]
        self.protected = np.array(s["protected"], np.bool_)
        self.trail_level = np.array(s["trail_level"], np.float64)
        self.trail_extreme = np.array(s["trail_extreme"], np.float64)
        self.adds = np.array(s["adds"], np.int64)
        self.open_qty = np.array(s["open_qty"], np.float64)
        self.scaled_out = np.array(s["scaled_out"], np.bool_)
        self.books = {}
        for b in s["books"]:
            book = TripBook.from_state(list(b))
            self.books[(book.portfolio, book.symbol)] = book
        self.losing_streak = np.array(s["losing_streak"], np.float64)
        self.last_rebalance = np.array(s["last_rebalance"], np.int64)
        self.acct_state = np.array(s["acct_state"], np.int64)
        self._q, self._last = (np.array(x, np.float64) for x in s["cells"])
        self.outcomes = [int(x) for x in s["outcomes"]]
        self._recheck = bool(s["recheck"])
        self.paused_bars, self.vix_missing_bars, bars = s["counters"]
        self.state_bars = {k: int(v) for k, v in bars.items()}

    @classmethod
    def restore(cls, config: TraderConfig, signals: SignalStream, data: bytes, *,
                vix: VixAsOf | None = None) -> Trader:
        """A Trader that continues exactly where the one that wrote ``data`` stopped."""
        tr = cls(config, signals, vix=vix)
        tr.load_state(decode_state(data))
        return tr


_REJECT = {v: k.lower() for k, v in E.RejectReason._asdict().items()}


def _reject_name(code: int) -> str:
    return _REJECT.get(code, str(code))
