"""Ensemble: weights follow recent risk-adjusted performance, causally; votes make the signals."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import polars as pl
import pytest

from trading_core.strategies import STRATEGIES, Bars, get_strategy
from trading_core.strategies.base import SingleVariantStrategy, StrategyParams, as_bars


class _OracleParams(StrategyParams):
    good: bool = True


class Oracle(SingleVariantStrategy[_OracleParams]):
    """Test member: long exactly over the bars that rise (good) or fall (bad) next -- a cheat on
    purpose, so one member's hypothetical returns are clearly better than the other's."""

    name: ClassVar[str] = "oracle"
    Params: ClassVar[type[StrategyParams]] = _OracleParams

    def warmup_bars(self) -> int:
        return 0

    def signals(self, bars: Any) -> tuple[np.ndarray, np.ndarray]:
        b = as_bars(bars)
        up = np.zeros(b.close.shape, bool)
        up[:-1] = b.close[1:] > b.close[:-1]
        want = up if self.params.good else ~up
        return want, ~want


@pytest.fixture(autouse=True)
def _register(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(STRATEGIES, "oracle", Oracle)


MEMBERS = '[{"name": "oracle", "params": {"good": false}}, {"name": "oracle", "params": {"good": true}}]'


def test_weights_move_toward_the_better_member(sp500: pl.DataFrame) -> None:
    bars = Bars.from_frame(sp500.head(600), "^GSPC")
    ens = get_strategy("ensemble", {"members": MEMBERS, "lookback": 40, "scheme": "softmax",
                                    "temperature": 0.2})
    _, w = ens.weights(bars)  # type: ignore[attr-defined]
    assert np.allclose(w.sum(axis=1), 1.0)
    assert w[0, 1] == pytest.approx(0.5)
    assert w[100:, 1].mean() > 0.9 > w[100:, 0].mean() + 0.8


def test_floor_and_cap_bound_the_weights(sp500: pl.DataFrame) -> None:
    bars = Bars.from_frame(sp500.head(300), "^GSPC")
    ens = get_strategy("ensemble", {"members": MEMBERS, "lookback": 20, "floor": 0.2, "cap": 0.8,
                                    "temperature": 0.1})
    _, w = ens.weights(bars)  # type: ignore[attr-defined]
    assert w.min() >= 0.2 - 1e-12 and w.max() <= 0.8 + 1e-12


def test_weights_are_causal(sp500: pl.DataFrame) -> None:
    full = Bars.from_frame(sp500.head(500), "^GSPC")
    cut = Bars.from_frame(sp500.head(300), "^GSPC")
    ens = get_strategy("ensemble", {"members": '["buy_and_hold", {"name": "ma_crossover", '
                                                '"params": {"fast": 5, "slow": 20}}]', "lookback": 30})
    _, wf = ens.weights(full)  # type: ignore[attr-defined]
    _, wc = ens.weights(cut)  # type: ignore[attr-defined]
    assert np.allclose(wf[:300], wc)
    e_full, _ = ens.signals(full)
    e_cut, _ = ens.signals(cut)
    assert np.array_equal(e_full[:300], e_cut)


def test_bad_member_is_refused_by_name() -> None:
    from trading_core.errors import InvalidInput

    with pytest.raises((InvalidInput, ValueError)):
        get_strategy("ensemble", {"members": '["no_such_strategy"]'})
