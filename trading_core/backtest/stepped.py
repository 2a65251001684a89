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
from ..risk import RiskConfig, decision_frame
from ..risk.breakers import BreakerTransition, CircuitBreakers
from ..risk.codes import RiskReason, TradingState, reason_name
from ..risk.config import BreakerConfig, TrailingStopConfig
from ..strategies import Bars
from ..strategies.filters import DECISION_DTYPE, FilterConfig, FilterReason, SignalFilter
from .risk_wiring import RiskOutcome

__all__ = ["Protection", "SteppedResult", "SteppedTrader", "ERROR_WINDOW"]

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
    equity: np.ndarray  # (T, P)
    cash: np.ndarray  # (T, P)
    position: np.ndarray  # (T, P) units of the portfolio's symbol
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


class SteppedTrader:
    """One backtest's per-bar decision loop over ``P`` signal portfolios (portfolio ``p`` trades
    symbol ``symbol_of[p]``, as in ``simulate_signals``)."""

    def __init__(self, *, bars: Bars, symbol_of: np.ndarray, model: Any, cash: float, seed: int,
                 size_mode: str, size: float, short: bool, strategy: str, calendar: str, bar_ms: int,
                 filters: FilterConfig | None, risk: RiskConfig | None, precheck: RiskOutcome | None,
                 protection: Protection, run_id: str, device: str = "cpu",
                 vol_pct: np.ndarray | None = None) -> None:
        from ..engine import Engine

        self.bars = bars
        self.T, self.S = bars.n_bars, bars.n_symbols
        self.symbol_of = np.asarray(symbol_of, dtype=np.int64)
        self.P = int(self.symbol_of.shape[0])
        self.model = model
        self.fill_close = model.fill_at == "close"
        self.engine = Engine(self.P, self.S, model, cash, seed, device, float(bar_ms))
        self.size_mode, self.size, self.short = _SIZE[size_mode], float(size), bool(short)
        self.strategy = strategy
        self.risk = risk
        self.precheck = precheck
        self.protection = protection
        self.run_id = run_id
        self.filter = SignalFilter(filters or FilterConfig(), self.P, short=self.short)
        bcfg = risk.breakers if risk is not None else BreakerConfig(enabled=False)
        self.breakers: CircuitBreakers | None = CircuitBreakers(bcfg) if bcfg.enabled else None
        self.close_ts = bars.ts.astype(np.int64) + int(bar_ms)  # decisions happen at a bar's close
        self.gap = data_gap_bars(bars.ts, bar_ms, calendar)
        self.vol_pct = None
        if self.breakers is not None:  # (T, S); computed from the run's bars alone when not given
            self.vol_pct = vol_percentile(bars.close) if vol_pct is None else np.asarray(vol_pct, np.float64)
        self.atr = None
        if protection.trailing is not None and protection.trailing.kind == "atr":
            from ..risk.trailing import wilder_atr

            self.atr = np.column_stack([
                wilder_atr(bars.high[:, s], bars.low[:, s], bars.close[:, s], protection.trailing.atr_period)
                for s in range(self.S)])
        # per-portfolio book-keeping
        self.side = np.zeros(self.P, np.int64)  # the side the signals believe is held (-1/0/1)
        self.pending: list[set[int]] = [set() for _ in range(self.P)]  # signal orders not yet done
        self.protective: list[dict[str, int]] = [{} for _ in range(self.P)]  # kind -> order id
        self.trail_level = np.full(self.P, np.nan)
        self.trail_extreme = np.full(self.P, np.nan)
        self.actual = np.zeros(self.P, np.int64)  # the side the engine's book holds
        self.entry_equity = np.zeros(self.P)
        self.start_equity = np.full(self.P, float(cash))
        self.losing_streak = np.zeros(self.P, np.int64)
        self.outcomes: list[int] = []  # 1 = rejected, 0 = accepted (system breaker window)
        # records
        self.equity = np.zeros((self.T, self.P))
        self.cash = np.zeros((self.T, self.P))
        self.position = np.zeros((self.T, self.P))
        self.fills: list[np.ndarray] = []
        self.decisions: list[np.ndarray] = []
        self.audit: list[tuple[int, int, int, float, int, int]] = []  # bar, p, side, qty, reason, state
        self.breaker_events: list[BreakerTransition] = []
        self.state_bars = {"active": 0, "reduce_only": 0, "halted": 0}

    # ---- the loop -----------------------------------------------------------------------------
    def run(self, entries: np.ndarray, exits: np.ndarray) -> SteppedResult:
        b = self.bars
        e = np.ascontiguousarray(np.asarray(entries, dtype=np.bool_).reshape(self.T, -1))
        x = np.ascontiguousarray(np.asarray(exits, dtype=np.bool_).reshape(e.shape))
        for t in range(self.T):
            row = (int(b.ts[t]), b.open[t], b.high[t], b.low[t], b.close[t], b.volume[t])
            if self.fill_close:
                self._decide(t, e[t], x[t], self._marked(t))
                self._after_fills(t, self.engine.step(*row))
                self._place_new_protection(t)
            else:
                self._after_fills(t, self.engine.step(*row))
                self._decide(t, e[t], x[t], self.engine.equity)
            self._trail(t)
            self.equity[t] = self.engine.equity
            self.cash[t] = self.engine.cash
            self.position[t] = self.engine.positions[np.arange(self.P), self.symbol_of]
        return self._result()

    def _marked(self, t: int) -> np.ndarray:
        """Equity marked at bar t's close before the step (exact when orders fill at closes)."""
        pos = self.engine.positions
        return self.engine.cash + (pos * self.bars.close[t][None, :]).sum(axis=1)

    # ---- after the engine step: fills, round trips, protective orders -----------------------------
    def _after_fills(self, t: int, fills: np.ndarray) -> None:
        if fills.shape[0]:
            self.fills.append(fills)
        ev = self.engine.events[-1] if self.engine.events else None
        if ev is not None and ev.shape[0] and int(ev["bar"][0]) == t:
            for k in ev["kind"].tolist():
                if k in (E.EventKind.REJECTED, E.EventKind.FILLED):
                    self.outcomes.append(1 if k == E.EventKind.REJECTED else 0)
            del self.outcomes[:-ERROR_WINDOW]
        pos = self.engine.positions
        eq = self.engine.equity
        before = self.equity[t - 1] if t > 0 else self.start_equity
        for p in range(self.P):
            held = _sign(pos[p, self.symbol_of[p]])
            if held != self.actual[p]:  # the book changed side: a round trip ended and/or began
                if self.actual[p] != 0:
                    loss = eq[p] < self.entry_equity[p]
                    self.losing_streak[p] = self.losing_streak[p] + 1 if loss else 0
                if held != 0:
                    self.entry_equity[p] = before[p]
                self.actual[p] = held
            if self.pending[p]:
                self.pending[p] &= set(self.engine.open_orders(p).tolist())
                if self.pending[p]:
                    continue
            if held != self.side[p]:  # a protective order filled, or a signal order was rejected
                self.side[p] = held
                self.filter.set_position(p, held)
                if held == 0:
                    self._cancel_protection(p)

    # ---- the decision at a bar's close ------------------------------------------------------------
    def _decide(self, t: int, ent: np.ndarray, ex: np.ndarray, equity: np.ndarray) -> None:
        state = self._breaker_states(t, equity)
        reason = np.zeros(self.P, np.int64)
        if self.precheck is not None:
            reason = self.precheck.reason[t, self.symbol_of].copy()
        reason = np.where(state == TradingState.HALTED, RiskReason.TRADING_HALTED,
                          np.where(state == TradingState.REDUCE_ONLY, RiskReason.REDUCE_ONLY, reason))
        for s_ in state.tolist():
            self.state_bars[("active", "reduce_only", "halted")[s_]] += 1
        if not (ent.any() or ex.any()):
            self.filter.step(ent, ex, int(self.bars.ts[t]), decision_ts=int(self.close_ts[t]))
            return
        res = self.filter.step(ent, ex, int(self.bars.ts[t]), decision_ts=int(self.close_ts[t]),
                               block=reason != 0, block_exit=state == TradingState.HALTED)
        d = res.decisions
        self.decisions.append(d)
        for rec in d:
            p, kind, why = int(rec["portfolio"]), int(rec["kind"]), int(rec["reason"])
            if why not in (FilterReason.ALLOWED, FilterReason.RISK_BLOCKED):
                continue
            opening = (kind == 0 and self.side[p] != 1) or (kind == 1 and self.short and self.side[p] != -1)
            closing = (kind == 0 and self.side[p] == -1) or (kind == 1 and self.side[p] == 1)
            if not (opening or closing):
                continue  # an exit while flat (long-only): no order exists to judge
            code = int(reason[p]) if why == FilterReason.RISK_BLOCKED else 0
            if why == FilterReason.RISK_BLOCKED and not opening:
                code = RiskReason.TRADING_HALTED
            qty = self._qty_estimate(t, p, equity[p]) if opening else abs(float(
                self.engine.positions[p, self.symbol_of[p]]))
            self.audit.append((t, p, E.Side.BUY if kind == 0 else E.Side.SELL, qty, code, int(state[p])))
        for p in np.flatnonzero(res.entries[0] | res.exits[0]).tolist():
            self._send(t, p, long=bool(res.entries[0, p]))

    def _qty_estimate(self, t: int, p: int, equity: float) -> float:
        px = float(self.bars.close[t, self.symbol_of[p]])
        if self.size_mode == E.SizeMode.QTY:
            return self.size
        if self.size_mode == E.SizeMode.RISK:
            return self.size * equity / (px * self.model.risk_stop_pct)
        return equity / px

    def _send(self, t: int, p: int, *, long: bool) -> None:
        """Orders for an allowed signal: close the opposite side, then open the signal's side."""
        s = int(self.symbol_of[p])
        typ = E.OrderType.MARKET_ON_CLOSE if self.fill_close else E.OrderType.MARKET
        self._cancel_protection(p)
        eng = self.engine
        ids = []
        side = E.Side.BUY if long else E.Side.SELL
        if self.side[p] == (-1 if long else 1):  # close the opposite side first
            ids.append(eng.submit_one(p, symbol=s, type=typ, side=side, size_mode=E.SizeMode.CLOSE))
        target = 1 if long else (-1 if self.short else 0)
        if target != 0:
            ids.append(eng.submit_one(p, symbol=s, type=typ, side=side, size_mode=self.size_mode, qty=self.size))
        self.pending[p].update(ids)
        self.side[p] = target
        if target != 0 and not self.fill_close:
            self._protect(t, p, target)

    # ---- protective orders ------------------------------------------------------------------------
    def _protect(self, t: int, p: int, side: int) -> None:
        """Resting exits for the position ``side`` about to exist; levels from bar ``t``'s close."""
        pr = self.protection
        if not pr.any:
            return
        s = int(self.symbol_of[p])
        c = float(self.bars.close[t, s])
        out_side = E.Side.SELL if side == 1 else E.Side.BUY
        book = self.protective[p]
        if pr.stop_loss_pct:
            lvl = c * (1.0 - side * pr.stop_loss_pct)
            book["stop"] = self.engine.submit_one(p, symbol=s, type=E.OrderType.STOP, side=out_side,
                                            size_mode=E.SizeMode.CLOSE, stop_price=lvl)
        if pr.take_profit_pct:
            lvl = c * (1.0 + side * pr.take_profit_pct)
            book["take_profit"] = self.engine.submit_one(p, symbol=s, type=E.OrderType.TAKE_PROFIT, side=out_side,
                                                   size_mode=E.SizeMode.CLOSE, stop_price=lvl)
        if pr.trailing is not None:
            self.trail_extreme[p] = float(self.bars.high[t, s] if side == 1 else self.bars.low[t, s])
            self.trail_level[p] = np.nan
            lvl = self._trail_candidate(t, p, side)
            if math.isfinite(lvl):
                self.trail_level[p] = lvl
                book["trail"] = self.engine.submit_one(p, symbol=s, type=E.OrderType.STOP, side=out_side,
                                                 size_mode=E.SizeMode.CLOSE, stop_price=lvl)

    def _place_new_protection(self, t: int) -> None:
        """fill=close: entries filled at this close; their protection rests from the next bar."""
        for p in range(self.P):
            if self.side[p] != 0 and not self.protective[p] and not self.pending[p]:
                self._protect(t, p, int(self.side[p]))

    def _trail_candidate(self, t: int, p: int, side: int) -> float:
        cfg = self.protection.trailing
        assert cfg is not None
        ext = self.trail_extreme[p]
        if cfg.kind == "atr":
            assert self.atr is not None
            a = float(self.atr[t, self.symbol_of[p]])
            return ext - side * cfg.atr_multiple * a if math.isfinite(a) else math.nan
        return float(ext * (1.0 - side * cfg.trail_pct))

    def _trail(self, t: int) -> None:
        """Ratchet every live trailing stop to the level known at this close (never loosen)."""
        if self.protection.trailing is None:
            return
        for p in range(self.P):
            side = int(self.side[p])
            if side == 0 or self.pending[p] and not self.protective[p]:
                continue
            s = int(self.symbol_of[p])
            ext = self.trail_extreme[p]
            hi, lo = float(self.bars.high[t, s]), float(self.bars.low[t, s])
            self.trail_extreme[p] = (max(ext, hi) if side == 1 else min(ext, lo)) if math.isfinite(ext) else \
                (hi if side == 1 else lo)
            cand = self._trail_candidate(t, p, side)
            if not math.isfinite(cand):
                continue
            cur = self.trail_level[p]
            better = not math.isfinite(cur) or (cand > cur if side == 1 else cand < cur)
            if not better:
                continue
            self.trail_level[p] = cand
            oid = self.protective[p].get("trail")
            if oid is None:
                self.protective[p]["trail"] = self.engine.submit_one(
                    p, symbol=s, type=E.OrderType.STOP, side=E.Side.SELL if side == 1 else E.Side.BUY,
                    size_mode=E.SizeMode.CLOSE, stop_price=cand)
            else:
                self.engine.replace(p, oid, stop_price=cand)

    def _cancel_protection(self, p: int) -> None:
        live = set(self.engine.open_orders(p).tolist())
        for oid in self.protective[p].values():
            if oid in live:
                self.engine.cancel(p, oid)
        self.protective[p] = {}
        self.trail_level[p] = np.nan
        self.trail_extreme[p] = np.nan

    # ---- circuit breakers ---------------------------------------------------------------------
    def _breaker_states(self, t: int, equity: np.ndarray) -> np.ndarray:
        state = np.zeros(self.P, np.int64)
        br = self.breakers
        if br is None:
            return state
        when = _dt(int(self.close_ts[t]))
        close = self.bars.close[t]
        pos = self.engine.positions
        for p in range(self.P):
            value = abs(float(pos[p, self.symbol_of[p]]) * float(close[self.symbol_of[p]]))
            br.update_strategy(self._strategy_scope(p), when, equity=float(equity[p]),
                               losing_streak=int(self.losing_streak[p]))
            br.update_portfolio(str(p), when, equity=float(equity[p]), gross_exposure=value,
                                largest_position=value)
        br.update_system(when, requests=len(self.outcomes), errors=int(sum(self.outcomes)),
                         data_age_bars=float(self.gap[t]))
        vix = None
        if self.precheck is not None and self.precheck.vix is not None:
            v = float(self.precheck.vix[t])
            vix = v if math.isfinite(v) else None
        vp = None
        if self.vol_pct is not None:
            row = self.vol_pct[t]
            if np.isfinite(row).any():
                vp = float(np.nanmedian(row))
        br.update_market(when, vix=vix, vol_percentile=vp)
        for p in range(self.P):
            state[p] = br.state_for(strategy=self._strategy_scope(p), portfolio=str(p))
        self.breaker_events.extend(br.drain_events())
        return state

    def _strategy_scope(self, p: int) -> str:
        return f"{self.strategy}#{p}"

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
        a = np.array(self.audit, dtype=np.float64).reshape(n, 6)
        bar, port, side = a[:, 0].astype(np.int64), a[:, 1].astype(np.int64), a[:, 2].astype(np.int64)
        reason, state = a[:, 4].astype(np.int64), a[:, 5].astype(np.int64)
        sym = self.symbol_of[port] if n else np.zeros(0, np.int64)
        orders = np.zeros(n, E.ORDER_DTYPE)
        orders["portfolio"], orders["bar"], orders["symbol"], orders["side"] = port, bar, sym, side
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
            frame = frame.with_columns(pl.Series("price", self.bars.close[bar, sym]))
        codes, k = np.unique(reason, return_counts=True)
        return frame, {reason_name(int(c)): int(m) for c, m in zip(codes, k, strict=True)}


def _sign(q: float) -> int:
    return 1 if q > 0 else (-1 if q < 0 else 0)
