"""Promotion by rule: a challenger becomes champion only with reasons, and every decision is kept.

Rules, in order (all are checked, every failure is a reason):

1. sanity of its out-of-sample predictions: none NaN, mean probability within bounds, calibrated
   (|mean probability - realised positive rate| within ``max_calibration_gap``), and its signals
   trade at least ``min_trades`` round trips in the walk-forward backtest;
2. unless it *is* the baseline: its walk-forward score beats the logistic baseline's on the same
   folds by ``margin`` (a model that does not beat the baseline out of sample is not promoted);
3. when a champion exists: it beats the champion's walk-forward score by ``margin``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .config import PromotionConfig

__all__ = ["Candidate", "Decision", "decide"]


@dataclass(frozen=True)
class Candidate:
    """What the rule needs to know about one model version."""

    kind: str
    score: float
    mean_proba: float
    positive_rate: float
    nan_predictions: int
    trades: int
    baseline_score: float | None = None


@dataclass(frozen=True)
class Decision:
    promote: bool
    reasons: list[str] = field(default_factory=list)
    scores: dict[str, Any] = field(default_factory=dict)


def decide(c: Candidate, champion_score: float | None, rules: PromotionConfig) -> Decision:
    """Whether ``c`` may replace the champion (``champion_score`` None: there is none)."""
    reasons: list[str] = []
    if c.nan_predictions:
        reasons.append(f"{c.nan_predictions} NaN predictions out of sample")
    if not (rules.min_mean_proba <= c.mean_proba <= rules.max_mean_proba):
        reasons.append(f"mean probability {c.mean_proba:.3f} outside [{rules.min_mean_proba}, {rules.max_mean_proba}]")
    gap = abs(c.mean_proba - c.positive_rate)
    if not gap <= rules.max_calibration_gap:
        reasons.append(f"calibration gap {gap:.3f} > {rules.max_calibration_gap} (mean probability "
                       f"{c.mean_proba:.3f} vs positive rate {c.positive_rate:.3f})")
    if c.trades < rules.min_trades:
        reasons.append(f"{c.trades} round trips in the walk-forward backtest < {rules.min_trades}")
    if not math.isfinite(c.score):
        reasons.append(f"walk-forward {rules.metric} is not finite")
    if c.kind != "logistic" and c.baseline_score is not None and not c.score >= c.baseline_score + rules.margin:
        reasons.append(f"{c.kind} {rules.metric} {c.score:.4f} does not beat the logistic baseline "
                       f"{c.baseline_score:.4f} by {rules.margin}")
    if champion_score is not None and not c.score >= champion_score + rules.margin:
        reasons.append(f"{rules.metric} {c.score:.4f} does not beat the champion's {champion_score:.4f} by {rules.margin}")
    ok = not reasons
    if ok:
        reasons.append(f"{c.kind} {rules.metric} {c.score:.4f} passes sanity checks"
                       + (f" and beats the champion's {champion_score:.4f}" if champion_score is not None
                          else " (no champion yet)"))
    scores = {"metric": rules.metric, "candidate": c.score, "baseline": c.baseline_score, "champion": champion_score,
              "mean_proba": c.mean_proba, "positive_rate": c.positive_rate, "trades": c.trades}
    return Decision(ok, reasons, scores)
