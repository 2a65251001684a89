"""The risk layer in front of a signal backtest: VIX market filter, order verification, trailing stops.

Why a pre-check of a would-be entry at *every* bar rather than of the entries only: the signal
filters' position model (min hold, throttle) must know which entries the risk layer refused, so
the refusal is computed first and handed to ``apply_filters`` as its ``block``; then only the
entries that reached the risk stage are audited.

No look-ahead. Row t of ``last_px`` is close[t-1] (what was known before bar t opened); the order
judged at bar t is priced at close[t], the close the strategy decided on, so an entry triggered by
a bar that jumped more than ``max_price_deviation`` in one bar (a bad tick, a gap) is refused with
``price_deviation``. ADV is ``adv_asof`` (the mean of the days before the bar's day). The VIX
filter is asked at the decision instant, the bar's close (``market_filter`` reads the newest VIX
bar whose end is at or before it).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import polars as pl

from ..risk import RiskConfig, TrailingStopConfig, adv_asof, decision_frame, load_vix, market_filter_frame
from ..risk.codes import RiskReason, reason_name
from ..risk.orders import BUY, verify_orders
from ..risk.trailing import trailing_stop_levels
from ..strategies import Bars

__all__ = ["RiskOutcome", "check_entries", "audit_entries", "trailing_exits"]


@dataclass(frozen=True)
class RiskOutcome:
    """Per bar and symbol: the reason a would-be entry is refused (0 = passes) and its inputs."""

    reason: np.ndarray  # (T, S) int64 RiskReason codes
    paused: np.ndarray  # (T,) bool, market filter
    last_px: np.ndarray  # (T, S) close of the previous bar
    adv: np.ndarray  # (T, S)
    qty: np.ndarray  # (T, S) estimated entry quantity
    notes: list[str] = field(default_factory=list)


def _close_series(close_ts: np.ndarray) -> pl.Series:
    return pl.Series("ts", close_ts.astype(np.int64)).cast(pl.Datetime("ms", "UTC"))


def check_entries(cfg: RiskConfig, warehouse: Any, frame: pl.DataFrame, bars: Bars, close_ts: np.ndarray,
                  request: Any) -> RiskOutcome:
    """Judge a long entry at every bar's close; see the module docstring for the inputs."""
    T, S = bars.n_bars, bars.n_symbols
    notes: list[str] = []
    mf = cfg.market_filter
    decision = _close_series(close_ts)
    if mf.enabled:
        start: Any = decision.min()
        end: Any = decision.max()
        vix = load_vix(warehouse, mf, start=start, end=end + timedelta(microseconds=1))
        mff = market_filter_frame(vix, decision, mf)
        paused = mff["paused"].to_numpy().astype(bool)
        missing = int(mff["reason"].is_in(["vix_missing", "vix_stale"]).sum())
        if vix.height == 0 or missing:
            action = "entries paused (fail closed)" if mf.on_missing_vix == "pause" else "entries allowed (fail open)"
            what = (f"no {mf.vix_symbol} {mf.vix_timeframe} bars on {mf.vix_venue} in the warehouse"
                    if vix.height == 0 else f"{mf.vix_symbol} missing or stale at {missing} of {T} bars")
            note = (f"{what}: {action} per risk.market_filter.on_missing_vix={mf.on_missing_vix}; ingest "
                    f"{mf.vix_symbol}, set on_missing_vix, disable risk.market_filter, or run with --no-risk")
            notes.append(note)
            print(f"trading: warning: {note}", file=sys.stderr)
    else:
        paused = np.zeros(T, dtype=bool)
    close = bars.close
    last_px = np.full((T, S), np.nan)
    last_px[1:] = close[:-1]
    ts_dt = pl.Series("ts", bars.ts).cast(pl.Datetime("ms", "UTC"))
    adv = np.tile(adv_asof(frame, ts_dt, cfg.orders.adv_window_days)[:, None], (1, S))
    # The engine sizes all_in/risk entries at fill time from equity; the starting cash over the
    # decision close is the estimate the ADV check can judge before the run (exact for ``fixed``).
    if getattr(request, "sizing", "all_in") == "fixed":
        qty = np.full((T, S), float(request.size))
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            qty = float(getattr(request, "cash", 0.0)) / close
    rows = np.repeat(np.arange(T), S)
    sym = np.tile(np.arange(S), T)
    res = verify_orders(sym, np.full(T * S, BUY), qty.reshape(-1), close.reshape(-1), last_price=last_px,
                        adv=adv, limits=cfg.orders, entries_paused=np.repeat(paused, S), bar=rows)
    reason = res.reason.reshape(T, S)
    # Bar 0 has no previous close (nothing to judge the price or size against): only the market
    # filter applies there, rather than refusing it as an unknown symbol.
    reason[0] = np.where(paused[0], RiskReason.MARKET_FILTER, RiskReason.NONE)
    return RiskOutcome(reason.astype(np.int64), paused, last_px, adv, qty, notes)


