"""Drift statistics on real data (false-alarm rate, shifted distribution) and the promotion rule."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from trading_core.features.compute import compute_features
from trading_core.ml.config import DriftConfig, LabelConfig, PromotionConfig
from trading_core.ml.dataset import dataset_from_frames
from trading_core.ml.drift import feature_drift, performance_decay, prediction_drift, psi
from trading_core.ml.model_features import CALENDAR_FEATURES
from trading_core.ml.promotion import Candidate, decide


@pytest.fixture(scope="module")
def real_rows(sp500: pl.DataFrame) -> tuple[np.ndarray, tuple[str, ...]]:
    bars = sp500.sort("ts")
    ds = dataset_from_frames(bars, compute_features(bars), LabelConfig())
    cols = [j for j, c in enumerate(ds.columns) if c not in CALENDAR_FEATURES]
    return ds.X[:, cols], tuple(ds.columns[j] for j in cols)


def test_psi_is_zero_for_identical_samples_and_grows_with_a_shift() -> None:
    x = np.random.default_rng(0).normal(size=5000)
    assert psi(x, x) == pytest.approx(0.0, abs=1e-12)
    assert psi(x, x + 0.5) > psi(x, x + 0.1) > 0.0


def test_feature_drift_when_stationary_real_data_then_false_alarm_rate_is_low(real_rows) -> None:  # type: ignore[no-untyped-def]
    # Stationary by construction: the real ^GSPC feature rows in random order, so the reference
    # and each window are draws from one distribution. 200 windows of 126 rows against 1,500.
    X, cols = real_rows
    rng = np.random.default_rng(11)
    cfg = DriftConfig()
    warn = fail = 0
    windows = 200
    for _ in range(windows):
        perm = rng.permutation(X.shape[0])
        ref, cur = X[perm[:1500]], X[perm[1500:1500 + cfg.window_bars]]
        st = feature_drift(ref, cur, cols, cfg).status
        warn += st != "ok"
        fail += st == "fail"
    # measured over 1,000 such windows: 14 warn (1.4 %), 0 fail (docs/models.md)
    assert fail / windows == 0.0
    assert warn / windows <= 0.05


def test_feature_drift_when_distribution_shifted_then_it_fails(real_rows) -> None:  # type: ignore[no-untyped-def]
    X, cols = real_rows
    rng = np.random.default_rng(5)
    perm = rng.permutation(X.shape[0])
    ref, cur = X[perm[:1500]], X[perm[1500:1626]].copy()
    cur += 1.0 * ref.std(axis=0)  # every input one standard deviation higher
    report = feature_drift(ref, cur, cols, DriftConfig())
    assert report.status == "fail" and report.summary["fail"] >= len(cols) // 2


def test_feature_drift_when_real_calm_vs_crisis_window_then_it_fires(real_rows) -> None:  # type: ignore[no-untyped-def]
    X, cols = real_rows
    # rows in time order: 2003-2006 (calm) as reference, the 2008 crash as the current window
    calm, crisis = X[800:2300], X[2150 + 0:2150 + 126]
    assert feature_drift(calm, crisis, cols, DriftConfig()).status in ("warn", "fail")


def test_prediction_and_performance_drift_thresholds() -> None:
    rng = np.random.default_rng(1)
    p = rng.uniform(0.3, 0.7, 2000)
    assert prediction_drift(p, p[:126], DriftConfig()).status == "ok"
    assert prediction_drift(p, np.full(126, 0.9), DriftConfig()).status == "fail"
    y = rng.integers(0, 2, 200)
    good = np.where(y == 1, 0.8, 0.2)
    assert performance_decay(y, good, 0.9, DriftConfig()).status == "ok"
    assert performance_decay(y, 1 - good, 0.6, DriftConfig()).status == "fail"


def _cand(kind: str = "xgboost", score: float = 0.56, baseline: float | None = 0.55, **kw: float) -> Candidate:
    base = {"mean_proba": 0.55, "positive_rate": 0.56, "nan_predictions": 0, "trades": 20}
    base.update(kw)
    return Candidate(kind, score, float(base["mean_proba"]), float(base["positive_rate"]),
                     int(base["nan_predictions"]), int(base["trades"]), baseline)


def test_promotion_when_model_does_not_beat_the_baseline_then_refused_with_reason() -> None:
    d = decide(_cand(score=0.552, baseline=0.55), None, PromotionConfig(margin=0.005))
    assert not d.promote and any("does not beat the logistic baseline" in r for r in d.reasons)


def test_promotion_when_it_beats_baseline_and_champion_then_promoted() -> None:
    d = decide(_cand(score=0.58, baseline=0.55), 0.56, PromotionConfig(margin=0.005))
    assert d.promote and d.scores["champion"] == 0.56


def test_promotion_when_not_beating_champion_or_insane_then_every_reason_listed() -> None:
    d = decide(_cand(score=0.58, baseline=0.5, nan_predictions=3, mean_proba=0.99, trades=1), 0.579,
               PromotionConfig())
    text = " | ".join(d.reasons)
    assert not d.promote
    for part in ("NaN predictions", "mean probability", "calibration gap", "round trips", "champion"):
        assert part in text
