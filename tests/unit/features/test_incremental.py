"""Incremental computation equals a full recompute (features to 1e-9, regime labels exactly)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from trading_core.features import (
    FEATURE_COLUMNS,
    FeatureSpec,
    FeatureState,
    compute_features,
    label_regimes,
    lookback_bars,
)
from trading_core.features.regimes import dwell_of


def assert_frames_close(a: pl.DataFrame, b: pl.DataFrame, rtol: float = 1e-9) -> None:
    assert a["ts"].to_list() == b["ts"].to_list()
    for c in FEATURE_COLUMNS:
        x, y = a[c].to_numpy(), b[c].to_numpy()
        assert np.array_equal(np.isnan(x), np.isnan(y)), c
        ok = ~np.isnan(x)
        # Scale-aware: recursive indicators forget their seed to ~1e-13 of the price range.
        np.testing.assert_allclose(x[ok], y[ok], rtol=rtol, atol=1e-9, err_msg=c)


@pytest.mark.parametrize("new_bars", [1, 5, 24])
def test_incremental_features_and_regimes_equal_full_recompute(
        series: tuple[str, pl.DataFrame], new_bars: int) -> None:
    name, bars = series
    spec = FeatureSpec(periods_per_year=252.0 if name == "spx" else 8760.0)
    full = compute_features(bars, spec)
    full_labels = label_regimes(full)
    lb = lookback_bars(spec)
    for cut in (bars.height // 3, bars.height // 2, bars.height - new_bars):
        last_ts = bars["ts"][cut - 1]
        window = bars.slice(max(0, cut - 1 - lb), lb + 1 + new_bars)
        inc = compute_features(window, spec, FeatureState(last_ts))
        assert inc.height == min(new_bars, bars.height - cut)
        assert_frames_close(inc, full.slice(cut, inc.height))
        state = dwell_of(full_labels.filter(pl.col("ts") <= last_ts))
        inc_labels = label_regimes(inc, prior_state=state)
        want = full_labels.filter(pl.col("ts").is_in(inc["ts"].implode()))
        assert inc_labels.equals(want)


def test_lookback_is_needed(spx: pl.DataFrame) -> None:
    """Too short a history DOES change the recursive indicators: the lookback is not slack."""
    spec = FeatureSpec()
    full = compute_features(spx, spec)
    cut = 3000
    short = compute_features(spx.slice(cut - 60, 61), spec, FeatureState(spx["ts"][cut - 1]))
    assert short["ema_slow"][0] != pytest.approx(full["ema_slow"][cut], rel=1e-9)
