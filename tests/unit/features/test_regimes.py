"""Regime labels on known real episodes, hysteresis, versioning and spans."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading_core.features import (
    REGIMES,
    FeatureSpec,
    RegimeConfig,
    compute_features,
    label_regimes,
    regime_spans,
    regime_version,
)


@pytest.fixture(scope="module")
def spx_labels(spx: pl.DataFrame) -> pl.DataFrame:
    return label_regimes(compute_features(spx, FeatureSpec()))


def share(labels: pl.DataFrame, start: date, end: date, regime: str) -> float:
    s = labels.filter(pl.col("ts").dt.date().is_between(start, end))
    assert s.height > 20
    return float((s["regime"] == regime).mean())


def test_2008_crash_is_high_vol_stress(spx_labels: pl.DataFrame) -> None:
    assert share(spx_labels, date(2008, 10, 1), date(2008, 11, 30), "high_vol_stress") >= 0.8
    # The whole Sep 2008 - Mar 2009 episode is never labelled an up-trend.
    assert share(spx_labels, date(2008, 9, 1), date(2009, 3, 31), "trending_up") == 0.0


@pytest.mark.parametrize("year", [2013, 2017])
def test_calm_bull_years_are_mostly_trending_up(spx_labels: pl.DataFrame, year: int) -> None:
    assert share(spx_labels, date(year, 1, 1), date(year, 12, 31), "trending_up") > 0.6


def test_labels_cover_every_bar_after_warm_up(spx: pl.DataFrame, spx_labels: pl.DataFrame) -> None:
    f = compute_features(spx)
    ready = f.filter(pl.all_horizontal(pl.col("adx", "ma_slope_atr", "rvol_pct").is_not_nan()))
    assert spx_labels["ts"].to_list() == ready["ts"].to_list()
    assert set(spx_labels["regime"].unique()) == set(REGIMES)


@pytest.mark.parametrize("dwell", [1, 3, 5, 10, 20])
def test_no_label_changes_within_the_dwell(series: tuple[str, pl.DataFrame], dwell: int) -> None:
    _, bars = series
    spans = regime_spans(label_regimes(compute_features(bars), RegimeConfig(min_dwell=dwell)))
    assert len(spans) > 5
    assert all(s.bars >= dwell for s in spans[:-1])
    assert all(a.regime != b.regime for a, b in zip(spans, spans[1:], strict=False))


def test_hysteresis_reduces_flicker(spx: pl.DataFrame) -> None:
    f = compute_features(spx)
    loose = RegimeConfig(min_dwell=1, stress_exit=0.9, adx_exit=25, slope_exit=0.03, slope_strong_exit=0.08)
    # Enter/exit bands alone cut the number of label changes by over a third on 1999-2018.
    assert len(regime_spans(label_regimes(f, RegimeConfig()))) < 0.7 * len(regime_spans(label_regimes(f, loose)))


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 15), st.integers(0, 2**31 - 1))
def test_dwell_holds_on_arbitrary_inputs(dwell: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 400
    f = pl.DataFrame({
        "ts": pl.datetime_range(pl.datetime(2020, 1, 1), pl.datetime(2020, 1, 1) + pl.duration(hours=n - 1),
                                "1h", eager=True),
        "adx": rng.uniform(0, 60, n), "ma_slope_atr": rng.normal(0, 0.1, n), "rvol_pct": rng.uniform(0, 1, n),
    })
    labels = label_regimes(f, RegimeConfig(min_dwell=dwell))
    assert labels.height == n
    spans = regime_spans(labels)
    assert all(s.bars >= dwell for s in spans[:-1])
    assert sum(s.bars for s in spans) == n


def test_regime_version_changes_with_config_only() -> None:
    base = regime_version(RegimeConfig())
    assert base == regime_version(RegimeConfig())
    assert len({base, regime_version(RegimeConfig(min_dwell=6)), regime_version(RegimeConfig(adx_enter=30)),
                regime_version(RegimeConfig(stress_enter=0.95))}) == 4


def test_version_is_stored_with_each_label(spx_labels: pl.DataFrame) -> None:
    assert spx_labels["regime_version"].unique().to_list() == [regime_version(RegimeConfig())]


def test_config_refuses_exit_stricter_than_enter() -> None:
    with pytest.raises(ValueError, match="stress_exit"):
        RegimeConfig(stress_enter=0.8, stress_exit=0.9)


def test_per_symbol_labelling_equals_one_at_a_time(spx: pl.DataFrame, btc: pl.DataFrame) -> None:
    fa, fb = compute_features(spx), compute_features(btc)
    both = pl.concat([fa.with_columns(pl.lit("^GSPC").alias("symbol")),
                      fb.with_columns(pl.lit("BTC/USD").alias("symbol"))])
    out = label_regimes(both)
    for sym, f in (("^GSPC", fa), ("BTC/USD", fb)):
        assert out.filter(pl.col("symbol") == sym).drop("symbol").equals(label_regimes(f))
    spans = regime_spans(out)
    assert {s.symbol for s in spans} == {"^GSPC", "BTC/USD"}
    assert sum(s.bars for s in spans) == out.height


def test_spans_are_contiguous_runs() -> None:
    ts = pl.datetime_range(pl.datetime(2020, 1, 1), pl.datetime(2020, 1, 7), "1d", eager=True,
                           time_unit="ms")
    labels = pl.DataFrame({"ts": ts, "regime": ["ranging"] * 2 + ["trending_up"] * 3 + ["ranging"] * 2})
    spans = regime_spans(labels)
    assert [(s.regime, s.bars) for s in spans] == [("ranging", 2), ("trending_up", 3), ("ranging", 2)]
    assert spans[1].start == ts[2] and spans[1].end == ts[4]
