"""Market regimes as data: one label per (symbol, bar), versioned, with hysteresis.

Labels: ``trending_up``, ``trending_down``, ``ranging``, ``high_vol_stress`` (and no row during
the features' warm-up). The rules, in priority order, evaluated on each bar's features:

1. **Stress** when realised volatility is extreme for this series: ``rvol_pct >= stress_enter``;
   once in stress, it stays while ``rvol_pct >= stress_exit``.
2. **Trend** when the ``slope_ma``-bar SMA moves steadily, measured in ATRs per bar
   (``ma_slope_atr``), confirmed by ADX: enter when ``|slope| >= slope_enter`` and
   ``adx >= adx_enter``, or on slope alone when ``|slope| >= slope_strong_enter`` (a calm grind
   has overlapping bars, hence a low ADX, yet is a trend all the same). Stay while the same
   conditions hold with the looser ``*_exit`` thresholds, in the same direction.
3. Otherwise **ranging**.

Hysteresis has two parts: enter thresholds stricter than exit ones (a value hovering at a threshold
does not flip the label), and ``min_dwell`` bars: a new label lasts at least that long before any
change, so every span but the last has ``>= min_dwell`` bars.

``regime_version`` (hash of the config and ``REGIME_CODE_VERSION``) is stored with every label so a
metric sliced by regime always says which definition of regime it used.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

import numba as nb
import numpy as np
import polars as pl

from .regime_config import RegimeConfig

__all__ = [
    "REGIMES",
    "REGIME_CODE_VERSION",
    "RegimeConfig",
    "RegimeSpan",
    "RegimeState",
    "label_regimes",
    "regime_spans",
    "regime_version",
]

# Bump when the rules in _label_nb change meaning.
REGIME_CODE_VERSION = "regimes-1"

RANGING, TRENDING_UP, TRENDING_DOWN, HIGH_VOL_STRESS = (
    "ranging", "trending_up", "trending_down", "high_vol_stress")
REGIMES: tuple[str, ...] = (RANGING, TRENDING_UP, TRENDING_DOWN, HIGH_VOL_STRESS)  # index = code
_NONE = -1
_CODE = {name: i for i, name in enumerate(REGIMES)}
INPUT_COLUMNS: tuple[str, ...] = ("adx", "ma_slope_atr", "rvol_pct")


def regime_version(config: RegimeConfig) -> str:
    """Short hash of the config and the rules' code version; changes when either does."""
    doc = json.dumps({"code": REGIME_CODE_VERSION, "config": config.model_dump()}, sort_keys=True)
    return hashlib.sha256(doc.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RegimeState:
    """The label of the last stored bar and how many bars it has lasted (for incremental runs)."""

    last_ts: datetime
    regime: str
    dwell: int


@nb.njit(cache=True)
def _trend_ok(s: float, a: float, slope: float, adx_t: float, strong: float) -> bool:
    return (s >= slope and a >= adx_t) or s >= strong


@nb.njit(cache=True)
def _label_nb(adx: np.ndarray, slope: np.ndarray, vpct: np.ndarray, p: np.ndarray, min_dwell: int,
              cur0: int, dwell0: int) -> np.ndarray:
    """p = [stress_enter, stress_exit, adx_enter, adx_exit, slope_enter, slope_exit,
    strong_enter, strong_exit]."""
    n = adx.shape[0]
    out = np.full(n, -1, dtype=np.int8)
    cur = cur0
    dwell = dwell0
    for t in range(n):
        a = adx[t]
        s = slope[t]
        v = vpct[t]
        if np.isnan(a) or np.isnan(s) or np.isnan(v):
            cur = -1
            dwell = 0
            continue
        if (cur == 3 and v >= p[1]) or v >= p[0]:
            want = 3
        elif cur == 1 and _trend_ok(s, a, p[5], p[3], p[7]):
            want = 1
        elif cur == 2 and _trend_ok(-s, a, p[5], p[3], p[7]):
            want = 2
        elif _trend_ok(s, a, p[4], p[2], p[6]):
            want = 1
        elif _trend_ok(-s, a, p[4], p[2], p[6]):
            want = 2
        else:
            want = 0
        if cur == -1 or (want != cur and dwell >= min_dwell):
            cur = want
            dwell = 1
        else:
            dwell += 1
        out[t] = cur
    return out


def _params(c: RegimeConfig) -> np.ndarray:
    return np.array([c.stress_enter, c.stress_exit, c.adx_enter, c.adx_exit, c.slope_enter,
                     c.slope_exit, c.slope_strong_enter, c.slope_strong_exit], dtype=np.float64)


def _label_one(features: pl.DataFrame, config: RegimeConfig,
               prior_state: RegimeState | None) -> pl.DataFrame:
    f = features.sort("ts")
    cur0, dwell0 = _NONE, 0
    if prior_state is not None:
        f = f.filter(pl.col("ts") > prior_state.last_ts)
        cur0, dwell0 = _CODE[prior_state.regime], prior_state.dwell
    adx, slope, vpct = (np.ascontiguousarray(f[c].cast(pl.Float64).fill_null(np.nan).to_numpy())
                        for c in INPUT_COLUMNS)
    codes = _label_nb(adx, slope, vpct, _params(config), config.min_dwell, cur0, dwell0)
    names = pl.Series("regime", codes).replace_strict(
        {i: name for i, name in enumerate(REGIMES)} | {_NONE: None}, return_dtype=pl.Utf8)
    return f.select("ts").with_columns(names).filter(pl.col("regime").is_not_null())


def label_regimes(features: pl.DataFrame, config: RegimeConfig | None = None,
                  prior_state: RegimeState | None = None) -> pl.DataFrame:
    """Label each bar: a frame ``[symbol,] ts, regime, regime_version`` (warm-up bars omitted).

    ``features`` needs ``ts`` and the columns ``adx``, ``ma_slope_atr``, ``rvol_pct`` (as made by
    ``compute_features``); with a ``symbol`` column each symbol is labelled on its own.
    ``prior_state`` (single series only) continues a previous labelling exactly: only bars after
    its ``last_ts`` are labelled, starting from its regime and dwell.
    """
    config = config or RegimeConfig()
    missing = [c for c in ("ts", *INPUT_COLUMNS) if c not in features.columns]
    if missing:
        raise ValueError(f"features lack column(s) {', '.join(missing)}")
    version = regime_version(config)
    if "symbol" in features.columns:
        if prior_state is not None:
            raise ValueError("prior_state continues ONE series; label symbols one at a time")
        parts = [_label_one(part, config, None).with_columns(pl.lit(sym).alias("symbol"))
                 for (sym,), part in features.partition_by("symbol", as_dict=True,
                                                           maintain_order=True).items()]
        out = pl.concat(parts) if parts else pl.DataFrame(
            schema={"ts": features.schema["ts"], "regime": pl.Utf8, "symbol": pl.Utf8})
        return out.select("symbol", "ts", "regime", pl.lit(version).alias("regime_version"))
    return _label_one(features, config, prior_state).with_columns(
        pl.lit(version).alias("regime_version"))


@dataclass(frozen=True)
class RegimeSpan:
    """A maximal run of bars with one label: first and last bar's ts (inclusive) and bar count."""

    regime: str
    start: datetime
    end: datetime
    bars: int
    symbol: str | None = None


def regime_spans(labels: pl.DataFrame) -> list[RegimeSpan]:
    """Contiguous runs of the same regime in ``labels`` (per symbol if it has a ``symbol`` column),
    in time order. A run is broken by a change of label, not by a gap in time."""
    keys = ["symbol"] if "symbol" in labels.columns else []
    df = labels.sort([*keys, "ts"])
    change = pl.col("regime") != pl.col("regime").shift(1)
    if keys:
        change = change | (pl.col("symbol") != pl.col("symbol").shift(1))
    runs = (df.with_columns(change.fill_null(True).cum_sum().alias("_run"))
            .group_by("_run", maintain_order=True)
            .agg(*[pl.col(k).first() for k in keys], pl.col("regime").first(),
                 pl.col("ts").min().alias("start"), pl.col("ts").max().alias("end"),
                 pl.len().alias("bars")))
    return [RegimeSpan(r["regime"], r["start"], r["end"], int(r["bars"]), r.get("symbol"))
            for r in runs.iter_rows(named=True)]


def dwell_of(labels: pl.DataFrame) -> RegimeState | None:
    """The ``RegimeState`` at the end of a single series' labels (None if there are none)."""
    if labels.height == 0:
        return None
    last = regime_spans(labels.select("ts", "regime"))[-1]
    return RegimeState(last.end, last.regime, last.bars)
