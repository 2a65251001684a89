"""The feature set of one series: ``compute_features(bars, spec, prior_state)``.

One wide frame per series (one row per bar, one Float64 column per feature) because every consumer
(regimes, strategies, ML datasets) reads many features of the same bars at once.

Incremental recomputation. Every feature at bar t depends only on the last ``lookback_bars(spec)``
bars: the rolling ones exactly, the recursive ones (EMA, Wilder) up to a seed weight below 1e-13
(``convergence_bars``). So a new day of bars is computed from ``last_ts`` minus that many bars, and
only the rows after ``last_ts`` are kept; tests prove this equals a full recompute.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from . import indicators as ind
from . import levels

__all__ = [
    "FEATURE_CODE_VERSION",
    "FEATURE_COLUMNS",
    "FeatureSpec",
    "FeatureState",
    "compute_features",
    "feature_version",
    "lookback_bars",
]

# Bump when a formula changes, so stored features computed by older code are recomputed.
FEATURE_CODE_VERSION = "features-2"  # 2: one SMA/EMA arithmetic shared with the strategies (running sum)

# Column order of the feature frame and of features.indicators (after the key columns).
FEATURE_COLUMNS: tuple[str, ...] = (
    "sma_fast", "sma_slow", "ema_fast", "ema_slow",
    "rsi",
    "macd", "macd_signal", "macd_hist",
    "bb_mid", "bb_upper", "bb_lower", "bb_pctb", "bb_width",
    "atr",
    "adx", "plus_di", "minus_di",
    "ma_slope", "ma_slope_atr",
    "rvol", "rvol_pct",
    "vp_poc", "vp_vah", "vp_val",
    "support", "resistance",
    "fib_236", "fib_382", "fib_500", "fib_618", "fib_786",
    "day_of_week", "month", "hour",
)

_TS = pl.Datetime("ms", "UTC")


class FeatureSpec(BaseModel):
    """Parameters of every feature (windows are in bars). Defaults are the textbook ones.

    ``periods_per_year`` annualises realised volatility (252 for daily equities, 8760 for hourly
    crypto; see ``trading_core.timeframes.periods_per_year``); it scales ``rvol`` only, so the
    percentile and the regimes do not depend on it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    sma_fast: int = Field(default=20, ge=1)
    sma_slow: int = Field(default=50, ge=1)
    ema_fast: int = Field(default=12, ge=1)
    ema_slow: int = Field(default=26, ge=1)
    rsi: int = Field(default=14, ge=2)
    macd_fast: int = Field(default=12, ge=1)
    macd_slow: int = Field(default=26, ge=2)
    macd_signal: int = Field(default=9, ge=1)
    bb_window: int = Field(default=20, ge=2)
    bb_k: float = Field(default=2.0, gt=0)
    atr: int = Field(default=14, ge=1)
    adx: int = Field(default=14, ge=2)
    slope_ma: int = Field(default=50, ge=1, description="SMA whose slope is measured")
    slope_bars: int = Field(default=10, ge=1, description="bars over which the slope is measured")
    rvol_window: int = Field(default=20, ge=2)
    rvol_pct_window: int = Field(default=252, ge=10, description="bars of rvol history ranked against")
    periods_per_year: float = Field(default=252.0, gt=0)
    vp_window: int = Field(default=100, ge=2)
    vp_bins: int = Field(default=24, ge=2)
    vp_value_area: float = Field(default=0.7, gt=0, le=1)
    pivot_k: int = Field(default=5, ge=1, description="bars each side of a swing pivot")
    levels_window: int = Field(default=250, ge=2, description="bars of pivots for S/R and Fibonacci")
    level_tol: float = Field(default=0.01, gt=0, description="relative distance that merges pivots")
    level_min_touches: int = Field(default=1, ge=1)
    include_hour: bool = Field(default=True, description="hour-of-day column (intraday bars); NaN if off")

    @model_validator(mode="after")
    def _order(self) -> FeatureSpec:
        if self.macd_fast >= self.macd_slow:
            raise ValueError("macd_fast must be shorter than macd_slow")
        return self


def feature_version(spec: FeatureSpec) -> str:
    """Short hash of the spec and the code version, stored with every feature row."""
    doc = json.dumps({"code": FEATURE_CODE_VERSION, "spec": spec.model_dump()}, sort_keys=True)
    return hashlib.sha256(doc.encode()).hexdigest()[:16]


