"""Sizing formulas checked by hand, and Markowitz against the analytic minimum-variance answer."""

from __future__ import annotations

import numpy as np
import pytest

from trading_core.errors import InvalidInput
from trading_core.risk import (
    InfeasiblePortfolio,
    SizingConfig,
    correlation_scale,
    fixed_quantity,
    markowitz_weights,
    percent_of_equity,
    position_size,
    risk_based_quantity,
)

COV = np.array([[0.04, 0.006, 0.0], [0.006, 0.09, 0.01], [0.0, 0.01, 0.16]])
MU = np.array([0.05, 0.08, 0.12])


def test_fixed_quantity_ignores_price() -> None:
    assert fixed_quantity(3.0, 250.0) == 3.0
    assert fixed_quantity(3.0, np.array([1.0, 2.0])).tolist() == [3.0, 3.0]


def test_percent_of_equity_is_equity_times_fraction_over_price() -> None:
    # 100 000 x 10 % / 50 = 200 units
    assert percent_of_equity(100_000.0, 0.10, 50.0) == pytest.approx(200.0)


def test_risk_based_size_loses_2pct_of_capital_at_the_stop() -> None:
    # capital 100 000, risk 2 % = 2 000; stop 5 % below 40 -> 2 per unit -> 1 000 units
    q = risk_based_quantity(100_000.0, 0.02, 40.0, 0.05)
    assert q == pytest.approx(1_000.0)
    assert q * 40.0 * 0.05 == pytest.approx(100_000.0 * 0.02)


def test_risk_based_size_is_capped_by_max_position_fraction() -> None:
    # 2 % / 1 % stop would be 200 % of equity; cap at 100 % -> 100 000 / 40 = 2 500 units
    assert risk_based_quantity(100_000.0, 0.02, 40.0, 0.01, max_position_fraction=1.0) == pytest.approx(2_500.0)


def test_risk_based_size_vectorises_over_bars() -> None:
    q = risk_based_quantity(np.array([100_000.0, 50_000.0]), 0.02, np.array([40.0, 10.0]), np.array([0.05, 0.1]))
    assert q.tolist() == pytest.approx([1_000.0, 1_000.0])


def test_risk_based_size_refuses_a_stop_of_100pct_or_more() -> None:
    with pytest.raises(InvalidInput, match="stop_pct"):
        risk_based_quantity(100_000.0, 0.02, 40.0, 1.0)


def test_position_size_follows_the_configured_method() -> None:
    assert position_size(SizingConfig(method="fixed", fixed_quantity=7), equity=1e5, price=10.0) == 7.0
    assert position_size(SizingConfig(method="percent_equity", equity_fraction=0.2), equity=1e5,
                         price=10.0) == pytest.approx(2_000.0)
    assert position_size(SizingConfig(), equity=1e5, price=10.0) == pytest.approx(1e5 * 0.02 / 0.05 / 10.0)
    assert position_size(SizingConfig(), equity=1e5, price=10.0, stop_pct=0.1) == pytest.approx(2_000.0)


def test_correlation_scale_without_exposure_is_one() -> None:
    assert correlation_scale(0, [], []) == 1.0


def test_correlation_scale_halves_a_new_long_fully_correlated_with_a_full_long() -> None:
    # c = 1 x 1.0 x 1.0 = 1 -> 1 / (1 + 1) = 0.5
    assert correlation_scale(0, [1.0], [1.0]) == pytest.approx(0.5)


def test_correlation_scale_by_hand_with_two_positions() -> None:
    # c = 0.6 x 0.5 + (-0.3) x 0.8 = 0.30 - 0.24 = 0.06 -> 1 / 1.06
    assert correlation_scale(0, [0.5, 0.8], [0.6, -0.3]) == pytest.approx(1 / 1.06)


def test_correlation_scale_never_scales_up_a_hedge() -> None:
    assert correlation_scale(1, [0.9], [1.0]) == 1.0  # a short against a correlated long hedges


