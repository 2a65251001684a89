"""Metrics: hand-computed small cases, edge cases, and empyrical-reloaded on real S&P 500 history.

Conventions shared with empyrical (so agreement to 1e-9 relative is expected): simple bar returns,
risk-free 0, sample std (ddof=1), 252 bars a year for daily equity bars, CAGR over the bar count,
downside deviation over all bars, drawdown from the running high including the first point.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import empyrical as ep
import numpy as np
import polars as pl
import pytest

from trading_core.analytics import compute_metrics, drawdown_info, simple_returns

REL = 1e-9


def _days(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.int64) * 86_400_000 + 946_684_800_000  # from 2000-01-01


# ############# Hand-computed cases ############# #


def test_compute_metrics_when_small_curve_then_matches_hand_computation() -> None:
    # Arrange: 100 -> 110 -> 99 -> 121: returns +10%, -10%, +22.2...%
    equity = np.array([100.0, 110.0, 99.0, 121.0])
    r = np.array([0.1, -0.1, 121.0 / 99.0 - 1.0])

    # Act
    m = compute_metrics(equity, timeframe="1d", calendar="equity", ts=_days(4))

    # Assert
    assert m.periods_per_year == 252.0
    assert m.total_return == pytest.approx(0.21, rel=REL)
    assert m.cagr == pytest.approx(1.21 ** (252 / 3) - 1, rel=REL)
    std = math.sqrt(sum((x - r.mean()) ** 2 for x in r) / 2)
    assert m.volatility == pytest.approx(std * math.sqrt(252), rel=REL)
    assert m.sharpe == pytest.approx(r.mean() / std * math.sqrt(252), rel=REL)
    downside = math.sqrt((0.1**2) / 3) * math.sqrt(252)
    assert m.sortino == pytest.approx(r.mean() * 252 / downside, rel=REL)
    assert m.max_drawdown == pytest.approx(99.0 / 110.0 - 1, rel=REL)
    assert m.calmar == pytest.approx(m.cagr / (1 - 99.0 / 110.0), rel=REL)
    assert m.max_drawdown_peak == datetime(2000, 1, 2, tzinfo=UTC)
    assert m.max_drawdown_trough == datetime(2000, 1, 3, tzinfo=UTC)
    assert m.max_drawdown_recovery == datetime(2000, 1, 4, tzinfo=UTC)
    assert m.time_to_recover_bars == 1
    assert m.time_to_recover_days == 1.0


def test_compute_metrics_when_drawdown_not_recovered_then_recovery_is_none() -> None:
    m = compute_metrics([100.0, 120.0, 90.0, 100.0], timeframe="1d", calendar="equity", ts=_days(4))
    assert m.max_drawdown == pytest.approx(-0.25)
    assert m.max_drawdown_peak == datetime(2000, 1, 2, tzinfo=UTC)
    assert m.max_drawdown_trough == datetime(2000, 1, 3, tzinfo=UTC)
    assert m.max_drawdown_recovery is None
    assert m.time_to_recover_bars is None
    assert m.time_to_recover_days is None


def test_drawdown_info_when_peak_repeats_then_uses_last_high_before_trough() -> None:
    info = drawdown_info([100.0, 100.0, 100.0, 80.0, 100.0])
    assert (info.peak, info.trough, info.recovery) == (2, 3, 4)
    assert info.max_drawdown == pytest.approx(-0.2)


def test_compute_metrics_when_trades_given_then_win_rate_profit_factor_expectancy() -> None:
    pnl = [50.0, -20.0, 30.0, -10.0]
    m = compute_metrics([100.0, 101.0], timeframe="1h", calendar="crypto", trade_pnl=pnl,
                        position=[0.0, 2.0], traded_value=[101.0, 101.0], fees=[0.5, 0.25],
                        slippage=0.1)
    assert m.periods_per_year == 365 * 24
    assert m.trades == 4
    assert m.win_rate == 0.5
    assert m.gross_profit == 80.0 and m.gross_loss == 30.0
    assert m.profit_factor == pytest.approx(80.0 / 30.0)
    assert m.expectancy == pytest.approx(12.5)
    assert m.exposure == 0.5
    assert m.turnover == pytest.approx(202.0 / 100.5)
    assert m.fees_paid == 0.75 and m.slippage_paid == 0.1


def test_compute_metrics_when_only_winning_trades_then_profit_factor_is_none() -> None:
    m = compute_metrics([100.0, 101.0], timeframe="1d", calendar="equity", trade_pnl=[1.0, 2.0])
    assert m.win_rate == 1.0
    assert m.profit_factor is None


def test_compute_metrics_when_benchmark_is_linear_then_alpha_beta_exact() -> None:
    # r = 0.001 + 2 b exactly: beta 2, alpha (1.001)^252 - 1.
    b = np.array([0.01, -0.02, 0.005, 0.03, -0.01])
    r = 0.001 + 2.0 * b
    equity = 100.0 * np.concatenate([[1.0], np.cumprod(1 + r)])
    m = compute_metrics(equity, timeframe="1d", calendar="equity", benchmark_returns=b)
    assert m.beta == pytest.approx(2.0, rel=1e-12)
    assert m.alpha == pytest.approx(1.001**252 - 1, rel=1e-9)
    assert m.benchmark_return == pytest.approx(float(np.prod(1 + b) - 1))
    assert m.excess_return == pytest.approx(m.total_return - m.benchmark_return)
    active = r - b
    assert m.tracking_error == pytest.approx(np.std(active, ddof=1) * math.sqrt(252))
    assert m.information_ratio == pytest.approx(active.mean() / np.std(active, ddof=1) * math.sqrt(252))


# ############# Edge cases: documented None, no crash ############# #


def test_compute_metrics_when_equity_flat_then_ratios_none() -> None:
    m = compute_metrics(np.full(50, 1000.0), timeframe="1d", calendar="equity",
                        trade_pnl=[], position=np.zeros(50), benchmark_returns=np.zeros(49))
    assert m.total_return == 0.0 and m.cagr == 0.0
    assert m.volatility == 0.0
    assert m.sharpe is None and m.sortino is None and m.calmar is None
    assert m.max_drawdown == 0.0
    assert m.max_drawdown_peak is None and m.max_drawdown_recovery is None
    assert m.trades == 0 and m.win_rate is None and m.profit_factor is None and m.expectancy is None
    assert m.exposure == 0.0
    assert m.beta is None and m.alpha is None and m.information_ratio is None
    d = m.to_dict()
    assert d["sharpe"] is None and d["trades"] == 0


def test_compute_metrics_when_single_point_then_no_volatility() -> None:
    m = compute_metrics([100.0], timeframe="1d", calendar="equity")
    assert m.total_return == 0.0
    assert m.cagr is None and m.volatility is None and m.sharpe is None and m.sortino is None


def test_compute_metrics_when_only_gains_then_sortino_and_calmar_none() -> None:
    m = compute_metrics([100.0, 101.0, 103.0, 104.0], timeframe="1d", calendar="equity")
    assert m.sharpe is not None and m.sharpe > 0
    assert m.sortino is None
    assert m.calmar is None


def test_compute_metrics_when_equity_wiped_out_then_cagr_minus_one() -> None:
    m = compute_metrics([100.0, 50.0, 0.0], timeframe="1d", calendar="equity")
    assert m.cagr == -1.0
    assert m.max_drawdown == -1.0
    assert m.total_return == -1.0


def test_compute_metrics_when_nan_in_equity_then_value_error() -> None:
    with pytest.raises(ValueError, match="NaN"):
        compute_metrics([100.0, math.nan], timeframe="1d", calendar="equity")


def test_compute_metrics_when_unknown_calendar_then_invalid_input() -> None:
    from trading_core.errors import InvalidInput

    with pytest.raises(InvalidInput, match="calendar"):
        compute_metrics([100.0, 101.0], timeframe="1d", calendar="lunar")


def test_to_dict_when_called_then_json_serialisable() -> None:
    import json

    m = compute_metrics([100.0, 90.0, 95.0], timeframe="1d", calendar="equity", ts=_days(3))
    d = m.to_dict()
    json.dumps(d)
    assert d["max_drawdown_peak"] == "2000-01-01T00:00:00+00:00"
    assert set(d) == set(type(m).field_names())


# ############# Cross-check against empyrical on real S&P 500 history ############# #


@pytest.fixture(scope="module")
def spx_2000_2018(sp500: pl.DataFrame) -> pl.DataFrame:
    return sp500.filter(pl.col("ts") >= datetime(2000, 1, 1, tzinfo=UTC))


def _rel_close(a: float | None, b: float) -> bool:
    assert a is not None
    return math.isclose(a, b, rel_tol=REL, abs_tol=0.0)


def test_compute_metrics_when_spx_buy_and_hold_then_agrees_with_empyrical(spx_2000_2018: pl.DataFrame) -> None:
    # Arrange: buy-and-hold of 100k at the first close, marked at every close (no costs).
    close = spx_2000_2018["close"].to_numpy()
    equity = 100_000.0 * close / close[0]
    r = simple_returns(equity)

    # Act
    m = compute_metrics(equity, timeframe="1d", calendar="equity",
                        ts=spx_2000_2018["ts"].to_numpy())

    # Assert
    assert len(r) > 4700
    assert _rel_close(m.sharpe, ep.sharpe_ratio(r, risk_free=0, annualization=252))
    assert _rel_close(m.sortino, ep.sortino_ratio(r, required_return=0, annualization=252))
    assert _rel_close(m.calmar, ep.calmar_ratio(r, annualization=252))
    assert _rel_close(m.max_drawdown, ep.max_drawdown(r))
    assert _rel_close(m.cagr, ep.annual_return(r, annualization=252))
    assert _rel_close(m.volatility, ep.annual_volatility(r, annualization=252))
    assert _rel_close(m.total_return, ep.cum_returns_final(r))
    # The 2007-10-09 high fell to 2009-03-09, recovered 2013-03-28.
    assert m.max_drawdown_peak == datetime(2007, 10, 9, tzinfo=UTC)
    assert m.max_drawdown_trough == datetime(2009, 3, 9, tzinfo=UTC)
    assert m.max_drawdown_recovery == datetime(2013, 3, 28, tzinfo=UTC)
    assert m.max_drawdown == pytest.approx(676.530029 / 1565.150024 - 1, rel=1e-8)


def test_compute_metrics_when_leveraged_strategy_vs_spx_then_alpha_beta_agree_with_empyrical(
    spx_2000_2018: pl.DataFrame,
) -> None:
    # Arrange: a strategy in the market only on days after an up close (not a linear map of the
    # benchmark, so alpha and beta are non-trivial).
    close = spx_2000_2018["close"].to_numpy()
    b = simple_returns(close)
    in_market = np.concatenate([[False], b[:-1] > 0])
    r = np.where(in_market, 1.5 * b, 0.0) - 0.00001
    equity = 100_000.0 * np.concatenate([[1.0], np.cumprod(1 + r)])

    # Act
    m = compute_metrics(equity, timeframe="1d", calendar="equity", benchmark_returns=b)

    # Assert
    alpha, beta = ep.alpha_beta(r, b, risk_free=0.0, annualization=252)
    r2 = simple_returns(equity)
    assert _rel_close(m.beta, float(beta))
    assert math.isclose(m.alpha, float(alpha), rel_tol=1e-8)  # (1 + x)^252 amplifies roundoff
    assert _rel_close(m.sharpe, ep.sharpe_ratio(r2, annualization=252))
    assert _rel_close(m.sortino, ep.sortino_ratio(r2, annualization=252))
    assert _rel_close(m.information_ratio, ep.excess_sharpe(r2, b) * math.sqrt(252))
    assert _rel_close(m.max_drawdown, ep.max_drawdown(r2))
    assert _rel_close(m.calmar, ep.calmar_ratio(r2, annualization=252))


def test_compute_metrics_when_hourly_crypto_then_annualises_with_8760() -> None:
    rng = np.random.default_rng(42)
    r = rng.normal(0.0001, 0.01, 2000)
    equity = 1000.0 * np.concatenate([[1.0], np.cumprod(1 + r)])
    m = compute_metrics(equity, timeframe="1h", calendar="crypto")
    r2 = simple_returns(equity)
    assert _rel_close(m.sharpe, ep.sharpe_ratio(r2, annualization=8760))
    assert _rel_close(m.volatility, ep.annual_volatility(r2, annualization=8760))
    assert _rel_close(m.cagr, ep.annual_return(r2, annualization=8760))
