"""Asset checks of the feature assets, computed from the warehouse after the update (one pass).

* ``<asset>_coverage`` (blocking): every bar of the partition window has a feature row -- an
  incremental update that silently skipped bars would otherwise leave holes that strategies and
  ML datasets read as "no signal".
* ``<asset>_no_nan`` (blocking): past the warm-up (``lookback_bars`` of the series), the core
  indicator columns are never NULL/NaN in the window.
* ``<asset>_regimes`` (WARN): labels are valid names, and over the stored history up to the
  window end (once it has at least ``MIN_LONG_WINDOW`` labels) no single regime exceeds 95 % --
  a degenerate label series means a threshold or input went wrong, but the data is still usable.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import dagster as dg

from trading_core.features.regimes import REGIMES
from trading_core.warehouse.features import feature_coverage

CORE_COLUMNS = ("sma_slow", "rsi", "macd", "atr", "adx", "rvol", "rvol_pct", "ma_slope_atr")
MAX_REGIME_SHARE = 0.95
MIN_LONG_WINDOW = 500


def check_names(asset: str) -> dict[str, str]:
    return {"coverage": f"{asset}_coverage", "no_nan": f"{asset}_no_nan", "regimes": f"{asset}_regimes"}


def check_specs(asset: str) -> list[dg.AssetCheckSpec]:
    n = check_names(asset)
    return [
        dg.AssetCheckSpec(n["coverage"], asset=asset, blocking=True,
                          description="feature rows == bar rows in the partition window, per symbol"),
        dg.AssetCheckSpec(n["no_nan"], asset=asset, blocking=True,
                          description=f"no NULL/NaN in {', '.join(CORE_COLUMNS)} past the warm-up"),
        dg.AssetCheckSpec(n["regimes"], asset=asset, blocking=False,
                          description="valid labels; no regime above 95 % over the long window"),
    ]


def evaluate(con: Any, asset: str, venue: str, symbols: list[str], timeframe: str, start: datetime,
             end: datetime, warmup_bars: int) -> list[dg.AssetCheckResult]:
    """The three check results for one window (``con``: a read-only warehouse connection)."""
    n = check_names(asset)
    cover: dict[str, dict[str, int]] = {}
    nans: dict[str, int] = {}
    dist: dict[str, dict[str, int]] = {}
    for sym in symbols:
        fc = feature_coverage(con, venue, sym, timeframe, start, end, warmup_bars=warmup_bars, columns=CORE_COLUMNS)
        cover[sym] = {"bars": fc.bars, "features": fc.features}
        if fc.nan_rows is not None:
            nans[sym] = fc.nan_rows
        dist[sym] = fc.regimes
    bad_cover = {s: c for s, c in cover.items() if c["bars"] != c["features"]}
    bad_nan = {s: k for s, k in nans.items() if k}
    invalid = {s: sorted(set(d) - set(REGIMES)) for s, d in dist.items() if set(d) - set(REGIMES)}
    skewed = {}
    for s, d in dist.items():
        total = sum(d.values())
        if total >= MIN_LONG_WINDOW and max(d.values()) / total > MAX_REGIME_SHARE:
            skewed[s] = max(d, key=lambda k: d[k])
    return [
        dg.AssetCheckResult(check_name=n["coverage"], asset_key=asset, passed=not bad_cover,
                            metadata={"per_symbol": dg.MetadataValue.json(cover)},
                            description="every bar has features" if not bad_cover else f"gaps: {bad_cover}"),
        dg.AssetCheckResult(check_name=n["no_nan"], asset_key=asset, passed=not bad_nan,
                            metadata={"nan_rows": dg.MetadataValue.json(nans), "warmup_bars": warmup_bars},
                            description="no NaN past warm-up" if not bad_nan else f"NaN rows: {bad_nan}"),
        dg.AssetCheckResult(check_name=n["regimes"], asset_key=asset, passed=not (invalid or skewed),
                            severity=dg.AssetCheckSeverity.WARN,
                            metadata={"distribution": dg.MetadataValue.json(dist)},
                            description=("labels valid and balanced" if not (invalid or skewed) else
                                         f"invalid: {invalid}; over {MAX_REGIME_SHARE:.0%}: {skewed}")),
    ]
