"""Drift: PSI and Kolmogorov-Smirnov per feature, prediction-distribution drift, and live
performance decay of the champion on realised labels.

Reference = the rows the model was trained on; current = the most recent ``window_bars`` rows.
PSI bins are the reference's deciles (so each reference bin holds ~10 %); KS p-values are
Bonferroni-adjusted for the number of features, so the chance that *some* feature crosses the
KS threshold on an unchanged distribution stays at the stated level rather than growing with
the feature count. Status per measure: ok | warn | fail, from ``DriftConfig``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from .config import DriftConfig

__all__ = ["DriftReport", "feature_drift", "ks_test", "performance_decay", "prediction_drift", "psi"]

F64 = npt.NDArray[np.float64]
_EPS = 1e-4
_RANK = {"ok": 0, "warn": 1, "fail": 2}


def psi(reference: F64, current: F64, bins: int = 10) -> float:
    """Population stability index of ``current`` against ``reference`` on the reference's quantile
    bins (empty bins floored at 1e-4)."""
    ref = np.asarray(reference, np.float64)
    cur = np.asarray(current, np.float64)
    ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
    if ref.size == 0 or cur.size == 0:
        return float("nan")
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
    r = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=edges.size + 1) / ref.size
    c = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=edges.size + 1) / cur.size
    r, c = np.maximum(r, _EPS), np.maximum(c, _EPS)
    return float(np.sum((c - r) * np.log(c / r)))


def ks_test(reference: F64, current: F64) -> tuple[float, float]:
    """Two-sample KS statistic and p-value (scipy)."""
    from scipy.stats import ks_2samp

    ref = np.asarray(reference, np.float64)
    cur = np.asarray(current, np.float64)
    res = ks_2samp(ref[np.isfinite(ref)], cur[np.isfinite(cur)])
    return float(res.statistic), float(res.pvalue)


def _worst(*states: str) -> str:
    return max(states, key=lambda s: _RANK[s], default="ok")


@dataclass
class DriftReport:
    """One drift measurement: ``kind`` feature | prediction | performance, its overall status, and
    one row per measured item (feature name, ``prediction`` or ``accuracy``)."""

    kind: str
    status: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


def feature_drift(reference: F64, current: F64, columns: tuple[str, ...], config: DriftConfig) -> DriftReport:
    """PSI and adjusted KS p-value per column; the check fails when ``fail_fraction`` of the
    features are in fail and warns when ``warn_fraction`` of them (at least one) are in warn or
    fail: with 16 inputs one noisy feature alone crossing PSI 0.2 is sampling noise (measured on
    stationary real data, docs/models.md), not drift."""
    k = len(columns)
    rows: list[dict[str, Any]] = []
    for j, name in enumerate(columns):
        p = psi(reference[:, j], current[:, j], config.bins)
        stat, pv = ks_test(reference[:, j], current[:, j])
        adj = min(1.0, pv * k)
        state = "ok"
        if p >= config.psi_warn or adj <= config.ks_pvalue_warn:
            state = "warn"
        if p >= config.psi_fail or adj <= config.ks_pvalue_fail:
            state = "fail"
        rows.append({"item": name, "psi": p, "ks_stat": stat, "ks_pvalue": adj, "status": state})
    fails = sum(r["status"] == "fail" for r in rows)
    warns = sum(r["status"] != "ok" for r in rows)
    status = "fail" if fails >= config.fail_fraction * k else "warn" if warns >= max(1.0, config.warn_fraction * k) else "ok"
    return DriftReport("feature", status, rows, {
        "features": k, "warn_or_fail": warns, "fail": fails, "max_psi": max(float(r["psi"]) for r in rows),
        "min_ks_pvalue": min(float(r["ks_pvalue"]) for r in rows), "reference_rows": int(reference.shape[0]),
        "current_rows": int(current.shape[0])})


def prediction_drift(reference: F64, current: F64, config: DriftConfig) -> DriftReport:
    """PSI of the model's predicted probabilities (current window vs its training rows)."""
    p = psi(reference, current, config.bins)
    stat, pv = ks_test(reference, current)
    state = "fail" if p >= config.prediction_psi_fail else "warn" if p >= config.prediction_psi_warn else "ok"
    return DriftReport("prediction", state, [{"item": "prediction", "psi": p, "ks_stat": stat, "ks_pvalue": pv,
                                              "status": state}],
                       {"psi": p, "reference_mean": float(np.mean(reference)), "current_mean": float(np.mean(current))})


def performance_decay(y_true: npt.NDArray[np.int64], proba: F64, expected_accuracy: float,
                      config: DriftConfig) -> DriftReport:
    """Accuracy of the champion on the realised labels of the current window against its
    walk-forward accuracy; a drop beyond ``accuracy_drop_warn``/``_fail`` warns/fails."""
    if y_true.size == 0:
        return DriftReport("performance", "ok", [], {"rows": 0})
    acc = float(np.mean((proba >= 0.5).astype(np.int64) == y_true))
    drop = expected_accuracy - acc
    state = "fail" if drop >= config.accuracy_drop_fail else "warn" if drop >= config.accuracy_drop_warn else "ok"
    return DriftReport("performance", state, [{"item": "accuracy", "value": acc, "expected": expected_accuracy,
                                               "drop": drop, "status": state}],
                       {"rows": int(y_true.size), "accuracy": acc, "expected": expected_accuracy, "drop": drop})


def overall(*reports: DriftReport) -> str:
    return _worst(*(r.status for r in reports))
