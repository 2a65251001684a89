"""The order pre-check of a stepped backtest: VIX market filter and order verification at every bar.

Why a pre-check of a would-be entry at *every* bar rather than of the entries only: the signal
filters' position model (min hold, throttle) must know which entries the risk layer refused, so
the refusal is known before the filters decide and is handed to them as their ``block``
(``stepped.SteppedTrader``); only the entries that reached the risk stage are audited. These
checks depend on market data alone, so they are computed for the whole run at once; what depends
on the book (circuit breakers, protective stops) is decided bar by bar in ``stepped``.

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

from ..risk import RiskConfig, adv_asof, load_vix, market_filter_frame
from ..risk.codes import RiskReason
from ..risk.orders import BUY, verify_orders
from ..strategies import Bars

__all__ = ["RiskOutcome", "check_entries"]


@dataclass(frozen=True)
class RiskOutcome:
    """Per bar and symbol: the reason a would-be entry is refused (0 = passes) and its inputs."""

    reason: np.ndarray  # (T, S) int64 RiskReason codes
    paused: np.ndarray  # (T,) bool, market filter
    last_px: np.ndarray  # (T, S) close of the previous bar
    adv: np.ndarray  # (T, S)
    qty: np.ndarray  # (T, S) estimated entry quantity
    notes: list[str] = field(default_factory=list)
    vix: np.ndarray | None = None  # (T,) VIX close known at each decision (NaN: none), when loaded


def _close_series(close_ts: np.ndarray) -> pl.Series:
    return pl.Series("ts", close_ts.astype(np.int64)).cast(pl.Datetime("ms", "UTC"))


def check_entries(cfg: RiskConfig, warehouse: Any, frames: list[pl.DataFrame] | pl.DataFrame, bars: Bars,
                  close_ts: np.ndarray, request: Any) -> RiskOutcome:
    """Judge an entry of each symbol at every bar's close; ``frames``: each symbol's bars (for its
    average daily volume), in ``bars.symbols`` order. See the module docstring for the inputs."""
    frames = [frames] if isinstance(frames, pl.DataFrame) else list(frames)
    T, S = bars.n_bars, bars.n_symbols
    notes: list[str] = []
    mf = cfg.market_filter
    decision = _close_series(close_ts)
    vix_close = None
    if mf.enabled or cfg.breakers.enabled:  # the market breaker reads VIX too
        start: Any = decision.min()
        end: Any = decision.max()
        vix = load_vix(warehouse, mf, start=start, end=end + timedelta(microseconds=1))
        mff = market_filter_frame(vix, decision, mf)
        fresh = (mff["ts"] - mff["vix_known_at"]) <= timedelta(days=mf.max_vix_age_days)
        vix_close = (mff["vix_close"].cast(pl.Float64).fill_null(np.nan).to_numpy().astype(np.float64))
        vix_close[~fresh.fill_null(False).to_numpy()] = np.nan  # a stale close is no reading
    if mf.enabled:
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
    adv = np.column_stack([adv_asof(f, ts_dt, cfg.orders.adv_window_days) for f in frames])
    # The engine sizes all_in/risk entries at fill time from equity; the starting cash over the
    # decision close is the estimate the ADV check can judge before the run (exact for ``fixed``).
    if getattr(request, "sizing", "all_in") == "fixed":
        qty = np.full((T, S), float(request.size))
    else:
        with np.errstate(divide="ignore", invalid="ignore"):  # several symbols share the cash equally
            qty = float(getattr(request, "cash", 0.0)) / S / close
    rows = np.repeat(np.arange(T), S)
    sym = np.tile(np.arange(S), T)
    res = verify_orders(sym, np.full(T * S, BUY), qty.reshape(-1), close.reshape(-1), last_price=last_px,
                        adv=adv, limits=cfg.orders, entries_paused=np.repeat(paused, S), bar=rows)
    reason = res.reason.reshape(T, S)
    # Bar 0 has no previous close (nothing to judge the price or size against): only the market
    # filter applies there, rather than refusing it as an unknown symbol.
    reason[0] = np.where(paused[0], RiskReason.MARKET_FILTER, RiskReason.NONE)
    return RiskOutcome(reason.astype(np.int64), paused, last_px, adv, qty, notes, vix_close)
