"""The candidate models, each one scikit-learn ``Pipeline`` (so MLflow's sklearn flavour stores
every kind the same way, skops format): logistic-regression baseline (scaled), random forest,
XGBoost, and the soft-voting ensemble of the last two.

Sizes are modest on purpose (``ModelsConfig.rf_trees``, ``xgb_rounds``, ``max_depth``): the daily
sample has ~4,500 rows, and a deeper forest only memorises noise there. ``n_jobs=1``: folds are the
unit of parallelism, and the default machine shares two cores.
"""

from __future__ import annotations

from typing import Any

from .config import ModelsConfig

__all__ = ["SKOPS_TRUSTED_TYPES", "build_model", "model_params"]

# Types our pipelines hold that skops does not trust by default. Only models this platform trained
# are ever loaded (registry.load_verified checks their hash first), so these are our own objects.
SKOPS_TRUSTED_TYPES = ["sklearn.tree._tree.Tree", "sklearn.utils._bunch.Bunch", "xgboost.core.Booster",
                       "xgboost.sklearn.XGBClassifier"]


def model_params(kind: str, config: ModelsConfig) -> dict[str, Any]:
    """The hyper-parameters of ``kind`` (logged to MLflow with every run)."""
    rf = {"n_estimators": config.rf_trees, "max_depth": config.max_depth + 2, "min_samples_leaf": 20,
          "max_features": "sqrt"}
    xgb = {"n_estimators": config.xgb_rounds, "max_depth": config.max_depth, "learning_rate": 0.05,
           "subsample": 0.8, "colsample_bytree": 0.8, "min_child_weight": 5.0}
    if kind == "logistic":
        return {"C": 0.1, "max_iter": 2000}
    if kind == "random_forest":
        return rf
    if kind == "xgboost":
        return xgb
    if kind == "ensemble":
        return {"rf": rf, "xgb": xgb, "voting": "soft", "weights": [0.5, 0.5]}
    raise ValueError(f"unknown model kind {kind!r}")


def build_model(kind: str, config: ModelsConfig) -> Any:
    """An unfitted pipeline of ``kind``, seeded by ``config.seed``."""
    from sklearn.ensemble import RandomForestClassifier, VotingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from xgboost import XGBClassifier

    p, seed = model_params(kind, config), config.seed

    def rf(q: dict[str, Any]) -> Any:
        return RandomForestClassifier(**q, random_state=seed, n_jobs=1)

    def xgb(q: dict[str, Any]) -> Any:
        return XGBClassifier(**q, random_state=seed, n_jobs=1, tree_method="hist", eval_metric="logloss")

    if kind == "logistic":
        return Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(**p))])
    if kind == "random_forest":
        return Pipeline([("clf", rf(p))])
    if kind == "xgboost":
        return Pipeline([("clf", xgb(p))])
    return Pipeline([("clf", VotingClassifier([("rf", rf(p["rf"])), ("xgb", xgb(p["xgb"]))], voting="soft",
                                              weights=p["weights"]))])
