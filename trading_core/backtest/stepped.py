"""The stepped backtest driver: stored bars replayed through the one trading loop (``Trader``).

Why a loop and not one kernel call: circuit breakers judge equity, drawdown, losing streaks and
exposure *after* each bar and change what the next decision may do, and protective stops are
resting orders placed, amended and cancelled as positions come and go. So when a per-bar rule
applies, ``run_backtest`` does ``for bar in replay: trader.on_bar(bar)`` -- the same object a
paper session steps on its feed -- and keeps the book after every bar. With no rule firing the
result equals the one-call ``simulate_signals`` run exactly (pinned by parity tests).

The Trader is warmed up on the bars before the run (its volatility rank, ADV, ATR and returns
window start from real history, as a paper session's would); the strategy's signals come from
its batch ``signals()`` on the run's bars (``ReplaySignals``), which every strategy's stream is
pinned to equal.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from ..engine import enums as E
from ..risk import RiskConfig, decision_frame
from ..risk.breakers import BreakerTransition
from ..risk.codes import RiskReason, reason_name
from ..strategies import Bars
from ..strategies.base import aligned_bars
from ..strategies.position_rules import PositionRules
from ..timeframes import timeframe_ms
from ..trading import Allocation, Protection, ReplaySignals, Trader, TraderConfig, VixAsOf, bar_slices
from ..trading.trader import AUDIT_FIELDS, VOL_RANK_WINDOW, VOL_WINDOW

__all__ = ["Allocation", "Protection", "SteppedResult", "build_trader", "history_lead", "load_vix_asof", "run_stepped",
           "vix_notes"]


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
    notes: list[str] = field(default_factory=list)  # warnings (missing VIX, ...)
    paused_bars: int = 0  # bars the market filter paused entries on


def history_lead(timeframe: str, calendar: str) -> timedelta:
    """How far before a run the warm-up history reaches: enough bars for the volatility rank."""
    span = timedelta(milliseconds=timeframe_ms(timeframe) * (VOL_WINDOW + VOL_RANK_WINDOW + 1))
    return span * 1.6 if calendar == "equity" else span  # weekends and holidays


def load_vix_asof(request: Any, warehouse: Any, first_ms: int, last_ms: int) -> VixAsOf | None:
    """The VIX closes the market filter and breaker read over bars ``first_ms..last_ms`` (their
    decision instants), None when the risk layer needs none."""
    risk: RiskConfig | None = request.risk
    if risk is None or not (risk.market_filter.enabled or risk.breakers.enabled):
        return None
    from ..risk import load_vix

    bar_ms = timeframe_ms(request.timeframe)
    mf = risk.market_filter
    start = datetime.fromtimestamp((int(first_ms) + bar_ms) / 1000.0, tz=UTC)
    end = datetime.fromtimestamp((int(last_ms) + bar_ms) / 1000.0, tz=UTC)
    frame = load_vix(warehouse, mf, start=start, end=end + timedelta(microseconds=1))
    ts = frame["ts"].dt.epoch("ms").to_numpy().astype(np.int64) if frame.height else np.zeros(0, np.int64)
    close = frame["close"].cast(pl.Float64).fill_null(np.nan).to_numpy() if frame.height else np.zeros(0)
    return VixAsOf(ts, close, bar_ms=timeframe_ms(mf.vix_timeframe))


def _history(request: Any, warehouse: Any, symbols: tuple[str, ...], first_ms: int) -> Bars | None:
    """The bars of every symbol before the run, on the union of their timestamps (NaN = no bar)."""
    if not hasattr(warehouse, "read_bars"):
        return None
    cals = {request.calendar_of(s) for s in symbols} if getattr(request, "venues", ()) else \
        {request.resolved_calendar()}
    lead = history_lead(request.timeframe, "equity" if "equity" in cals else "crypto")  # each its own bars
    first = datetime.fromtimestamp(int(first_ms) / 1000.0, tz=UTC)
    frames = [warehouse.read_bars(request.venue_of(s) if hasattr(request, "venue_of") else request.venue, s,
                                  request.timeframe, first - lead, first) for s in symbols]
    if any(f.height == 0 for f in frames):
        return None
    hist = aligned_bars(frames, symbols)
    return hist if hist.n_bars else None


def build_trader(request: Any, warehouse: Any, symbols: tuple[str, ...], first_ms: int, last_ms: int,
                 signals: Any, symbol_of: np.ndarray, account_of: np.ndarray, model: Any,
                 protection: Protection, run_id: str, rules: PositionRules | None = None, *,
                 context: str = "backtest", record_events: bool = False) -> Trader:
    """The Trader ``request`` describes, its market inputs warmed up on the bars before
    ``first_ms``: the ONE construction stepped backtests and paper sessions share, so a replay
    session and ``trading backtest --risk`` on the same bars give the same fills."""
    config = TraderConfig(
        symbols=tuple(symbols), symbol_of=tuple(int(s) for s in symbol_of),
        account_of=tuple(int(a) for a in account_of), model=model, cash=request.cash, seed=request.seed,
        size_mode=request.sizing, size=request.size, short=request.short, strategy=request.strategy,
        calendar=request.resolved_calendar(), bar_ms=timeframe_ms(request.timeframe), filters=request.filters,
        risk=request.risk, protection=protection, position=rules or PositionRules(),
        allocation=Allocation(method=request.allocation, lookback_bars=request.markowitz_lookback,
                              risk_aversion=request.markowitz_risk_aversion, max_weight=request.max_weight,
                              rebalance_bars=request.rebalance_bars),
        run_id=run_id, context=context, device=request.device, record_events=record_events)
    trader = Trader(config, signals, vix=load_vix_asof(request, warehouse, first_ms, last_ms))
    history = _history(request, warehouse, tuple(symbols), first_ms) if request.risk is not None else None
    if history is not None:
        trader.warm_up(bar_slices(history), strategy=False)
    return trader


def run_stepped(request: Any, warehouse: Any, bars: Bars, entries: np.ndarray, exits: np.ndarray,
                symbol_of: np.ndarray, account_of: np.ndarray, model: Any, protection: Protection,
                run_id: str, rules: PositionRules | None = None) -> SteppedResult:
    """Replay ``bars`` through a Trader built from ``request``; the book after every bar."""
    # a backtest keeps the book, fills and audit; events are a session's ledger
    trader = build_trader(request, warehouse, tuple(bars.symbols), int(bars.ts[0]), int(bars.ts[-1]),
                          ReplaySignals(entries, exits), symbol_of, account_of, model, protection, run_id, rules)
    T, A, S = bars.n_bars, trader.A, bars.n_symbols
    equity, cash, position = np.zeros((T, A)), np.zeros((T, A)), np.zeros((T, A, S))
    fills: list[np.ndarray] = []
    eng = trader.engine
    for t, bar in enumerate(bar_slices(bars)):
        trader.on_bar(bar)
        if trader.last_fills.shape[0]:
            fills.append(trader.last_fills)
        equity[t], cash[t], position[t] = eng.equity, eng.cash, eng.positions
    fl = np.concatenate(fills) if fills else np.zeros(0, E.FILL_DTYPE)
    fl = fl[np.argsort(fl["portfolio"], kind="stable")]
    notes = vix_notes(request, trader, T)
    rows, counts = _audit_frame(request, trader, bars, run_id)
    states = [s.to_row() for s in trader.gate.breakers.states()] if trader.breakers_on and trader.gate else []
    return SteppedResult(equity, cash, position, fl, eng.all_events(), trader.all_decisions(), rows, counts,
                         list(trader.breaker_events), states, dict(trader.state_bars), notes, trader.paused_bars)


def vix_notes(request: Any, trader: Trader, T: int) -> list[str]:
    """The market filter's warning when VIX is missing: said once, before the results."""
    risk = request.risk
    if risk is None or not risk.market_filter.enabled:
        return []
    mf = risk.market_filter
    loaded = trader.vix.loaded if trader.vix is not None else 0
    missing = trader.vix_missing_bars
    if loaded and not missing:
        return []
    action = "entries paused (fail closed)" if mf.on_missing_vix == "pause" else "entries allowed (fail open)"
    what = (f"no {mf.vix_symbol} {mf.vix_timeframe} bars on {mf.vix_venue} in the warehouse"
            if not loaded else f"{mf.vix_symbol} missing or stale at {missing} of {T} bars")
    note = (f"{what}: {action} per risk.market_filter.on_missing_vix={mf.on_missing_vix}; ingest "
            f"{mf.vix_symbol}, set on_missing_vix, disable risk.market_filter, or run without --risk")
    print(f"trading: warning: {note}", file=sys.stderr)
    return [note]


