"""``update_features``: bring one series' features and regime labels up to date in the warehouse.

This is what the Dagster feature assets call (downstream of the bars). It is incremental: it reads
only the bars after the last stored feature row plus ``lookback_bars(spec)`` bars of history,
recomputes, keeps the new rows, and replaces that window in one transaction. When the stored
rows were made by another feature or regime version (changed parameters or code), it recomputes
the whole series instead, so a table never mixes definitions.

Connections are short: one read-only open for state and bars, computation with no connection
held, one read-write open for the write.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from ..timeframes import periods_per_year
from ..warehouse import Warehouse
from ..warehouse import features as store
from ..warehouse.bars import read_bars
from .compute import FeatureSpec, FeatureState, compute_features, feature_version, lookback_bars
from .regimes import RegimeConfig, label_regimes, regime_version

__all__ = ["FeaturePipelineConfig", "UpdateResult", "series_spec", "update_features"]


class FeaturePipelineConfig(BaseModel):
    """Feature parameters and regime thresholds used for every series."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    features: FeatureSpec = FeatureSpec()
    regimes: RegimeConfig = RegimeConfig()


@dataclass(frozen=True)
class UpdateResult:
    """What one update did. ``mode``: full | incremental | up_to_date | no_bars."""

    venue: str
    symbol: str
    timeframe: str
    mode: str
    bars_read: int
    features_written: int
    regimes_written: int
    first_ts: datetime | None
    last_ts: datetime | None
    feature_version: str
    regime_version: str


def series_spec(spec: FeatureSpec, timeframe: str,
                calendar: Literal["crypto", "equity"] | None) -> FeatureSpec:
    """The spec for one series: annualisation from its calendar, hour-of-day only intraday."""
    update: dict[str, object] = {"include_hour": timeframe != "1d"}
    if calendar is not None:
        update["periods_per_year"] = periods_per_year(timeframe, calendar)
    return spec.model_copy(update=update)


def update_features(warehouse: Warehouse, venue: str, symbol: str, timeframe: str,
                    config: FeaturePipelineConfig | None = None, *,
                    calendar: Literal["crypto", "equity"] | None = None,
                    full: bool = False) -> UpdateResult:
    """Compute and store features and regimes for the bars not yet covered; return the counts.

    ``calendar`` (the universe's asset class) sets ``periods_per_year`` for realised volatility;
    ``full`` forces a recompute of the whole series (e.g. after bars were restated in the past,
    which an incremental update does not look at).
    """
    config = config or FeaturePipelineConfig()
    spec = series_spec(config.features, timeframe, calendar)
    fver, rver = feature_version(spec), regime_version(config.regimes)
    with warehouse.connect(read_only=True) as con:
        state = store.stored_state(con, venue, symbol, timeframe)
        incremental = (not full and state.last_feature_ts is not None
                       and state.feature_version == fver and state.regime is not None
                       and state.regime_version == rver
                       and state.regime.last_ts == state.last_feature_ts)
        start = None
        if incremental:
            assert state.last_feature_ts is not None
            start = store.bar_ts_before(con, venue, symbol, timeframe, state.last_feature_ts,
                                        lookback_bars(spec))
        bars = read_bars(con, venue, symbol, timeframe, start, None)
    mode = "incremental" if incremental else "full"
    if bars.height == 0:
        return UpdateResult(venue, symbol, timeframe, "no_bars", 0, 0, 0, None, None, fver, rver)
    prior = FeatureState(state.last_feature_ts) if incremental and state.last_feature_ts else None
    feats = compute_features(bars, spec, prior)
    if feats.height == 0:
        return UpdateResult(venue, symbol, timeframe, "up_to_date", bars.height, 0, 0, None, None,
                            fver, rver)
    labels = label_regimes(feats, config.regimes, state.regime if incremental else None)
    first = feats["ts"][0]
    with warehouse.connect() as con:
        written = store.write_features(con, venue, symbol, timeframe, features=feats,
                                       feature_version=fver, regimes=labels,
                                       replace_from=first if incremental else None)
    return UpdateResult(venue, symbol, timeframe, mode, bars.height, written.features,
                        written.regimes, first, feats["ts"][-1], fver, rver)
