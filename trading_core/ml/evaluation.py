"""Walk-forward evaluation: per-fold and aggregate classification scores, and the trading result
of each model's out-of-sample signals through the shared engine (``engine.simulate_signals``, the
kernel every backtest uses) with ``analytics.compute_metrics``.

Honest by construction: every score is out of sample on purged folds; the baseline is scored on
the same folds; nothing is tuned on the test windows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from .config import ModelsConfig
from .dataset import Dataset
from .models import build_model
from .walkforward import Fold, check_no_leakage, walk_forward_folds

__all__ = ["Evaluation", "classification_scores", "evaluate", "evaluate_models", "signal_backtest"]

F64 = npt.NDArray[np.float64]
METRICS = ("accuracy", "balanced_accuracy", "log_loss", "auc")


def classification_scores(y: npt.NDArray[np.int64], p: F64) -> dict[str, float]:
    """accuracy, balanced accuracy, log loss and AUC of probabilities ``p`` (AUC NaN if one class)."""
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, log_loss, roc_auc_score

    pred = (p >= 0.5).astype(np.int64)
    pc = np.clip(p, 1e-6, 1 - 1e-6)
    both = len(np.unique(y)) == 2
    return {"accuracy": float(accuracy_score(y, pred)),
            "balanced_accuracy": float(balanced_accuracy_score(y, pred)) if both else float("nan"),
            "log_loss": float(log_loss(y, pc, labels=[0, 1])),
            "auc": float(roc_auc_score(y, p)) if both else float("nan")}


@dataclass
class Evaluation:
    """One model kind on one dataset's folds."""

    kind: str
    folds: list[dict[str, float]]
    aggregate: dict[str, float]
    oos_rows: npt.NDArray[np.int64]
    oos_proba: F64
    trading: dict[str, Any] = field(default_factory=dict)

    def score(self, metric: str) -> float:
        """The promotion score: ``neg_log_loss`` is minus the log loss (higher is better)."""
        if metric == "neg_log_loss":
            return -self.aggregate["log_loss"]
        return self.aggregate[metric]

    def summary(self) -> dict[str, Any]:
        return {"kind": self.kind, "aggregate": self.aggregate, "folds": self.folds, "trading": self.trading}


def signal_backtest(bars: pl.DataFrame, proba: F64, config: ModelsConfig) -> dict[str, Any]:
    """Long when the probability is above ``entry_threshold``, flat below ``exit_threshold``; the
    engine fills at the next open with ``fee_bps``; metrics by ``analytics.compute_metrics``."""
    from ..analytics.metrics import compute_metrics
    from ..engine import FeeTier, MarketModel
    from ..trading.batch import trade_signals as simulate_signals

    b = bars.sort("ts")
    arr = {c: b[c].cast(pl.Float64).to_numpy().reshape(-1, 1) for c in ("open", "high", "low", "close", "volume")}
    ts = b["ts"].dt.epoch("ms").to_numpy().astype(np.int64)
    model = MarketModel(fill_at="next_open", fee_tiers=(FeeTier(0.0, config.fee_bps, config.fee_bps),))
    ent = (proba > config.entry_threshold).reshape(-1, 1)
    ex = (proba < config.exit_threshold).reshape(-1, 1)
    res = simulate_signals(ts, arr["open"], arr["high"], arr["low"], arr["close"], arr["volume"], entries=ent,
                           exits=ex, model=model, device="cpu")
    trips = res.trades(0)
    closed = [t.pnl for t in trips if t.exit_ts is not None]
    m = compute_metrics(res.equity[:, 0], timeframe=config.timeframe, calendar=config.calendar, ts=ts,
                        trade_pnl=np.asarray(closed, np.float64), position=res.position[:, 0],
                        fees=float(res.fees_paid[0]), open_trades=len(trips) - len(closed))
    d = m.to_dict()
    keep = ("total_return", "cagr", "sharpe", "max_drawdown", "trades", "win_rate", "exposure", "final_equity")
    out = {k: d.get(k) for k in keep}
    buy_hold = float(arr["close"][-1, 0] / arr["open"][min(1, len(ts) - 1), 0] - 1) if len(ts) > 1 else 0.0
    out["buy_and_hold_return"] = buy_hold
    return out


def _fold_fit_predict(kind: str, ds: Dataset, fold: Fold, config: ModelsConfig) -> F64:
    model = build_model(kind, config)
    model.fit(ds.X[fold.train], ds.y[fold.train])
    return np.asarray(model.predict_proba(ds.X[fold.test])[:, 1], np.float64)


def evaluate(kind: str, ds: Dataset, folds: list[Fold], config: ModelsConfig,
             bars: pl.DataFrame | None = None) -> Evaluation:
    """Fit ``kind`` on each fold's training rows and score it on its test rows."""
    per_fold: list[dict[str, float]] = []
    rows, probas = [], []
    for fold in folds:
        check_no_leakage(fold, ds.bar, ds.label_end, config.walk_forward.embargo_bars)
        p = _fold_fit_predict(kind, ds, fold, config)
        s = classification_scores(ds.y[fold.test], p)
        per_fold.append({"fold": fold.number, "train_rows": int(fold.train.size), "test_rows": int(fold.test.size),
                         "test_start": int(ds.ts[fold.test[0]]), "test_end": int(ds.ts[fold.test[-1]]), **s})
        rows.append(fold.test)
        probas.append(p)
    oos = np.concatenate(rows)
    proba = np.concatenate(probas)
    agg = classification_scores(ds.y[oos], proba)
    agg["mean_proba"] = float(np.mean(proba)) if proba.size else float("nan")
    agg["positive_rate"] = float(np.mean(ds.y[oos])) if oos.size else float("nan")
    agg["nan_predictions"] = float(np.count_nonzero(~np.isfinite(proba)))
    agg["fold_auc_std"] = float(np.nanstd([f["auc"] for f in per_fold]))
    ev = Evaluation(kind, per_fold, agg, oos, proba)
    if bars is not None:
        series = bars.sort("ts")
        oos_bars = series[ds.bar[oos].tolist()]
        ev.trading = signal_backtest(oos_bars, np.nan_to_num(proba, nan=0.5), config)
    return ev


def evaluate_models(ds: Dataset, config: ModelsConfig, bars: pl.DataFrame | None = None,
                    kinds: tuple[str, ...] | None = None) -> tuple[list[Fold], dict[str, Evaluation]]:
    """Every configured model on the same purged folds."""
    folds = walk_forward_folds(ds.bar, ds.label_end, config.walk_forward)
    out = {k: evaluate(k, ds, folds, config, bars) for k in (kinds or config.models)}
    return folds, out


def finite(x: float) -> float | None:
    return x if isinstance(x, float | int) and math.isfinite(x) else None