def _audit_frame(request: Any, trader: Trader, bars: Bars, run_id: str) -> tuple[pl.DataFrame | None, dict[str, int]]:
    """``risk.risk_decisions`` rows from the Trader's audit records."""
    risk = request.risk
    if risk is None:
        return None, {}
    n = len(trader.audit)
    a = np.array(trader.audit, dtype=np.float64).reshape(n, len(AUDIT_FIELDS))
    col = {k: a[:, i] for i, k in enumerate(AUDIT_FIELDS)}
    bar, c = col["bar"].astype(np.int64), col["column"].astype(np.int64)
    reason, state = col["reason"].astype(np.int64), col["state"].astype(np.int64)
    sym = trader.symbol_of[c] if n else np.zeros(0, np.int64)
    orders = np.zeros(n, E.ORDER_DTYPE)
    orders["portfolio"] = trader.account_of[c] if n else 0
    orders["bar"], orders["symbol"], orders["side"] = bar, sym, col["side"].astype(np.int64)
    orders["qty"] = col["requested"]
    orders["order_id"] = np.arange(1, n + 1)
    ts = pl.Series("ts", col["decision_ms"].astype(np.int64)).cast(pl.Datetime("ms", "UTC"))
    frame = decision_frame(run_id=run_id, context="backtest", ts=ts, orders=orders, reason=reason,
                           symbols=list(bars.symbols), last_price=col["last_price"], adv=col["adv"], config=risk,
                           state=state, entries_paused=col["paused"].astype(bool), strategy=request.strategy)
    if n:
        resized = reason == RiskReason.RESIZED
        approved = np.where(reason == 0, col["requested"], np.where(resized, col["approved"], 0.0))
        frame = frame.with_columns(
            pl.Series("price", col["price"]), pl.Series("approved_qty", approved),
            pl.Series("decision", np.where(resized, "resized", frame["decision"].to_numpy())),
            pl.Series("inputs", [{**i, "correlation_scale": float(k), "kill_switch": bool(ks)}
                                 for i, k, ks in zip(frame["inputs"].to_list(), col["scale"].tolist(),
                                                     col["kill_switch"].tolist(), strict=True)]))
    codes, k = np.unique(reason, return_counts=True)
    return frame, {reason_name(int(x)): int(m) for x, m in zip(codes, k, strict=True)}
