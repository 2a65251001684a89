"""The backtest runner on real S&P 500 bars: signals -> simulator -> trades, metrics, warehouse.

These tests pass the runner a slow reference simulator (conftest.reference_simulate) so they pin
the runner's own work; test_engine_backtest.py runs the same path through the real engine.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest
from bt_helpers import reference_simulate

from trading_core.backtest import BacktestRequest, build_market_model, parse_slippage, run_backtest
from trading_core.errors import InvalidInput
from trading_core.warehouse import Warehouse


def _request(**kw) -> BacktestRequest:  # type: ignore[no-untyped-def]
    base = dict(strategy="buy_and_hold", symbol="^GSPC", venue="yahoo", timeframe="1d",
                start=datetime(2000, 1, 1, tzinfo=UTC), end=datetime(2019, 1, 1, tzinfo=UTC),
                cash=100_000.0, fee_bps=10.0, fill="next_open")
    base.update(kw)
    return BacktestRequest(**base)


def test_run_backtest_when_buy_and_hold_then_final_equity_is_cash_times_price_ratio_minus_fees(
    spx_warehouse: Warehouse,
) -> None:
    # Arrange
    req = _request(persist=False)

    # Act
    res = run_backtest(req, spx_warehouse, simulate=reference_simulate)

    # Assert: bought at the second bar's open with 10 bps fee, marked at the last close.
    bars = spx_warehouse.read_bars("yahoo", "^GSPC", "1d", req.start, req.end)
    first_open, last_close = bars["open"][1], bars["close"][-1]
    m = res.portfolios[0].metrics
    assert res.calendar == "equity" and m.periods_per_year == 252
    assert m.final_equity == pytest.approx(100_000 / (1 + 0.001) * last_close / first_open, rel=1e-12)
    assert m.trades == 0 and m.open_trades == 1
    (trade,) = res.portfolios[0].trades
    assert trade.is_open and trade.entry_price == pytest.approx(first_open)
    assert trade.pnl == pytest.approx(m.final_equity - 100_000, rel=1e-9)
    assert m.exposure == pytest.approx((bars.height - 1) / bars.height)
    assert m.beta == pytest.approx(1.0, abs=0.01)
    assert m.fees_paid == pytest.approx(100_000 * 0.001 / 1.001)


def test_run_backtest_when_ma_grid_then_one_portfolio_per_pair_and_pnl_adds_up(spx_warehouse: Warehouse) -> None:
    # Arrange
    req = _request(strategy="ma_crossover", params={"grid": "10:50,20:100,50:200"}, slippage="fixed:5",
                   persist=False)

    # Act
    res = run_backtest(req, spx_warehouse, simulate=reference_simulate)

    # Assert
    assert [p.params for p in res.portfolios] == [
        {"fast": 10, "slow": 50, "kind": "sma"}, {"fast": 20, "slow": 100, "kind": "sma"},
        {"fast": 50, "slow": 200, "kind": "sma"}]
    for pr in res.portfolios:
        m = pr.metrics
        assert m.trades >= 5
        assert sum(t.pnl for t in pr.trades) == pytest.approx(m.final_equity - 100_000, rel=1e-9)
        fills = res.fills[res.fills["portfolio"] == pr.portfolio]
        assert sum(t.n_fills for t in pr.trades) == fills.size
        assert sum(t.fees for t in pr.trades) == pytest.approx(float(fills["fee"].sum()))
        assert m.slippage_paid == pytest.approx(float(fills["slippage_cost"].sum()))
        assert m.slippage_paid > 0
        for t in pr.trades:
            if not t.is_open:
                assert t.exit_ts > t.entry_ts


def test_run_backtest_when_persisted_then_rows_in_backtest_schema(
    tmp_path, sp500: pl.DataFrame  # type: ignore[no-untyped-def]
) -> None:
    # Arrange
    from bt_helpers import build_warehouse

    wh = build_warehouse(tmp_path / "w.duckdb", sp500)
    req = _request(strategy="ma_crossover", params={"fast": "20", "slow": "100"})

    # Act
    res = run_backtest(req, wh, simulate=reference_simulate, run_id="run-1")

    # Assert
    assert res.persisted
    runs = wh.query("SELECT * FROM backtest.runs")
    assert runs.height == 1 and runs["run_id"][0] == "run-1"
    assert runs["execution_model_hash"][0] == build_market_model(req).execution_model_hash()
    config = json.loads(runs["config"][0])
    assert config["request"]["params"] == {"fast": "20", "slow": "100"}
    assert config["market_model"]["fill_at"] == "next_open"
    metrics = json.loads(runs["metrics"][0])
    assert metrics["sharpe"] == pytest.approx(res.portfolios[0].metrics.sharpe)
    trades = wh.query("SELECT * FROM backtest.trades WHERE run_id = $r ORDER BY trade_no", {"r": "run-1"})
    assert trades.height == len(res.portfolios[0].trades)
    fills = wh.query("SELECT count(*) AS n FROM backtest.fills WHERE run_id = $r", {"r": "run-1"})
    assert fills["n"][0] == res.fills.size
    eq = wh.query("SELECT equity FROM backtest.equity WHERE run_id = $r ORDER BY ts", {"r": "run-1"})
    np.testing.assert_allclose(eq["equity"].to_numpy(), res.equity[:, 0])
    pf = wh.query("SELECT * FROM backtest.portfolios")
    assert pf.height == 1 and pf["trades"][0] == res.portfolios[0].metrics.trades


def test_run_backtest_when_no_bars_in_range_then_invalid_input(spx_warehouse: Warehouse) -> None:
    req = _request(start=datetime(2030, 1, 1, tzinfo=UTC), end=datetime(2031, 1, 1, tzinfo=UTC))
    with pytest.raises(InvalidInput, match="ingest them first"):
        run_backtest(req, spx_warehouse, simulate=reference_simulate)


def test_run_backtest_when_fill_at_close_then_entry_at_first_close(spx_warehouse: Warehouse) -> None:
    res = run_backtest(_request(fill="close", fee_bps=0.0, persist=False), spx_warehouse,
                       simulate=reference_simulate)
    bars = spx_warehouse.read_bars("yahoo", "^GSPC", "1d", datetime(2000, 1, 1, tzinfo=UTC))
    m = res.portfolios[0].metrics
    assert m.final_equity == pytest.approx(100_000 * bars["close"][-1] / bars["close"][0], rel=1e-12)
    assert m.total_return == pytest.approx(m.benchmark_return, rel=1e-9)
    assert m.beta == pytest.approx(1.0, rel=1e-9)


# ############# Request validation ############# #


@pytest.mark.parametrize(("kw", "fragment"), [
    ({"symbol": "gspc;drop"}, "invalid symbol"),
    ({"venue": "Yahoo"}, "invalid venue"),
    ({"timeframe": "2d"}, "unknown timeframe"),
    ({"cash": 0}, "greater than 0"),
    ({"fee_bps": -1}, "greater than or equal to 0"),
    ({"slippage": "fixed:x"}, "slippage model"),
    ({"fill": "open"}, "next_open"),
    ({"sizing": "kelly"}, "all_in"),
    ({"end": datetime(1999, 1, 1, tzinfo=UTC)}, "must be after start"),
])
def test_backtest_request_when_bad_field_then_validation_error(kw: dict, fragment: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as e:
        _request(**kw)
    assert fragment in str(e.value)


def test_parse_slippage_when_models_then_bps_or_impact() -> None:
    assert parse_slippage("none") == (0.0, 0.0)
    assert parse_slippage("fixed:5") == (5.0, 0.0)
    assert parse_slippage("sqrt") == (0.0, 0.1)
    assert parse_slippage("sqrt:0.5") == (0.0, 0.5)


def test_build_market_model_when_venue_config_and_overrides_then_overrides_win() -> None:
    req = _request(venue="coinbase", symbol="BTC/USD", timeframe="1h", fee_bps=None, slippage="fixed:3",
                   fill="close", venue_config={"fees": {"tiers": [{"maker_bps": 40, "taker_bps": 60}]},
                                               "lot_size": 0.0001})
    model = build_market_model(req)
    assert model.fee_tiers[0].taker_bps == 60 and model.slippage_bps == 3 and model.fill_at == "close"
    assert model.lot_size == 0.0001
    assert req.resolved_calendar() == "crypto"
    flat = build_market_model(req.model_copy(update={"fee_bps": 5.0}))
    assert flat.fee_tiers[0].taker_bps == 5.0
    assert flat.execution_model_hash() != model.execution_model_hash()


def test_build_market_model_when_venue_config_invalid_then_invalid_input() -> None:
    req = _request(venue_config={"lot_size": -1})
    with pytest.raises(InvalidInput, match="venues.yahoo"):
        build_market_model(req)


def test_check_lot_size_when_fixed_size_not_multiple_then_invalid_input() -> None:
    from trading_core.backtest import check_lot_size

    req = _request(sizing="fixed", size=1.5, venue_config={"lot_size": 1.0})
    with pytest.raises(InvalidInput, match="lot size 1"):
        check_lot_size(req, build_market_model(req))
    ok = _request(sizing="fixed", size=1.5)  # no lot size: fractions allowed
    check_lot_size(ok, build_market_model(ok))


# ############# Through the real engine ############# #


def test_run_backtest_when_real_engine_then_trades_agree_with_engine_round_trips(
    spx_warehouse: Warehouse,
) -> None:
    # Arrange: capture the engine's own SimResult to compare its round trips with ours.
    from trading_core.engine import simulate_signals

    captured = []

    def simulate(*args, **kw):  # type: ignore[no-untyped-def]
        captured.append(simulate_signals(*args, **kw))
        return captured[-1]

    req = _request(strategy="ma_crossover", params={"grid": "10:50,50:200"}, slippage="fixed:2",
                   persist=False)

    # Act
    res = run_backtest(req, spx_warehouse, simulate=simulate)

    # Assert
    (sim,) = captured
    assert res.execution_model_hash == sim.model_hash
    for pr in res.portfolios:
        theirs = sim.trades(pr.portfolio)
        assert len(theirs) == len(pr.trades) > 3
        for mine, ref in zip(pr.trades, theirs, strict=True):
            assert mine.is_open == ref.is_open
            assert mine.entry_bar == ref.entry_bar and mine.quantity == pytest.approx(ref.quantity, rel=1e-12)
            assert mine.entry_price == pytest.approx(ref.entry_price, rel=1e-12)
            assert mine.fees == pytest.approx(ref.fees, rel=1e-9)
            if not ref.is_open:
                assert mine.exit_bar == ref.exit_bar
                assert mine.exit_price == pytest.approx(ref.exit_price, rel=1e-12)
                assert mine.pnl == pytest.approx(ref.pnl, rel=1e-9, abs=1e-9)
        assert pr.metrics.final_equity == pytest.approx(float(sim.final_equity[pr.portfolio]))
        assert pr.metrics.fees_paid == pytest.approx(float(sim.fees_paid[pr.portfolio]), rel=1e-9)
        assert sum(t.pnl for t in pr.trades) == pytest.approx(pr.metrics.final_equity - req.cash, rel=1e-9)