def audit_entries(reached: np.ndarray, outcome: RiskOutcome, bars: Bars, close_ts: np.ndarray,
                  symbol_of: np.ndarray, request: Any, run_id: str) -> tuple[pl.DataFrame, dict[str, int]]:
    """Audit rows (``risk.risk_decisions``) for the entries that reached the risk stage."""
    from ..engine.enums import ORDER_DTYPE

    n = reached.shape[0]
    bar = reached["bar"].astype(np.int64)
    port = reached["portfolio"].astype(np.int64)
    sym = symbol_of[port].astype(np.int64) if n else np.zeros(0, np.int64)
    orders = np.zeros(n, ORDER_DTYPE)
    orders["portfolio"], orders["bar"], orders["symbol"] = port, bar, sym
    orders["side"] = BUY
    orders["qty"] = outcome.qty[bar, sym] if n else 0.0
    orders["order_id"] = np.arange(1, n + 1)
    reason = outcome.reason[bar, sym] if n else np.zeros(0, np.int64)
    frame = decision_frame(
        run_id=run_id, context="backtest", ts=_close_series(close_ts[bar]), orders=orders, reason=reason,
        symbols=list(bars.symbols), last_price=outcome.last_px[bar, sym] if n else np.zeros(0),
        adv=outcome.adv[bar, sym] if n else np.zeros(0), config=request.risk,
        entries_paused=outcome.paused[bar] if n else False, strategy=request.strategy)
    if n:
        frame = frame.with_columns(pl.Series("price", bars.close[bar, sym]))
    codes, k = np.unique(reason, return_counts=True)
    return frame, {reason_name(int(c)): int(m) for c, m in zip(codes, k, strict=True)}


def trailing_exits(bars: Bars, entries: np.ndarray, exits: np.ndarray, symbol_of: np.ndarray,
                   cfg: TrailingStopConfig) -> np.ndarray:
    """Exit signals where a bar traded through the trailing stop in force while long.

    The stop level comes from ``trailing_stop_levels`` (restarted at each entry); a bar whose low
    reaches the level set at the previous close raises an exit at that bar's close, so with
    ``next_open`` fills the position leaves at the next open -- a conservative stand-in for a
    resting STOP order, which the signal path has no way to place.
    """
    T, P = entries.shape
    out = np.zeros((T, P), dtype=bool)
    for p in range(P):
        s = int(symbol_of[p])
        lvl = trailing_stop_levels(bars.high[:, s], bars.low[:, s], bars.close[:, s], cfg, entries=entries[:, p])
        long = False
        for t in range(T):
            if long and t > 0 and not np.isnan(lvl[t - 1]) and bars.low[t, s] <= lvl[t - 1]:
                out[t, p] = True
                long = False
            elif long and exits[t, p]:
                long = False
            if entries[t, p] and not exits[t, p]:
                long = True
    return out
