"""Regime rotation: the right members per regime, switches flatten, labels are causal."""

from __future__ import annotations

import json

import numpy as np
import polars as pl

from trading_core.features.regimes import REGIMES
from trading_core.strategies import Bars, get_strategy
from trading_core.strategies.rotation import regime_codes, rotate

UP, RANGE, DOWN, STRESS = (REGIMES.index(r) for r in ("trending_up", "ranging", "trending_down",
                                                      "high_vol_stress"))


def test_each_regime_uses_its_own_members_on_a_hand_made_regime_series() -> None:
    # members: 0 = trend follower, 1 = mean reverter; trend follower only in trending_up,
    # mean reverter only in ranging, nothing in stress
    active = np.zeros((len(REGIMES), 2), bool)
    active[UP, 0] = True
    active[RANGE, 1] = True
    regime = np.array([-1, UP, UP, UP, RANGE, RANGE, RANGE, STRESS, STRESS, UP])
    me = np.ones((10, 2), bool)  # both members want to enter on every bar
    mx = np.zeros((10, 2), bool)
    mx[2, 1] = True  # the mean reverter's exit while trending_up is ignored
    mx[5, 1] = True  # ... and honoured while ranging
    e, x = rotate(regime, me, mx, active, exit_on_switch=False)
    assert e.tolist() == [False, True, True, True, True, True, True, False, False, True]
    assert np.flatnonzero(x).tolist() == [5]
    _, x2 = rotate(regime, me, mx, active, exit_on_switch=True)
    assert np.flatnonzero(x2).tolist() == [1, 4, 5, 7, 9]  # every change of label flattens


def test_rotation_strategy_signals_follow_the_mapping(sp500: pl.DataFrame) -> None:
    bars = Bars.from_frame(sp500.head(1500), "^GSPC")
    mapping = {"trending_up": ["buy_and_hold"], "ranging": [], "high_vol_stress": []}
    rot = get_strategy("regime_rotation", {"mapping": json.dumps(mapping), "exit_on_switch": 0})
    e, _ = rot.signals(bars)
    codes = regime_codes(bars)
    # buy_and_hold enters only on bar 0, which is warm-up (no label): nothing is active there
    assert codes[0] == -1 and not e.any()
    mapping = {"trending_up": [{"name": "ma_crossover", "params": {"fast": 5, "slow": 20}}]}
    rot = get_strategy("regime_rotation", {"mapping": json.dumps(mapping)})
    e, x = rot.signals(bars)
    assert e.any() and (codes[e[:, 0]] == UP).all()


def test_regime_labels_are_causal(sp500: pl.DataFrame) -> None:
    full = regime_codes(Bars.from_frame(sp500.head(1200), "^GSPC"))
    cut = regime_codes(Bars.from_frame(sp500.head(800), "^GSPC"))
    assert np.array_equal(full[:800], cut)
    assert set(np.unique(full[full >= 0])) <= set(range(len(REGIMES)))