def lookback_bars(spec: FeatureSpec) -> int:
    """Bars of history before the first new bar that make an incremental result equal a full one.

    The max over features of (rolling window + recursive convergence), with a small margin.
    """
    conv = ind.convergence_bars
    ema_fast = max(spec.ema_fast, spec.macd_fast)
    ema_slow = max(spec.ema_slow, spec.macd_slow)
    need = [
        max(spec.sma_fast, spec.sma_slow, spec.bb_window),
        ema_fast + conv(2 / (ema_fast + 1)),
        ema_slow + conv(2 / (ema_slow + 1)) + spec.macd_signal + conv(2 / (spec.macd_signal + 1)),
        spec.rsi + 1 + conv(1 / spec.rsi),
        spec.atr + conv(1 / spec.atr),
        2 * spec.adx + 2 * conv(1 / spec.adx),
        spec.slope_ma + spec.slope_bars + spec.atr + conv(1 / spec.atr),
        spec.rvol_window + spec.rvol_pct_window + 1,
        spec.vp_window,
        spec.levels_window + 2 * spec.pivot_k,
    ]
    return int(max(need)) + 2


@dataclass(frozen=True)
class FeatureState:
    """What a previous run left: the last bar whose features are stored (and, for regimes, its
    label and how many bars that label has lasted; see ``regimes.RegimeState``)."""

    last_ts: datetime


def _col(bars: pl.DataFrame, name: str) -> np.ndarray:
    return bars[name].cast(pl.Float64).to_numpy()


def compute_features(bars: pl.DataFrame, spec: FeatureSpec | None = None,
                     prior_state: FeatureState | None = None) -> pl.DataFrame:
    """Features of ``bars`` (canonical OHLCV, sorted by ``ts``): ``ts`` + ``FEATURE_COLUMNS``.

    Without ``prior_state`` every bar gets a row (warm-up rows hold NaN). With it, ``bars`` must
    start at least ``lookback_bars(spec)`` bars before ``prior_state.last_ts`` (or at the start of
    the series) and only rows after ``last_ts`` are returned: the new rows of an incremental update.
    """
    spec = spec or FeatureSpec()
    bars = bars.sort("ts")
    if bars["ts"].is_duplicated().any():
        raise ValueError("bars contain duplicate timestamps")
    h, lo, c, v = (_col(bars, x) for x in ("high", "low", "close", "volume"))
    out: dict[str, np.ndarray] = {}
    out["sma_fast"] = ind.sma(c, spec.sma_fast)
    out["sma_slow"] = ind.sma(c, spec.sma_slow)
    out["ema_fast"] = ind.ema(c, spec.ema_fast)
    out["ema_slow"] = ind.ema(c, spec.ema_slow)
    out["rsi"] = ind.rsi(c, spec.rsi)
    out["macd"], out["macd_signal"], out["macd_hist"] = ind.macd(
        c, spec.macd_fast, spec.macd_slow, spec.macd_signal)
    (out["bb_mid"], out["bb_upper"], out["bb_lower"], out["bb_pctb"],
     out["bb_width"]) = ind.bollinger(c, spec.bb_window, spec.bb_k)
    out["atr"] = ind.atr(h, lo, c, spec.atr)
    out["adx"], out["plus_di"], out["minus_di"] = ind.adx(h, lo, c, spec.adx)
    out["ma_slope"] = ind.ma_slope(c, spec.slope_ma, spec.slope_bars)
    out["ma_slope_atr"] = ind.ma_slope(c, spec.slope_ma, spec.slope_bars, scale=out["atr"])
    out["rvol"] = ind.realised_vol(c, spec.rvol_window, spec.periods_per_year)
    out["rvol_pct"] = ind.rolling_percentile(out["rvol"], spec.rvol_pct_window)
    out["vp_poc"], out["vp_vah"], out["vp_val"] = levels.volume_profile(
        h, lo, c, v, spec.vp_window, spec.vp_bins, spec.vp_value_area)
    out["support"], out["resistance"] = levels.support_resistance(
        h, lo, c, spec.pivot_k, spec.levels_window, spec.level_tol, spec.level_min_touches)
    fib = levels.fibonacci(h, lo, spec.pivot_k, spec.levels_window)
    for j, name in enumerate(("fib_236", "fib_382", "fib_500", "fib_618", "fib_786")):
        out[name] = fib[:, j]
    frame = pl.DataFrame({"ts": bars["ts"].cast(_TS), **out})
    ts = pl.col("ts")
    frame = frame.with_columns(
        (ts.dt.weekday() - 1).cast(pl.Float64).alias("day_of_week"),  # 0 = Monday
        ts.dt.month().cast(pl.Float64).alias("month"),
        (ts.dt.hour().cast(pl.Float64) if spec.include_hour else pl.lit(math.nan)).alias("hour"),
    ).select("ts", *FEATURE_COLUMNS)
    if prior_state is not None:
        frame = frame.filter(pl.col("ts") > prior_state.last_ts)
    return frame
