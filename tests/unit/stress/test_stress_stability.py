"""Parameter stability: the plateau score ranks a known plateau above a known spike; walk-forward
folds never let a test bar into a selection; sweeps run as one kernel call per grid."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest

from tests.unit.stress._stress_support import warehouse_copy
from trading_core.strategies import Bars
from trading_core.stress.config import StabilityConfig, SweepConfig, WalkForwardConfig
from trading_core.stress.stability import (
    GridTask,
    evaluate_grid,
    load_sweep_bars,
    plateau_score,
    robustness,
    run_stability,
    split_folds,
    walk_forward,
)

SWEEP = SweepConfig(name="t", strategy="ma_crossover", venue="yahoo", symbol="^GSPC", timeframe="1d",
                    start=date(2004, 1, 1), end=date(2010, 12, 31),
                    grid={"fast": (5, 10, 20), "slow": (30, 50, 100)})


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("stress_stab_wh")
    return warehouse_copy(root / "warehouse.duckdb", tmp_path_factory.getbasetemp())


def _synthetic_surface() -> np.ndarray:
    """A 9x9 surface: a broad plateau (0.8 on a 4x4 block) and a lone spike (1.2, neighbours 0)."""
    s = np.zeros((9, 9))
    s[0:4, 0:4] = 0.8
    s[7, 7] = 1.2
    return s


def test_plateau_scores_above_a_higher_lone_spike() -> None:
    s = _synthetic_surface()
    rob = robustness(s, radius=1)
    assert rob[1, 1] > rob[7, 7]  # the plateau's inside beats the spike
    assert int(np.argmax(np.where(np.isfinite(rob), rob, -np.inf))) in {np.ravel_multi_index((i, j), s.shape)
                                                                        for i in (0, 1, 2) for j in (0, 1, 2)}
    assert plateau_score(s, 1, (1, 1)) == pytest.approx(1.0)
    spike = plateau_score(s, 1, (7, 7))
    assert spike is not None and spike < 0.1
    assert plateau_score(s) == spike  # the raw optimum is the spike, and its score says so


def test_folds_are_disjoint_and_ordered_rolling_and_anchored() -> None:
    roll = split_folds(1000, WalkForwardConfig(mode="rolling", train_bars=300, test_bars=100, max_folds=50))
    anch = split_folds(1000, WalkForwardConfig(mode="anchored", train_bars=300, test_bars=100, max_folds=50))
    assert len(roll) == len(anch) == 7
    for (a, b, c, d), (a2, _, _, _) in zip(roll, anch, strict=True):
        assert b - a == 300 and c == b and d - c == 100 and a2 == 0
    assert [f[2] for f in roll] == [300 + 100 * k for k in range(7)]


def test_walk_forward_never_uses_test_fold_data_in_selection(wh) -> None:
    bars = load_sweep_bars(SWEEP, wh)
    wf = WalkForwardConfig(mode="rolling", train_bars=400, test_bars=150, max_folds=4, select="best")
    kw = {"radius": 1, "warmup": 100, "venue_config": {}, "calendar": "equity", "cash": 1e5}
    base = walk_forward(SWEEP, bars, wf, **kw)
    folds = split_folds(bars.n_bars, wf)
    cut = folds[1][1]  # everything from fold 1's test bars on is rewritten
    rng = np.random.default_rng(0)
    noise = np.r_[np.ones(cut), np.cumprod(1 + rng.normal(0, 0.03, bars.n_bars - cut))]
    scale = noise[:, None]
    changed = Bars(ts=bars.ts, open=bars.open * scale, high=bars.high * scale, low=bars.low * scale,
                   close=bars.close * scale, volume=bars.volume, symbols=bars.symbols)
    other = walk_forward(SWEEP, changed, wf, **kw)
    for i in (0, 1):  # their training bars are untouched: the same surface and choice
        assert np.array_equal(base[i].train.values, other[i].train.values, equal_nan=True)
        assert base[i].chosen == other[i].chosen
    assert not np.array_equal(base[1].test.values, other[1].test.values, equal_nan=True)  # tests did change
    assert not all(np.array_equal(base[i].train.values, other[i].train.values, equal_nan=True) for i in (2, 3))


def test_a_sweep_is_one_kernel_call_with_invalid_combinations_as_nan(wh) -> None:
    bars = load_sweep_bars(SWEEP, wh)
    grid = SWEEP.model_copy(update={"grid": {"fast": (10, 40), "slow": (30, 50)}})
    _, s = evaluate_grid(GridTask(grid, bars, 0, {}, "equity", 1e5, "cpu", (-1, "full")))
    assert s.values.shape == (2, 2)
    assert np.isnan(s.values[1, 0])  # fast 40 >= slow 30 is refused by the strategy
    assert np.isfinite(s.values[0, 0]) and np.isfinite(s.values[1, 1])


def test_stability_result_flags_overfit_and_measures_drift(wh, tmp_path: Path) -> None:
    cfg = StabilityConfig(sweeps=(SWEEP,), walk_forward=WalkForwardConfig(train_bars=400, test_bars=150, max_folds=5),
                          overfit_ratio=1.0)
    r = run_stability(SWEEP, wh, cfg, venue_config={}, calendar="equity", cash=1e5, warmup=100)
    s = r.summary
    assert len(s["folds"]) == 5 and s["optimum_drift"] is not None and 0 <= s["optimum_drift"] <= 1
    assert s["overfit"] == bool(s["in_sample"] > 0 and (s["out_of_sample"] < 0 or
                                                        s["out_of_sample"] < s["in_sample"]))
    rows = r.history_rows()
    assert len(rows) == 9 * (1 + 2 * 5)
    assert sum(row["chosen"] for row in rows if row["phase"] == "in_sample") == 5
    assert set(s["sensitivity"]) == {"fast", "slow"}
