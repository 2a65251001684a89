"""SHAP summaries of a fitted pipeline: mean |SHAP value| per feature over a sample of rows.

XGBoost uses its own exact TreeSHAP (``Booster.predict(pred_contribs=True)``, much faster than the
generic explainer); the forest uses ``shap.TreeExplainer``; the baseline ``shap.LinearExplainer``
on its scaled inputs. The ensemble's summary is the weighted mean of its members' normalised
importances (their raw values live in different output spaces: probability vs log-odds).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["shap_summary"]


def _xgb(clf: Any, X: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    import xgboost as xgb

    contribs = clf.get_booster().predict(xgb.DMatrix(X), pred_contribs=True)
    return np.abs(np.asarray(contribs)[:, :-1]).mean(axis=0)  # last column is the bias


def _forest(clf: Any, X: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    import shap

    vals = shap.TreeExplainer(clf).shap_values(X, check_additivity=False)
    arr = np.asarray(vals)
    if arr.ndim == 3:  # (rows, features, classes) in shap >= 0.45; take the positive class
        arr = arr[..., 1] if arr.shape[-1] == 2 else arr[1]
    return np.abs(arr).mean(axis=0)


def _linear(pipe: Any, X: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    import shap

    Z = pipe.named_steps["scale"].transform(X)
    vals = shap.LinearExplainer(pipe.named_steps["clf"], Z).shap_values(Z)
    return np.abs(np.asarray(vals)).mean(axis=0)


def _norm(v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    s = float(v.sum())
    return v / s if s > 0 else v


def shap_summary(pipe: Any, kind: str, X: npt.NDArray[np.float64], columns: tuple[str, ...],
                 *, max_rows: int = 400, seed: int = 0) -> dict[str, Any]:
    """``{"kind", "rows", "mean_abs_shap": {feature: value}, "ranking": [features]}``, highest first."""
    rng = np.random.default_rng(seed)
    if X.shape[0] > max_rows:
        X = X[np.sort(rng.choice(X.shape[0], max_rows, replace=False))]
    clf = pipe.named_steps["clf"]
    if kind == "logistic":
        imp = _linear(pipe, X)
    elif kind == "random_forest":
        imp = _forest(clf, X)
    elif kind == "xgboost":
        imp = _xgb(clf, X)
    else:
        members = dict(clf.named_estimators_)
        w = np.asarray(clf.weights or [1.0] * len(members), np.float64)
        parts = [_norm(_forest(members["rf"], X)), _norm(_xgb(members["xgb"], X))]
        imp = (w[0] * parts[0] + w[1] * parts[1]) / w.sum()
    vals = {c: float(v) for c, v in zip(columns, imp, strict=True)}
    ranking = sorted(vals, key=lambda c: -vals[c])
    return {"kind": kind, "rows": int(X.shape[0]), "mean_abs_shap": vals, "ranking": ranking}
