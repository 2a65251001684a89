"""Indicators, feature sets and market regimes (vectorised with NumPy/Numba/Polars).

* ``indicators`` / ``levels``: small pure functions on arrays (SMA ... Fibonacci).
* ``compute``: ``compute_features(bars, spec, prior_state)``, the wide feature frame of a series.
* ``regimes``: ``label_regimes``, ``regime_spans``, ``RegimeConfig``, ``regime_version``.
* ``pipeline``: ``update_features(warehouse, ...)`` (imported from its module, not here, because it
  depends on the warehouse, which itself imports ``compute`` for the column list).

See docs/features.md for every definition, warm-up and threshold.
"""

from .compute import (
    FEATURE_COLUMNS,
    FeatureSpec,
    FeatureState,
    compute_features,
    feature_version,
    lookback_bars,
)
from .regimes import (
    REGIMES,
    RegimeConfig,
    RegimeSpan,
    RegimeState,
    label_regimes,
    regime_spans,
    regime_version,
)

__all__ = [
    "FEATURE_COLUMNS",
    "REGIMES",
    "FeatureSpec",
    "FeatureState",
    "RegimeConfig",
    "RegimeSpan",
    "RegimeState",
    "compute_features",
    "feature_version",
    "label_regimes",
    "lookback_bars",
    "regime_spans",
    "regime_version",
]
