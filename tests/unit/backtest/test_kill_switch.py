"""A loss breaker that halts flattens the account (kill switch) -- buy and hold through the 2008
crash on real S&P 500 bars, where the 25 % max-drawdown breaker latches."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl
import pytest
from bt_helpers import build_warehouse

from trading_core.backtest import BacktestRequest, run_backtest
from trading_core.risk import BreakerConfig, MarketFilterConfig, RiskConfig


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory, sp500: pl.DataFrame) -> Any:
    return build_warehouse(tmp_path_factory.mktemp("ks") / "w.duckdb", sp500)


def _run(wh: Any, flatten: bool) -> Any:
    # only the portfolio drawdown can halt: daily-loss and strategy limits out of reach, market off
    cfg = RiskConfig(market_filter=MarketFilterConfig(enabled=False), breakers=BreakerConfig.model_validate({
        "flatten_on_loss_halt": flatten,
        "strategy": {"drawdown_reduce": 0.9, "drawdown_halt": 0.95},
        "portfolio": {"daily_loss_reduce": 0.5, "daily_loss_halt": 0.6, "max_drawdown_halt": 0.25},
        "market": {"vol_percentile_reduce": 1.0, "vix_reduce": 1000.0}}))
    req = BacktestRequest(strategy="buy_and_hold", symbol="^GSPC", venue="yahoo", timeframe="1d",
                          start=datetime(2007, 6, 1, tzinfo=UTC), end=datetime(2009, 12, 31, tzinfo=UTC),
                          fee_bps=0.0, risk=cfg, persist=False)
    return run_backtest(req, wh)


def test_a_latched_drawdown_halt_closes_the_position_and_nothing_trades_after(wh: Any) -> None:
    res = _run(wh, flatten=True)
    halts = [e for e in res.breaker_events if e["to_state"] == "halted"]
    assert [(e["level"], e["rule"]) for e in halts] == [("portfolio", "portfolio_max_drawdown")]
    sells = res.fills[res.fills["side"] == 1]
    assert len(sells) == 1 and len(res.fills) == 2  # bought once, closed once by the kill switch
    halt_bar = int(np.searchsorted(res.ts, int(halts[0]["ts"].timestamp() * 1000) - 86_400_000))
    assert int(sells[0]["bar"]) == halt_bar + 1  # at the open after the decision close
    after = res.equity[halt_bar + 1:, 0]
    assert np.allclose(after, after[0])  # flat: equity frozen from the exit on
    assert res.equity[-1, 0] < 100_000 * 0.76  # the loss that tripped it is kept, nothing more
    rows = res.risk_rows
    assert rows is not None
    kill = [r for r in rows.iter_rows(named=True) if r["inputs"]["kill_switch"]]
    assert len(kill) == 1 and kill[0]["side"] == "sell" and kill[0]["decision"] == "allowed"


def test_without_the_kill_switch_a_halted_book_stays_invested(wh: Any) -> None:
    res = _run(wh, flatten=False)
    assert any(e["to_state"] == "halted" for e in res.breaker_events)
    assert (res.fills["side"] == 1).sum() == 0 and res.position[-1, 0] > 0
    assert res.equity[-1, 0] > res.equity.min() * 1.3  # it rode the 2009 rebound