def test_correlation_floor_ignores_weak_correlations() -> None:
    assert correlation_scale(0, [0.2], [1.0], floor=0.3) == 1.0


def test_markowitz_without_target_matches_the_analytic_minimum_variance_portfolio() -> None:
    # Arrange: w* = S^-1 1 / 1' S^-1 1 (all positive here, so the long-only bounds are slack)
    inv = np.linalg.solve(COV, np.ones(3))
    expected = inv / inv.sum()
    # Act
    w = markowitz_weights(MU, COV)
    # Assert
    assert w == pytest.approx(expected, abs=1e-6)
    assert w.sum() == pytest.approx(1.0)


def test_markowitz_two_uncorrelated_assets_weights_inverse_to_variance() -> None:
    w = markowitz_weights([0.1, 0.1], np.diag([0.04, 0.01]))
    assert w == pytest.approx([0.2, 0.8], abs=1e-6)


def test_markowitz_target_return_matches_the_two_constraint_closed_form() -> None:
    # min w'Sw s.t. 1'w = 1, mu'w = t: w = S^-1 B (B' S^-1 B)^-1 (1, t) with B = [1, mu]
    t = 0.10
    b = np.column_stack([np.ones(3), MU])
    inv = np.linalg.inv(COV)
    expected = inv @ b @ np.linalg.solve(b.T @ inv @ b, np.array([1.0, t]))
    assert np.all(expected > 0)
    w = markowitz_weights(MU, COV, target_return=t)
    assert MU @ w == pytest.approx(t, abs=1e-6)
    assert w == pytest.approx(expected, abs=1e-5)


def test_markowitz_target_below_the_minimum_variance_return_gives_that_portfolio() -> None:
    assert markowitz_weights(MU, COV, target_return=0.0) == pytest.approx(markowitz_weights(MU, COV), abs=1e-6)


def test_markowitz_risk_aversion_matches_the_closed_form_when_bounds_are_slack() -> None:
    # max mu'w - l/2 w'Sw, sum w = 1: w = S^-1 (mu - g 1) / l with g so that sum w = 1
    lam = 2.0
    inv = np.linalg.inv(COV)
    one = np.ones(3)
    g = (one @ inv @ MU - lam) / (one @ inv @ one)
    expected = inv @ (MU - g * one) / lam
    assert np.all(expected > 0)
    assert markowitz_weights(MU, COV, risk_aversion=lam) == pytest.approx(expected, abs=1e-5)


def test_markowitz_respects_upper_weight_bounds() -> None:
    w = markowitz_weights(MU, COV, bounds=(0.0, 0.4))
    assert np.all(w <= 0.4 + 1e-9) and w.sum() == pytest.approx(1.0)


def test_markowitz_target_above_the_best_asset_is_infeasible_with_a_clear_error() -> None:
    with pytest.raises(InfeasiblePortfolio, match="target_return 0.2 is above 0.12"):
        markowitz_weights(MU, COV, target_return=0.20)


def test_markowitz_bounds_that_cannot_sum_to_one_are_infeasible() -> None:
    with pytest.raises(InfeasiblePortfolio, match="cannot sum to 1"):
        markowitz_weights(MU, COV, bounds=(0.0, 0.3))


@pytest.mark.parametrize(("mu", "cov", "kw", "msg"), [
    (MU, COV[:2, :2], {}, "3x3"),
    (MU, COV + np.triu(np.ones((3, 3)), 1) * 0.01, {}, "symmetric"),
    (MU[:2], np.array([[1.0, 2.0], [2.0, 1.0]]), {}, "semi-definite"),
    (MU, COV, {"bounds": (-0.1, 1.0)}, "long-only"),
    (MU, COV, {"target_return": 0.1, "risk_aversion": 1.0}, "not both"),
])
def test_markowitz_bad_inputs_name_the_problem(mu: np.ndarray, cov: np.ndarray, kw: dict, msg: str) -> None:
    with pytest.raises(InvalidInput, match=msg):
        markowitz_weights(mu, cov, **kw)
