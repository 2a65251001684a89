"""Market filter: pause new entries while the VIX is above a threshold.

No look-ahead. A daily VIX bar is stamped with its open time (00:00 UTC of trading day D) and its
close is only known after D's session ends, so this module treats the close as known at the end
of the bar (ts + 1 day). A decision at time t uses the newest VIX bar whose end is at or before
t: for a daily strategy deciding at the open-time stamp of day D that is day D-1's close (or the
Friday close on a Monday), never D's own.

Fail closed: if no VIX close is known at t, or the newest one is older than
``max_vix_age_days``, entries are paused (``on_missing_vix="pause"``, the default) because a
risk control that silently switches off when its data stops is worse than none.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

import numpy as np
import polars as pl

from ..timeframes import timeframe_ms
from .config import MarketFilterConfig

__all__ = ["vix_asof", "entries_paused", "market_filter_frame", "load_vix", "entries_paused_from_warehouse",
           "BarReader"]

_TS = pl.Datetime("ms", "UTC")


class BarReader(Protocol):
    """What the filter needs from a warehouse (``trading_core.warehouse.Warehouse`` fits)."""

    def read_bars(self, venue: str, symbol: str, timeframe: str, start: datetime | None = None,
                  end: datetime | None = None) -> pl.DataFrame: ...


def _decision_frame(decision_ts: Sequence[datetime] | pl.Series | np.ndarray) -> pl.DataFrame:
    s = decision_ts if isinstance(decision_ts, pl.Series) else pl.Series("ts", decision_ts)
    if s.dtype == pl.Int64:  # epoch milliseconds
        s = s.cast(pl.Datetime("ms")).dt.replace_time_zone("UTC")
    elif isinstance(s.dtype, pl.Datetime) and s.dtype.time_zone is None:
        s = s.dt.replace_time_zone("UTC")
    return pl.DataFrame({"ts": s.cast(_TS)}).with_row_index("_row")


def vix_asof(vix: pl.DataFrame, decision_ts: Sequence[datetime] | pl.Series | np.ndarray, *,
             timeframe: str = "1d") -> pl.DataFrame:
    """For each decision time: the newest VIX close known then, and which bar it came from.

    ``vix`` has the canonical bar columns (at least ``ts``, ``close``). Returns one row per
    decision, in input order: ``ts``, ``vix_close`` (null if none known), ``vix_ts`` (the bar's
    open time), ``vix_known_at`` (its end, when the close became usable).
    """
    bar = timedelta(milliseconds=timeframe_ms(timeframe))
    known = (vix.select(pl.col("ts").cast(_TS).alias("vix_ts"), pl.col("close").alias("vix_close"))
             .drop_nulls().filter(pl.col("vix_close").is_finite())
             .with_columns((pl.col("vix_ts") + bar).alias("vix_known_at")).sort("vix_known_at"))
    d = _decision_frame(decision_ts)
    out = d.sort("ts").join_asof(known, left_on="ts", right_on="vix_known_at", strategy="backward")
    return out.sort("_row").select("ts", "vix_close", "vix_ts", "vix_known_at")


def entries_paused(vix: pl.DataFrame, decision_ts: Sequence[datetime] | pl.Series | np.ndarray,
                   config: MarketFilterConfig | None = None) -> np.ndarray:
    """Boolean per decision time: True where new entries must wait (VIX > threshold, or no VIX).

    Feed the result to ``verify_orders(..., entries_paused=...)`` or use it to mask entry
    signals before the engine. Exits are never paused by this filter.
    """
    return market_filter_frame(vix, decision_ts, config)["paused"].to_numpy()


def market_filter_frame(vix: pl.DataFrame, decision_ts: Sequence[datetime] | pl.Series | np.ndarray,
                        config: MarketFilterConfig | None = None) -> pl.DataFrame:
    """``vix_asof`` plus ``paused`` (bool) and ``reason`` (``vix_above_threshold``,
    ``vix_missing``, ``vix_stale`` or null) per decision: the audit inputs of the filter."""
    config = config or MarketFilterConfig()
    df = vix_asof(vix, decision_ts, timeframe=config.vix_timeframe)
    if not config.enabled:
        return df.with_columns(pl.lit(False).alias("paused"), pl.lit(None, pl.Utf8).alias("reason"))
    max_age = timedelta(days=config.max_vix_age_days)
    missing_pauses = config.on_missing_vix == "pause"
    reason = (pl.when(pl.col("vix_close").is_null()).then(pl.lit("vix_missing"))
              .when(pl.col("ts") - pl.col("vix_known_at") > max_age).then(pl.lit("vix_stale"))
              .when(pl.col("vix_close") > config.vix_threshold).then(pl.lit("vix_above_threshold"))
              .otherwise(pl.lit(None, pl.Utf8)))
    df = df.with_columns(reason.alias("reason"))
    paused = (pl.col("reason") == "vix_above_threshold") | (
        pl.col("reason").is_in(["vix_missing", "vix_stale"]) & pl.lit(missing_pauses))
    return df.with_columns(paused.fill_null(False).alias("paused"))


def load_vix(warehouse: BarReader, config: MarketFilterConfig | None = None, *,
             start: datetime | None = None, end: datetime | None = None) -> pl.DataFrame:
    """VIX bars from the warehouse covering decisions in [start, end).

    Reads from ``max_vix_age_days`` + a few days before ``start`` (so the first decision already
    has its prior close) up to ``end``; venue/symbol/timeframe come from the config.
    """
    config = config or MarketFilterConfig()
    lead = timedelta(days=config.max_vix_age_days + 3)
    return warehouse.read_bars(config.vix_venue, config.vix_symbol, config.vix_timeframe,
                               None if start is None else start - lead, end)


def entries_paused_from_warehouse(warehouse: BarReader, decision_ts: Sequence[datetime] | pl.Series,
                                  config: MarketFilterConfig | None = None) -> np.ndarray:
    """``entries_paused`` with the VIX read through the warehouse for the decisions' span."""
    config = config or MarketFilterConfig()
    d = _decision_frame(decision_ts)
    if d.height == 0:
        return np.zeros(0, dtype=bool)
    start: Any = d["ts"].min()
    end: Any = d["ts"].max()
    vix = load_vix(warehouse, config, start=start, end=end + timedelta(microseconds=1))
    return entries_paused(vix, d["ts"], config)
