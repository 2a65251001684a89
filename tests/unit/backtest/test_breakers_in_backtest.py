"""Strategy and portfolio breakers acting inside ``run_backtest`` on real S&P 500 days (2007-08)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import polars as pl
import pytest
from bt_helpers import build_warehouse, register_on_dates

from trading_core.backtest import BacktestRequest, run_backtest
from trading_core.risk import BreakerConfig, MarketFilterConfig, RiskConfig


@pytest.fixture(autouse=True)
def _register(monkeypatch: pytest.MonkeyPatch) -> None:
    register_on_dates(monkeypatch)


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory, sp500: pl.DataFrame) -> Any:
    return build_warehouse(tmp_path_factory.mktemp("brk") / "w.duckdb", sp500)


def _risk(**breakers: Any) -> RiskConfig:
    base: dict[str, Any] = {"strategy": {"drawdown_reduce": 0.9, "drawdown_halt": 0.95},
                            "portfolio": {"daily_loss_reduce": 0.5, "daily_loss_halt": 0.6, "max_drawdown_halt": 0.9},
                            "market": {"vol_percentile_reduce": 1.0, "vix_reduce": 1000.0}}
    for k, v in breakers.items():
        base[k] = {**base.get(k, {}), **v}
    return RiskConfig(market_filter=MarketFilterConfig(enabled=False), breakers=BreakerConfig.model_validate(base))


def _run(wh: Any, entries: str, exits: str, risk: RiskConfig, end: str = "2008-03-01") -> Any:
    return run_backtest(BacktestRequest(
        strategy="on_dates", params={"entries": entries, "exits": exits}, symbol="^GSPC", venue="yahoo",
        timeframe="1d", start=datetime(2007, 12, 1, tzinfo=UTC), end=datetime.fromisoformat(end).replace(tzinfo=UTC),
        fee_bps=0.0, risk=risk, persist=False), wh)


def _opens(wh: Any, *days: str) -> list[float]:
    f = wh.read_bars("yahoo", "^GSPC", "1d", datetime(2007, 12, 1, tzinfo=UTC), datetime(2008, 12, 31, tzinfo=UTC))
    by_day = dict(zip(f["ts"].dt.date().cast(pl.Utf8).to_list(), f["open"].to_list(), strict=True))
    return [by_day[d] for d in days]


def test_three_losing_round_trips_halt_the_strategy_and_refuse_the_next_entry(wh: Any) -> None:
    # bought at the next open, sold at the next open: each of the three lost money
    for buy, sell in (("2007-12-26", "2007-12-31"), ("2008-01-03", "2008-01-08"), ("2008-01-17", "2008-01-23")):
        b, s = _opens(wh, buy, sell)
        assert s < b, (buy, sell)
    res = _run(wh, "2007-12-24,2008-01-02,2008-01-16,2008-01-31", "2007-12-28,2008-01-07,2008-01-22,2008-02-05",
               _risk(strategy={"losing_streak_reduce": 3, "losing_streak_halt": 3, "cooldown_s": 30 * 86_400}))
    assert len(res.fills) == 6  # three round trips; the fourth entry never reached the engine
    trips = [(e["level"], e["to_state"], e["rule"]) for e in res.breaker_events]
    # halted at the third loss, a step down to reduce-only once the 30-day cool-down is over
    assert trips == [("strategy", "halted", "strategy_losing_streak"), ("strategy", "reduce_only", None)]
    assert (res.breaker_events[1]["ts"] - res.breaker_events[0]["ts"]).days >= 30
    assert res.breaker_events[0]["metrics"]["losing_streak"] == 3
    assert res.risk is not None and res.risk["counts"]["trading_halted"] == 1
    refused = res.risk_rows.filter(pl.col("reason") == "trading_halted")  # type: ignore[union-attr]
    assert refused["ts"][0].date().isoformat() == "2008-02-01"  # decided at the 2008-01-31 close


def test_a_crash_day_trips_the_daily_loss_halt_and_the_kill_switch_sells(wh: Any) -> None:
    # long from 2008-09-03; on 2008-09-29 the S&P fell 8.8 % (the House rejected the TARP bill)
    res = _run(wh, "2008-09-02", "", _risk(portfolio={"daily_loss_reduce": 0.03, "daily_loss_halt": 0.05}),
               end="2008-10-15")
    halt = [e for e in res.breaker_events if e["to_state"] == "halted"]
    assert halt and halt[0]["rule"] == "portfolio_daily_loss"
    assert halt[0]["ts"].date().isoformat() == "2008-09-30"  # the 09-29 bar's close
    assert halt[0]["metrics"]["daily_loss"] > 0.08
    sells = res.fills[res.fills["side"] == 1]
    assert len(sells) == 1
    day = datetime.fromtimestamp(int(sells[0]["ts"]) / 1000, tz=UTC).date().isoformat()
    assert day == "2008-09-30" and int(sells[0]["reason"]) == 0  # at the next open
    rows = res.risk_rows
    assert rows is not None
    assert [r["inputs"]["kill_switch"] for r in rows.iter_rows(named=True) if r["side"] == "sell"] == [True]
