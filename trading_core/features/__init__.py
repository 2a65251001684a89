"""Indicators, feature sets and market regimes (vectorised with NumPy/Numba/Polars).

* ``indicators`` / ``levels``: small pure functions on arrays (SMA ... Fibonacci).
* ``compute``: ``compute_features(bars, spec, prior_state)``, the wide feature frame of a series.
* ``regimes``: ``label_regimes``, ``regime_spans``, ``RegimeConfig``, ``regime_version``.
* ``pipeline``: ``update_features(warehouse, ...)`` (imported from its module, not here, because it
  depends on the warehouse, which itself imports ``compute`` for the column list).

See docs/features.md for every definition, warm-up and threshold."""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "FEATURE_COLUMNS": "compute",
    "FeatureSpec": "compute",
    "FeatureState": "compute",
    "compute_features": "compute",
    "feature_version": "compute",
    "lookback_bars": "compute",
    "REGIMES": "regimes",
    "RegimeConfig": "regimes",
    "RegimeSpan": "regimes",
    "RegimeState": "regimes",
    "label_regimes": "regimes",
    "regime_spans": "regimes",
    "regime_version": "regimes",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
