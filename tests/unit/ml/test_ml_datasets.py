"""Datasets, labels and walk-forward folds on the real sample history (^GSPC daily)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from trading_core.features.compute import compute_features
from trading_core.ml.config import LabelConfig, WalkForwardConfig
from trading_core.ml.dataset import dataset_from_frames
from trading_core.ml.labels import direction_labels, triple_barrier_labels
from trading_core.ml.model_features import MODEL_FEATURES, model_features
from trading_core.ml.walkforward import LeakageError, check_no_leakage, walk_forward_folds


@pytest.fixture(scope="module")
def gspc(sp500: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    bars = sp500.sort("ts")
    return bars, compute_features(bars)


def test_model_features_when_bars_after_t_perturbed_then_rows_up_to_t_unchanged(gspc) -> None:  # type: ignore[no-untyped-def]
    bars, _ = gspc
    t = 3000
    rng = np.random.default_rng(3)
    scale = np.ones(bars.height)
    scale[t + 1:] = np.exp(np.cumsum(rng.normal(0, 0.05, bars.height - t - 1)))
    moved = bars.with_columns([(pl.col(c) * scale).alias(c) for c in ("open", "high", "low", "close")]
                              + [(pl.col("volume") * scale**2).alias("volume")])
    a = model_features(compute_features(bars), bars).select(MODEL_FEATURES).to_numpy()[: t + 1]
    b = model_features(compute_features(moved), moved).select(MODEL_FEATURES).to_numpy()[: t + 1]
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(a[~np.isnan(a)], b[~np.isnan(b)], rtol=0, atol=1e-9)
    after = model_features(compute_features(moved), moved).select(MODEL_FEATURES).to_numpy()[t + 1:]
    assert not np.allclose(np.nan_to_num(after), np.nan_to_num(model_features(compute_features(bars), bars)
                                                               .select(MODEL_FEATURES).to_numpy()[t + 1:]))


def test_dataset_when_built_then_every_row_defined_labelled_and_decided_inside_the_series(gspc) -> None:  # type: ignore[no-untyped-def]
    bars, feats = gspc
    ds = dataset_from_frames(bars, feats, LabelConfig(horizon=5))
    assert ds.rows > 4000 and np.isfinite(ds.X).all() and set(np.unique(ds.y)) == {0, 1}
    assert (ds.label_end == ds.bar + 5).all() and ds.label_end.max() < bars.height
    again = dataset_from_frames(bars, feats, LabelConfig(horizon=5))
    assert again.content_hash == ds.content_hash
    assert dataset_from_frames(bars, feats, LabelConfig(horizon=10)).content_hash != ds.content_hash


def test_direction_label_is_forward_return_sign_and_unknown_past_the_end() -> None:
    close = np.array([1.0, 2.0, 1.5, 3.0, 2.0])
    y, end = direction_labels(close, 2)
    np.testing.assert_array_equal(y[:3], [1.0, 1.0, 1.0])
    assert np.isnan(y[3:]).all() and end.tolist() == [2, 3, 4, -1, -1]


def test_triple_barrier_when_take_profit_touched_first_then_one_and_decided_at_that_bar() -> None:
    close = np.array([100.0, 101.0, 103.0, 99.0, 100.0, 100.0])
    high = close + np.array([0.5, 0.5, 2.5, 0.5, 0.5, 0.5])
    low = close - 0.5
    atr = np.full(6, 1.0)
    y, end = triple_barrier_labels(high, low, close, atr, 3, 2.0, 2.0)
    assert y[0] == 1.0 and end[0] == 2  # high 105.5 >= 102 at bar 2, low never <= 98 before
    assert y[2] == 0.0 and end[2] == 3  # low 98.5 <= 101 at bar 3
    assert np.isnan(y[3:]).all()


def test_walk_forward_when_purged_then_no_training_label_reaches_the_test_window(gspc) -> None:  # type: ignore[no-untyped-def]
    bars, feats = gspc
    ds = dataset_from_frames(bars, feats, LabelConfig(horizon=10))
    for scheme in ("rolling", "anchored"):
        cfg = WalkForwardConfig(scheme=scheme, folds=4, train_bars=1000, test_bars=400, embargo_bars=5)
        folds = walk_forward_folds(ds.bar, ds.label_end, cfg)
        assert len(folds) == 4
        for f in folds:
            check_no_leakage(f, ds.bar, ds.label_end, cfg.embargo_bars)
            assert ds.label_end[f.train].max() < ds.bar[f.test[0]] - cfg.embargo_bars
        if scheme == "rolling":
            assert all(f.train.size <= 1000 for f in folds)
        else:
            assert folds[-1].train.size > folds[0].train.size


def test_walk_forward_when_purging_disabled_then_the_injected_leak_is_caught(gspc) -> None:  # type: ignore[no-untyped-def]
    bars, feats = gspc
    ds = dataset_from_frames(bars, feats, LabelConfig(horizon=10))
    cfg = WalkForwardConfig(folds=3, train_bars=1000, test_bars=400, embargo_bars=5)
    leaky = walk_forward_folds(ds.bar, ds.label_end, cfg, purge=False)
    with pytest.raises(LeakageError, match="overlap the test window"):
        check_no_leakage(leaky[0], ds.bar, ds.label_end, cfg.embargo_bars)
