"""A backtest stepped one bar at a time on the streaming engine: the loop paper trading runs.

Why a loop and not one kernel call: circuit breakers judge equity, drawdown, losing streaks and
exposure *after* each bar and change what the next decision may do, and protective stops are
resting orders that must be placed, amended and cancelled as positions come and go. None of that
can be precomputed. So when the risk layer is on, ``run_backtest`` drives ``engine.Engine`` bar by
bar through ``SteppedTrader`` -- the same per-bar decision a paper session makes -- and the orders
it sends are plain engine orders (market / market-on-close entries sized ALL_IN, QTY or RISK at
fill, CLOSE exits, STOP and TAKE_PROFIT protection). With no rule firing the result equals the
one-call ``simulate_signals`` run exactly (pinned by a parity test).

Per bar ``t`` (``fill=next_open``): the engine steps bar ``t`` (fills of orders sent at ``t-1``,
intrabar stops); the breakers are fed the marked equity, losing streak, exposure, error rate,
data gap, VIX and volatility percentile at ``t``'s close; the signal filters decide with the
breaker state as a block (reduce-only/halted stop new positions, halted also stops exits); the
allowed signals become orders that arrive before ``t+1``'s open, each with its protective stops.
With ``fill=close`` the same decision is made from bar ``t`` and the book marked at ``t``'s close
before the step, and the orders are market-on-close orders that fill at that close.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl

from ..engine import enums as E
from ..errors import InvalidInput
from ..risk import RiskConfig, decision_frame
from ..risk.breakers import BreakerTransition, CircuitBreakers
from ..risk.codes import RiskReason, TradingState, reason_name
from ..risk.config import BreakerConfig, TrailingStopConfig
from ..risk.sizing import correlation_scale
from ..strategies import Bars
from ..strategies.filters import DECISION_DTYPE, FilterConfig, FilterReason, SignalFilter
from .risk_wiring import RiskOutcome

__all__ = ["Allocation", "Protection", "SteppedResult", "SteppedTrader", "ERROR_WINDOW"]

ERROR_WINDOW = 50  # order outcomes the system breaker's error rate is measured over
_SIZE = {"all_in": E.SizeMode.ALL_IN, "fixed": E.SizeMode.QTY, "risk": E.SizeMode.RISK}
_PROTECTIVE_TYPES = (E.OrderType.STOP, E.OrderType.TAKE_PROFIT)


@dataclass(frozen=True)
class Protection:
    """Resting exits placed with every position: a fixed stop / take-profit as a fraction of the
    decision price (a YAML strategy's ``stop_loss_pct``/``take_profit_pct``) and a trailing stop
    amended at every close (``risk.trailing_stop``)."""

    stop_loss_pct: float | None = None
    take_profit_pct: float | None = None
    trailing: TrailingStopConfig | None = None

    @property
    def any(self) -> bool:
        return bool(self.stop_loss_pct or self.take_profit_pct or self.trailing)


@dataclass
class SteppedResult:
    equity: np.ndarray  # (T, A) per account
    cash: np.ndarray  # (T, A)
    position: np.ndarray  # (T, A, S) units held
    fills: np.ndarray  # FILL_DTYPE, by portfolio then execution order
    events: np.ndarray  # EVENT_DTYPE
    decisions: np.ndarray  # DECISION_DTYPE, one per raw signal
    risk_rows: pl.DataFrame | None
    risk_counts: dict[str, int]
    breaker_events: list[BreakerTransition]
    breaker_states: list[dict[str, Any]]
    state_bars: dict[str, int] = field(default_factory=dict)  # decisions per trading state (all portfolios)
    notes: list[str] = field(default_factory=list)  # the pre-check's warnings (missing VIX, ...)
    paused_bars: int = 0  # bars the market filter paused entries on


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000.0, tz=UTC)


def data_gap_bars(ts: np.ndarray, bar_ms: int, calendar: str) -> np.ndarray:
    """Bars missing before each bar (0 = on time): what the system breaker calls data age.

    Crypto trades around the clock, so any gap counts; an equity day bar counts missing weekdays
    only (a holiday is one); intraday equity bars count gaps within a day, not overnight.
    """
    t = np.asarray(ts, dtype=np.int64)
    out = np.zeros(t.shape[0])
    if t.shape[0] < 2:
        return out
    if calendar != "equity":
        out[1:] = np.maximum((np.diff(t) / bar_ms) - 1.0, 0.0)
    elif bar_ms >= 86_400_000:
        days = (t // 86_400_000).astype("datetime64[D]")
        out[1:] = np.maximum(np.busday_count(days[:-1], days[1:]) - 1, 0)
    else:
        same_day = (t[1:] // 86_400_000) == (t[:-1] // 86_400_000)
        out[1:] = np.where(same_day, np.maximum(np.diff(t) / bar_ms - 1.0, 0.0), 0.0)
    return out


VOL_WINDOW, VOL_RANK_WINDOW = 20, 252  # the feature defaults (features.compute.FeatureSpec)


def vol_percentile(close: np.ndarray, *, window: int = VOL_WINDOW, rank_window: int = VOL_RANK_WINDOW) -> np.ndarray:
    """Realised-volatility percentile (0..1) per bar and symbol: the market breaker's input (the
    same ``rvol_pct`` the regime labels use; NaN during warm-up, which the breaker ignores)."""
    from ..features import indicators as ind

    c = np.asarray(close, dtype=np.float64)
    out = np.full(c.shape, np.nan)
    for s in range(c.shape[1]):
        out[:, s] = ind.rolling_percentile(ind.realised_vol(c[:, s], window), rank_window)
    return out


@dataclass(frozen=True)
class Allocation:
    """How an account with several symbols sizes its positions.

    ``signals``: each symbol's signal is sized on its own (``all_in`` = an equal share of equity,
    ``fixed`` units, ``risk`` = equity fraction at risk), shrunk by ``correlation_scale`` against
    what the account already holds when ``risk.sizing.correlation_scaling`` is on.
    ``markowitz``: the signals choose WHICH symbols are held; every change of that set (and every
    ``rebalance_bars``, 0 = never) re-solves long-only mean-variance weights over the held set
    from the last ``lookback_bars`` returns and trades to them (``risk_aversion`` None =
    minimum variance).
    """

    method: str = "signals"  # signals | markowitz
    lookback_bars: int = 252
    risk_aversion: float | None = None
    max_weight: float = 1.0
    rebalance_bars: int = 0
    correlation_window: int = 60


class SteppedTrader:
    """One backtest's per-bar decision loop.

    Signal column ``c`` trades symbol ``symbol_of[c]`` in account ``account_of[c]``; the engine
    holds one account per strategy variant (shared cash across its symbols). With one symbol per
    account this is exactly ``simulate_signals``'s layout (account = portfolio).
    """

    def __init__(self, *, bars: Bars, symbol_of: np.ndarray, model: Any, cash: float, seed: int,
                 size_mode: str, size: float, short: bool, strategy: str, calendar: str, bar_ms: int,
                 filters: FilterConfig | None, risk: RiskConfig | None, precheck: RiskOutcome | None,
                 protection: Protection, run_id: str, device: str = "cpu",
                 vol_pct: np.ndarray | None = None, account_of: np.ndarray | None = None,
                 allocation: Allocation | None = None) -> None:
        from ..engine import Engine

        self.bars = bars
        self.T, self.S = bars.n_bars, bars.n_symbols
        self.symbol_of = np.asarray(symbol_of, dtype=np.int64)
        self.C = int(self.symbol_of.shape[0])
        self.account_of = (np.arange(self.C, dtype=np.int64) if account_of is None
                           else np.asarray(account_of, dtype=np.int64))
        self.A = int(self.account_of.max()) + 1 if self.C else 0
        self.cols_of = [np.flatnonzero(self.account_of == a) for a in range(self.A)]
        self.multi = any(len(c) > 1 for c in self.cols_of)
        self.alloc = allocation or Allocation()
        if self.alloc.method == "markowitz" and short:
            raise InvalidInput("markowitz allocation is long-only: drop --short")
        self.model = model
        self.fill_close = model.fill_at == "close"
        self.engine = Engine(self.A, self.S, model, cash, seed, device, float(bar_ms))
        self.size_mode, self.size, self.short = _SIZE[size_mode], float(size), bool(short)
        self.strategy = strategy
        self.risk = risk
        self.precheck = precheck
        self.protection = protection
        self.run_id = run_id
        self.filter = SignalFilter(filters or FilterConfig(), self.C, short=self.short)
        bcfg = risk.breakers if risk is not None else BreakerConfig(enabled=False)
        self.breakers: CircuitBreakers | None = CircuitBreakers(bcfg) if bcfg.enabled else None
        self.corr_scaling = bool(risk is not None and risk.sizing.correlation_scaling and self.multi)
        self.close_ts = bars.ts.astype(np.int64) + int(bar_ms)  # decisions happen at a bar's close
        self.gap = data_gap_bars(bars.ts, bar_ms, calendar)
        with np.errstate(all="ignore"):
            self.log_ret = np.vstack([np.full((1, self.S), np.nan), np.diff(np.log(bars.close), axis=0)])
        # market breaker inputs per bar: VIX known at the close, median vol percentile of the symbols
        self.vix = precheck.vix if precheck is not None else None
        self.vol_med = None
        if self.breakers is not None:  # (T, S); computed from the run's bars alone when not given
            vp = vol_percentile(bars.close) if vol_pct is None else np.asarray(vol_pct, np.float64)
            with np.errstate(all="ignore"):
                has = np.isfinite(vp).any(axis=1)
                self.vol_med = np.full(self.T, np.nan)
                if has.any():
                    self.vol_med[has] = np.nanmedian(vp[has], axis=1)
        self.atr = None
        if protection.trailing is not None and protection.trailing.kind == "atr":
            from ..risk.trailing import wilder_atr

            self.atr = np.column_stack([
                wilder_atr(bars.high[:, s], bars.low[:, s], bars.close[:, s], protection.trailing.atr_period)
                for s in range(self.S)])
        # per signal column
        C = self.C
        self.side = np.zeros(C, np.int64)  # the side the signals believe is held (-1/0/1)
        self.actual = np.zeros(C, np.int64)  # the side the engine's book holds
        self.pending: list[set[int]] = [set() for _ in range(C)]  # signal orders not yet done
        self.protective: list[dict[str, int]] = [{} for _ in range(C)]  # kind -> order id
        self.protected = np.zeros(C, np.bool_)  # resting exits set up for the current position
        self.trail_level = np.full(C, np.nan)
        self.trail_extreme = np.full(C, np.nan)
        self.trip_cash = np.zeros(C)  # cash flow of the open round trip (fills, fees included)
        self.col_qty = np.zeros(C)
        self.col_of = {(int(self.account_of[c]), int(self.symbol_of[c])): c for c in range(C)}
        # per account
        self.losing_streak = np.zeros(self.A, np.int64)
        self.last_rebalance = np.full(self.A, -(10 ** 9))
        self.outcomes: list[int] = []  # 1 = rejected, 0 = filled (system breaker window)
        self._last_inputs: list[tuple[float, int, float, float] | None] = [None] * self.A
        self._last_system: tuple[int, int, float] | None = None
        self._last_market: tuple[float | None, float | None] | None = None
        self._state = np.zeros(self.A, np.int64)
        self._halting: set[int] = set()  # accounts whose loss breaker halted at this bar (kill switch)
        # records
        self.equity = np.zeros((self.T, self.A))
        self.cash = np.zeros((self.T, self.A))
        self.position = np.zeros((self.T, self.A, self.S))
        self.fills: list[np.ndarray] = []
        self.decisions: list[np.ndarray] = []
        # bar, column, side, requested qty, approved qty, reason, state, correlation scale, kill switch
        self.audit: list[tuple[int, int, int, float, float, int, int, float, bool]] = []
        self.breaker_events: list[BreakerTransition] = []
        self.state_bars = {"active": 0, "reduce_only": 0, "halted": 0}

    # ---- the loop -----------------------------------------------------------------------------
    def run(self, entries: np.ndarray, exits: np.ndarray) -> SteppedResult:
        b = self.bars
        e = np.ascontiguousarray(np.asarray(entries, dtype=np.bool_).reshape(self.T, -1))
        x = np.ascontiguousarray(np.asarray(exits, dtype=np.bool_).reshape(e.shape))
        if e.shape[1] != self.C:
            raise ValueError(f"expected {self.C} signal columns, got {e.shape[1]}")
        eng = self.engine
        busy: np.ndarray = np.asarray(e.any(axis=1) | x.any(axis=1))
        for t in range(self.T):
            row = (int(b.ts[t]), b.open[t], b.high[t], b.low[t], b.close[t], b.volume[t])
            if self.fill_close:
                pos = eng.positions
                self._decide(t, e[t], x[t], bool(busy[t]), eng.cash + (pos * b.close[t][None, :]).sum(axis=1), pos)
                fills = eng.step(*row)
                pos = eng.positions
                self._after_fills(t, fills, pos)
                self._place_new_protection(t)
                eq = eng.equity
            else:
                fills = eng.step(*row)
                pos = eng.positions
                self._after_fills(t, fills, pos)
                eq = eng.equity
                self._decide(t, e[t], x[t], bool(busy[t]), eq, pos)
            self._trail(t)
            self.equity[t] = eq
            self.cash[t] = eng.cash
            self.position[t] = pos
        return self._result()

    # ---- after the engine step: fills, round trips, protective orders -----------------------------
    def _after_fills(self, t: int, fills: np.ndarray, pos: np.ndarray) -> None:
        if fills.shape[0]:
            self.fills.append(fills)
            self._round_trips(fills)
        ev = self.engine.events[-1] if self.engine.events else None
        if ev is not None and ev.shape[0] and int(ev["bar"][0]) == t:
            for k in ev["kind"].tolist():
                if k in (E.EventKind.REJECTED, E.EventKind.FILLED):
                    self.outcomes.append(1 if k == E.EventKind.REJECTED else 0)
            del self.outcomes[:-ERROR_WINDOW]
        for c in range(self.C):
            a, s = int(self.account_of[c]), int(self.symbol_of[c])
            held = _sign(pos[a, s])
            self.actual[c] = held
            if self.pending[c]:
                self.pending[c] &= set(self.engine.open_orders(a).tolist())
                if self.pending[c]:
                    continue
            if held != self.side[c]:  # a protective order filled, or a signal order was rejected
                self.side[c] = held
                self.filter.set_position(c, held)
                if held == 0:
                    self._cancel_protection(c)

    def _round_trips(self, fills: np.ndarray) -> None:
        """Replay this bar's fills per (account, symbol): a position back at zero closes a round
        trip, whose cash flow (fees included) feeds the account's losing streak."""
        for f in fills:
            a, s = int(f["portfolio"]), int(f["symbol"])
            c = self.col_of.get((a, s))
            if c is None:
                continue
            q = float(f["qty"]) * (1.0 if int(f["side"]) == E.Side.BUY else -1.0)
            if self.col_qty[c] == 0.0:
                self.trip_cash[c] = 0.0
            self.trip_cash[c] += -q * float(f["price"]) - float(f["fee"])
            self.col_qty[c] += q
            if abs(self.col_qty[c]) <= 1e-12:
                self.col_qty[c] = 0.0
                self.losing_streak[a] = self.losing_streak[a] + 1 if self.trip_cash[c] < 0 else 0

    # ---- the decision at a bar's close ------------------------------------------------------------
    def _decide(self, t: int, ent: np.ndarray, ex: np.ndarray, busy: bool, equity: np.ndarray,
                pos: np.ndarray) -> None:
        acct_state = self._breaker_states(t, equity, pos)
        state = acct_state[self.account_of]
        if self._halting:
            self._flatten(t, sorted(self._halting), pos, state)
            self._halting.clear()
        for s_ in acct_state.tolist():
            self.state_bars[("active", "reduce_only", "halted")[s_]] += 1
        if not busy:
            self.filter.step(ent, ex, int(self.bars.ts[t]), decision_ts=int(self.close_ts[t]))
            if self.alloc.method == "markowitz":
                self._rebalance_due(t, equity, pos, state)
            return
        reason = np.zeros(self.C, np.int64)
        if self.precheck is not None:
            reason = self.precheck.reason[t, self.symbol_of].copy()
        reason = np.where(state == TradingState.HALTED, RiskReason.TRADING_HALTED,
                          np.where(state == TradingState.REDUCE_ONLY, RiskReason.REDUCE_ONLY, reason))
        res = self.filter.step(ent, ex, int(self.bars.ts[t]), decision_ts=int(self.close_ts[t]),
                               block=reason != 0, block_exit=state == TradingState.HALTED)
        self.decisions.append(res.decisions)
        allowed = res.entries[0] | res.exits[0]
        qty = {c: self._entry_qty(t, c, equity, pos, long=bool(res.entries[0, c]))
               for c in np.flatnonzero(allowed).tolist() if self.alloc.method == "signals"}
        for rec in res.decisions:
            c, kind, why = int(rec["portfolio"]), int(rec["kind"]), int(rec["reason"])
            if why not in (FilterReason.ALLOWED, FilterReason.RISK_BLOCKED):
                continue
            opening = (kind == 0 and self.side[c] != 1) or (kind == 1 and self.short and self.side[c] != -1)
            closing = (kind == 0 and self.side[c] == -1) or (kind == 1 and self.side[c] == 1)
            if not (opening or closing):
                continue  # an exit while flat (long-only): no order exists to judge
            code = int(reason[c]) if why == FilterReason.RISK_BLOCKED else 0
            if why == FilterReason.RISK_BLOCKED and not opening:
                code = RiskReason.TRADING_HALTED
            a, s = int(self.account_of[c]), int(self.symbol_of[c])
            if opening:
                want, got, scale = qty.get(c, (self._qty_estimate(t, c, equity[a]), 0.0, 1.0))
                if why != FilterReason.ALLOWED:
                    got = 0.0
                elif c not in qty:
                    got = want
            else:
                want = got = abs(float(pos[a, s]))
                scale = 1.0
            if code == 0 and scale < 1.0:
                code = RiskReason.RESIZED
            self.audit.append((t, c, E.Side.BUY if kind == 0 else E.Side.SELL, want, got, code, int(state[c]),
                               scale, False))
        for c in np.flatnonzero(allowed).tolist():
            self._send(t, c, long=bool(res.entries[0, c]), qty=qty.get(c, (0.0, 0.0, 1.0))[1])
        if self.alloc.method == "markowitz":
            self._rebalance_due(t, equity, pos, state, changed={int(self.account_of[c]) for c in
                                                                 np.flatnonzero(allowed).tolist()})

    def _flatten(self, t: int, accounts: list[int], pos: np.ndarray, state: np.ndarray) -> None:
        """Kill switch: a loss breaker halted these accounts -- cancel their resting orders and
        close every position at the next fill. Audited as allowed orders with ``kill_switch``."""
        typ = E.OrderType.MARKET_ON_CLOSE if self.fill_close else E.OrderType.MARKET
        for a in accounts:
            for c in self.cols_of[a].tolist():
                self._cancel_protection(c)
                s = int(self.symbol_of[c])
                q = float(pos[a, s])
                if q == 0.0:
                    continue
                side = E.Side.SELL if q > 0 else E.Side.BUY
                self.pending[c].add(self.engine.submit_one(a, symbol=s, type=typ, side=side,
                                                           size_mode=E.SizeMode.CLOSE))
                self.side[c] = 0
                self.filter.set_position(c, 0)
                self.audit.append((t, c, side, abs(q), abs(q), 0, int(state[c]), 1.0, True))

    def _qty_estimate(self, t: int, c: int, equity: float) -> float:
        """The size an engine-sized entry (ALL_IN/RISK, sized at its fill) is expected to have."""
        px = float(self.bars.close[t, self.symbol_of[c]])
        if self.size_mode == E.SizeMode.QTY:
            return self.size
        if self.size_mode == E.SizeMode.RISK:
            return self.size * equity / (px * self.model.risk_stop_pct)
        return equity / px

    def _entry_qty(self, t: int, c: int, equity: np.ndarray, pos: np.ndarray,
                   *, long: bool) -> tuple[float, float, float]:
        """(requested, approved, correlation scale) of the opening leg of column c's signal.

        One symbol per account: the engine sizes at the fill (requested = the estimate, approved
        0 = "engine-sized"). Several: the quantity is fixed here -- ``all_in`` is an equal share
        of equity per symbol -- and shrunk by the correlation with what the account holds."""
        a, s = int(self.account_of[c]), int(self.symbol_of[c])
        if not self.multi:
            return self._qty_estimate(t, c, float(equity[a])), 0.0, 1.0
        px = float(self.bars.close[t, s])
        eq = float(equity[a])
        n = len(self.cols_of[a])
        if self.size_mode == E.SizeMode.QTY:
            want = self.size
        elif self.size_mode == E.SizeMode.RISK:
            want = self.size * eq / (px * self.model.risk_stop_pct)
        else:
            want = eq / n / px
        scale = 1.0
        if self.corr_scaling and eq > 0:
            held = [int(self.symbol_of[k]) for k in self.cols_of[a] if k != c and pos[a, self.symbol_of[k]] != 0]
            if held:
                rho = self._correlations(t, s, held)
                expo = np.array([pos[a, j] * self.bars.close[t, j] / eq for j in held])
                ok = np.isfinite(rho)
                assert self.risk is not None
                scale = correlation_scale(E.Side.BUY if long else E.Side.SELL, rho[ok], expo[ok],
                                          floor=self.risk.sizing.correlation_floor)
        return want, floor_lot(want * scale, self.model.lot_size), scale

    def _correlations(self, t: int, s: int, others: list[int]) -> np.ndarray:
        """Return correlations of symbol s with ``others`` over the last ``correlation_window``
        bars up to t (NaN where there is too little history)."""
        w = self.alloc.correlation_window
        r = self.log_ret[max(1, t - w + 1):t + 1]
        out = np.full(len(others), np.nan)
        if r.shape[0] < 3:
            return out
        for i, j in enumerate(others):
            x, y = r[:, s], r[:, j]
            ok = np.isfinite(x) & np.isfinite(y)
            if ok.sum() >= 3 and x[ok].std() > 0 and y[ok].std() > 0:
                out[i] = float(np.corrcoef(x[ok], y[ok])[0, 1])
        return out

    def _send(self, t: int, c: int, *, long: bool, qty: float = 0.0) -> None:
        """Orders for an allowed signal: close the opposite side, then open the signal's side."""
        a, s = int(self.account_of[c]), int(self.symbol_of[c])
        typ = E.OrderType.MARKET_ON_CLOSE if self.fill_close else E.OrderType.MARKET
        self._cancel_protection(c)
        eng = self.engine
        ids = []
        side = E.Side.BUY if long else E.Side.SELL
        if self.side[c] == (-1 if long else 1):  # close the opposite side first
            ids.append(eng.submit_one(a, symbol=s, type=typ, side=side, size_mode=E.SizeMode.CLOSE))
        target = 1 if long else (-1 if self.short else 0)
        if target != 0 and self.alloc.method == "signals":
            if self.multi:
                if qty > 0:
                    ids.append(eng.submit_one(a, symbol=s, type=typ, side=side, size_mode=E.SizeMode.QTY, qty=qty))
            else:
                ids.append(eng.submit_one(a, symbol=s, type=typ, side=side, size_mode=self.size_mode,
                                          qty=self.size))
        self.pending[c].update(ids)
        self.side[c] = target
        if target != 0 and not self.fill_close:
            self._protect(t, c, target)

    # ---- markowitz allocation -------------------------------------------------------------------
    def _rebalance_due(self, t: int, equity: np.ndarray, pos: np.ndarray, state: np.ndarray,
                       changed: set[int] | None = None) -> None:
        every = self.alloc.rebalance_bars
        for a in range(self.A):
            due = (changed is not None and a in changed) or (every > 0 and t - self.last_rebalance[a] >= every)
            if due and self._state[a] == TradingState.ACTIVE:
                self._rebalance(t, a, float(equity[a]), pos)

    def _rebalance(self, t: int, a: int, equity: float, pos: np.ndarray) -> None:
        """Trade account a to mean-variance weights over the symbols its signals hold."""
        from ..risk.sizing import InfeasiblePortfolio, markowitz_weights

        cols = [int(c) for c in self.cols_of[a] if self.side[c] == 1]
        syms = [int(self.symbol_of[c]) for c in cols]
        target = np.zeros(self.S)
        if syms and equity > 0:
            lb = self.alloc.lookback_bars
            r = self.log_ret[max(1, t - lb + 1):t + 1][:, syms]
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
                target[s] = w[j] * equity / float(self.bars.close[t, s])
        typ = E.OrderType.MARKET_ON_CLOSE if self.fill_close else E.OrderType.MARKET
        delta = np.array([target[s] - float(pos[a, s]) for s in range(self.S)])
        for s in sorted(range(self.S), key=lambda k: delta[k]):  # sells first: they fund the buys
            q = floor_lot(abs(float(delta[s])), self.model.lot_size)
            if q <= 1e-12 or (target[s] > 0 and q < 1e-6 * abs(target[s])):
                continue
            c = self.col_of.get((a, s))
            if target[s] == 0 and c is not None and self.pending[c]:
                continue  # its exit signal's CLOSE is already on the way
            oid = self.engine.submit_one(a, symbol=s, type=typ, side=E.Side.BUY if delta[s] > 0 else E.Side.SELL,
                                         size_mode=E.SizeMode.CLOSE if target[s] == 0 else E.SizeMode.QTY,
                                         qty=0.0 if target[s] == 0 else q)
            if c is not None:
                self.pending[c].add(oid)
        self.last_rebalance[a] = t

    # ---- protective orders ------------------------------------------------------------------------
    def _protect(self, t: int, c: int, side: int) -> None:
        """Resting exits for the position ``side`` about to exist; levels from bar ``t``'s close."""
        pr = self.protection
        if not pr.any:
            return
        self.protected[c] = True
        a, s = int(self.account_of[c]), int(self.symbol_of[c])
        px = float(self.bars.close[t, s])
        out_side = E.Side.SELL if side == 1 else E.Side.BUY
        book = self.protective[c]
        if pr.stop_loss_pct:
            book["stop"] = self.engine.submit_one(a, symbol=s, type=E.OrderType.STOP, side=out_side,
                                                  size_mode=E.SizeMode.CLOSE,
                                                  stop_price=px * (1.0 - side * pr.stop_loss_pct))
        if pr.take_profit_pct:
            book["take_profit"] = self.engine.submit_one(a, symbol=s, type=E.OrderType.TAKE_PROFIT, side=out_side,
                                                         size_mode=E.SizeMode.CLOSE,
                                                         stop_price=px * (1.0 + side * pr.take_profit_pct))
        if pr.trailing is not None:
            self.trail_extreme[c] = float(self.bars.high[t, s] if side == 1 else self.bars.low[t, s])
            self.trail_level[c] = np.nan
            lvl = self._trail_candidate(t, c, side)
            if math.isfinite(lvl):
                self.trail_level[c] = lvl
                book["trail"] = self.engine.submit_one(a, symbol=s, type=E.OrderType.STOP, side=out_side,
                                                       size_mode=E.SizeMode.CLOSE, stop_price=lvl)

    def _place_new_protection(self, t: int) -> None:
        """fill=close: entries filled at this close; their protection rests from the next bar."""
        for c in range(self.C):
            if self.side[c] != 0 and not self.protected[c] and not self.pending[c]:
                self._protect(t, c, int(self.side[c]))

    def _trail_candidate(self, t: int, c: int, side: int) -> float:
        cfg = self.protection.trailing
        assert cfg is not None
        ext = self.trail_extreme[c]
        if cfg.kind == "atr":
            assert self.atr is not None
            a = float(self.atr[t, self.symbol_of[c]])
            return ext - side * cfg.atr_multiple * a if math.isfinite(a) else math.nan
        return float(ext * (1.0 - side * cfg.trail_pct))

    def _trail(self, t: int) -> None:
        """Ratchet every live trailing stop to the level known at this close (never loosen)."""
        if self.protection.trailing is None:
            return
        for c in range(self.C):
            side = int(self.side[c])
            if side == 0 or (self.pending[c] and not self.protective[c]):
                continue
            a, s = int(self.account_of[c]), int(self.symbol_of[c])
            ext = self.trail_extreme[c]
            hi, lo = float(self.bars.high[t, s]), float(self.bars.low[t, s])
            if math.isfinite(ext):
                self.trail_extreme[c] = max(ext, hi) if side == 1 else min(ext, lo)
            else:
                self.trail_extreme[c] = hi if side == 1 else lo
            cand = self._trail_candidate(t, c, side)
            if not math.isfinite(cand):
                continue
            cur = self.trail_level[c]
            if math.isfinite(cur) and not (cand > cur if side == 1 else cand < cur):
                continue
            self.trail_level[c] = cand
            oid = self.protective[c].get("trail")
            if oid is None:
                self.protective[c]["trail"] = self.engine.submit_one(
                    a, symbol=s, type=E.OrderType.STOP, side=E.Side.SELL if side == 1 else E.Side.BUY,
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

    # ---- circuit breakers ---------------------------------------------------------------------
    def _breaker_states(self, t: int, equity: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """Feed every breaker the book at bar t's close; return each account's trading state.

        An update whose inputs equal the previous ones while the account is active is skipped: the
        rules are functions of those inputs (and, only when not active, of time), and a flat book's
        day roll is unchanged because the day opens with the last equity seen -- the same value.
        """
        state = np.zeros(self.A, np.int64)
        br = self.breakers
        if br is None:
            return state
        when: datetime | None = None
        values = np.abs(pos * self.bars.close[t][None, :])  # (A, S) position values
        for a in range(self.A):
            gross, largest = float(values[a].sum()), float(values[a].max(initial=0.0))
            key = (float(equity[a]), int(self.losing_streak[a]), gross, largest)
            if key == self._last_inputs[a] and self._state[a] == TradingState.ACTIVE:
                continue
            self._last_inputs[a] = key
            when = when or _dt(int(self.close_ts[t]))
            br.update_strategy(self._strategy_scope(a), when, equity=key[0], losing_streak=key[1])
            br.update_portfolio(str(a), when, equity=key[0], gross_exposure=gross, largest_position=largest)
        sys_in = (len(self.outcomes), int(sum(self.outcomes)), float(self.gap[t]))
        if sys_in != self._last_system or br.get("system", "system").state != TradingState.ACTIVE:
            self._last_system = sys_in
            when = when or _dt(int(self.close_ts[t]))
            br.update_system(when, requests=sys_in[0], errors=sys_in[1], data_age_bars=sys_in[2])
        vix = None if self.vix is None or not math.isfinite(self.vix[t]) else float(self.vix[t])
        vp = None if self.vol_med is None or not math.isfinite(self.vol_med[t]) else float(self.vol_med[t])
        if (vix, vp) != self._last_market or br.get("market", "market").state != TradingState.ACTIVE:
            self._last_market = (vix, vp)
            br.update_market(when or _dt(int(self.close_ts[t])), vix=vix, vol_percentile=vp)
        for a in range(self.A):
            state[a] = br.state_for(strategy=self._strategy_scope(a), portfolio=str(a))
        self._state = state
        events = br.drain_events()
        self.breaker_events.extend(events)
        if br.config.flatten_on_loss_halt:
            for ev in events:
                if ev.to_state == "halted" and ev.event == "trip_halt" and ev.level in ("strategy", "portfolio"):
                    self._halting.add(int(ev.scope.rsplit("#", 1)[-1]) if ev.level == "strategy" else int(ev.scope))
        return state

    def _strategy_scope(self, a: int) -> str:
        return f"{self.strategy}#{a}"

    # ---- results ------------------------------------------------------------------------------
    def _result(self) -> SteppedResult:
        fills = np.concatenate(self.fills) if self.fills else np.zeros(0, E.FILL_DTYPE)
        fills = fills[np.argsort(fills["portfolio"], kind="stable")]
        decisions = np.concatenate(self.decisions) if self.decisions else np.zeros(0, DECISION_DTYPE)
        rows, counts = self._audit_frame()
        states = [s.to_row() for s in self.breakers.states()] if self.breakers is not None else []
        pc = self.precheck
        return SteppedResult(self.equity, self.cash, self.position, fills, self.engine.all_events(), decisions,
                             rows, counts, self.breaker_events, states, dict(self.state_bars),
                             list(pc.notes) if pc is not None else [], int(pc.paused.sum()) if pc is not None else 0)

    def _audit_frame(self) -> tuple[pl.DataFrame | None, dict[str, int]]:
        if self.risk is None:
            return None, {}
        n = len(self.audit)
        a = np.array(self.audit, dtype=np.float64).reshape(n, 9)
        bar, col, side = a[:, 0].astype(np.int64), a[:, 1].astype(np.int64), a[:, 2].astype(np.int64)
        reason, state = a[:, 5].astype(np.int64), a[:, 6].astype(np.int64)
        sym = self.symbol_of[col] if n else np.zeros(0, np.int64)
        orders = np.zeros(n, E.ORDER_DTYPE)
        orders["portfolio"] = self.account_of[col] if n else 0
        orders["bar"], orders["symbol"], orders["side"] = bar, sym, side
        orders["qty"] = a[:, 3]
        orders["order_id"] = np.arange(1, n + 1)
        pc = self.precheck
        last_px = pc.last_px[bar, sym] if pc is not None and n else np.full(n, np.nan)
        adv = pc.adv[bar, sym] if pc is not None and n else np.full(n, np.nan)
        paused = pc.paused[bar] if pc is not None and n else np.zeros(n, np.bool_)
        ts = pl.Series("ts", self.close_ts[bar]).cast(pl.Datetime("ms", "UTC"))
        assert self.risk is not None
        frame = decision_frame(run_id=self.run_id, context="backtest", ts=ts, orders=orders, reason=reason,
                               symbols=list(self.bars.symbols), last_price=last_px, adv=adv, config=self.risk,
                               state=state, entries_paused=paused, strategy=self.strategy)
        if n:
            resized = reason == RiskReason.RESIZED
            approved = np.where(reason == 0, a[:, 3], np.where(resized, a[:, 4], 0.0))
            frame = frame.with_columns(
                pl.Series("price", self.bars.close[bar, sym]), pl.Series("approved_qty", approved),
                pl.Series("decision", np.where(resized, "resized", frame["decision"].to_numpy())),
                pl.Series("inputs", [{**i, "correlation_scale": float(k), "kill_switch": bool(ks)}
                                     for i, k, ks in zip(frame["inputs"].to_list(), a[:, 7].tolist(),
                                                         a[:, 8].tolist(), strict=True)]))
        codes, k = np.unique(reason, return_counts=True)
        return frame, {reason_name(int(c)): int(m) for c, m in zip(codes, k, strict=True)}


def floor_lot(q: float, lot: float) -> float:
    """Round a quantity down to the venue's lot size (0 = any fraction)."""
    return math.floor(q / lot + 1e-9) * lot if lot and lot > 0 else q


def _sign(q: float) -> int:
    return 1 if q > 0 else (-1 if q < 0 else 0)
