"""Risk controls and signal filters wired into ``run_backtest`` on real S&P 500 / VIX bars."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from bt_helpers import build_warehouse, register_on_dates

from trading_core.backtest import BacktestRequest, run_backtest
from trading_core.risk import BreakerConfig, MarketFilterConfig, RiskConfig
from trading_core.strategies.filters import FilterConfig
from trading_core.warehouse.risk import read_decisions
from trading_core.warehouse.signals import read_signal_decisions


@pytest.fixture(autouse=True)
def _register(monkeypatch: pytest.MonkeyPatch) -> None:
    register_on_dates(monkeypatch)


def _req(start: str, end: str, **kw: Any) -> BacktestRequest:
    return BacktestRequest(strategy="on_dates", symbol="^GSPC", venue="yahoo", timeframe="1d",
                           start=datetime.fromisoformat(start).replace(tzinfo=UTC),
                           end=datetime.fromisoformat(end).replace(tzinfo=UTC), fee_bps=0.0, **kw)


NO_VIX = RiskConfig(market_filter=MarketFilterConfig(enabled=False))
NO_BREAKERS = RiskConfig(breakers=BreakerConfig(enabled=False))  # the market filter alone
ORDERS_ONLY = RiskConfig(market_filter=MarketFilterConfig(enabled=False), breakers=BreakerConfig(enabled=False))


@pytest.fixture(scope="module")
def spiked(tmp_path_factory: pytest.TempPathFactory, sp500: pl.DataFrame) -> tuple[Any, str]:
    """^GSPC with one bar (2005-06-15) whose close is 15 % above the previous close."""
    day = datetime(2005, 6, 15, tzinfo=UTC)
    df = sp500.sort("ts")
    i = df["ts"].cast(pl.Datetime("ms", "UTC")).search_sorted(day)
    prev = float(df["close"][int(i) - 1])
    close = df["close"].to_numpy().copy()
    high = df["high"].to_numpy().copy()
    close[int(i)] = prev * 1.15
    high[int(i)] = max(high[int(i)], close[int(i)])
    df = df.with_columns(pl.Series("close", close), pl.Series("high", high))
    return build_warehouse(tmp_path_factory.mktemp("spike") / "w.duckdb", df), "2005-06-15"


@pytest.fixture(scope="module")
def with_vix(tmp_path_factory: pytest.TempPathFactory, sp500: pl.DataFrame, vix: pl.DataFrame) -> Any:
    path = tmp_path_factory.mktemp("vix") / "w.duckdb"
    build_warehouse(path, sp500)
    return build_warehouse(path, vix, symbol="^VIX")


@pytest.fixture(scope="module")
def without_vix(spx_warehouse: Any) -> Any:
    return spx_warehouse


def test_order_more_than_10pct_from_last_price_is_rejected_with_reason_and_audited(spiked: tuple[Any, str]) -> None:
    wh, day = spiked
    req = _req("2005-01-01", "2005-12-31", params={"entries": f"{day},2005-09-01", "exits": "2005-08-01"},
               risk=ORDERS_ONLY)
    res = run_backtest(req, wh, run_id="spike-run")
    assert res.risk is not None and res.risk["counts"] == {"none": 1, "price_deviation": 1}
    buys = [f for f in res.fills if int(f["side"]) == 0]
    assert len(buys) == 1  # only the 2005-09-01 entry reached the engine
    with wh.connect() as con:
        audit = read_decisions(con, "spike-run")
        sig = read_signal_decisions(con, "spike-run")
    rejected = audit.filter(pl.col("decision") == "rejected")
    assert rejected["reason"].to_list() == ["price_deviation"]
    assert rejected["reason_code"].to_list() == [4]
    assert json.loads(rejected["inputs"][0])["last_price"] > 0
    assert sig.filter(pl.col("reason") == "risk_blocked").height == 1


def test_without_risk_the_spiked_entry_is_taken(spiked: tuple[Any, str]) -> None:
    wh, day = spiked
    res = run_backtest(_req("2005-01-01", "2005-12-31", params={"entries": day}, persist=False), wh)
    assert res.risk is None and sum(int(f["side"]) == 0 for f in res.fills) == 1


def test_vix_filter_blocks_entries_on_2008_10_10_with_vix_in_warehouse(with_vix: Any) -> None:
    req = _req("2008-01-01", "2008-12-31", params={"entries": "2008-10-10"}, risk=NO_BREAKERS)
    res = run_backtest(req, with_vix, run_id="vix-run")
    assert res.risk is not None and res.risk["counts"] == {"market_filter": 1}
    assert res.fills.shape[0] == 0
    with with_vix.connect() as con:
        audit = read_decisions(con, "vix-run")
    assert audit["reason"].to_list() == ["market_filter"]
    assert audit["ts"][0].date().isoformat() == "2008-10-11"  # decided at the 2008-10-10 bar's close
    # A calm day passes the same filter.
    calm = run_backtest(_req("2006-01-01", "2006-12-31", params={"entries": "2006-03-01"}, risk=RiskConfig(),
                             persist=False), with_vix)
    assert calm.risk is not None and calm.risk["counts"] == {"none": 1} and calm.fills.shape[0] == 1


def test_missing_vix_fails_closed_by_default_and_open_when_configured(without_vix: Any) -> None:
    closed = run_backtest(_req("2006-01-01", "2006-12-31", params={"entries": "2006-03-01"},
                               risk=RiskConfig(), persist=False), without_vix)
    assert closed.fills.shape[0] == 0 and closed.risk is not None
    assert "no ^VIX 1d bars" in closed.risk["notes"][0] and "fail closed" in closed.risk["notes"][0]
    open_ = run_backtest(_req("2006-01-01", "2006-12-31", params={"entries": "2006-03-01"}, persist=False,
                              risk=RiskConfig(market_filter=MarketFilterConfig(on_missing_vix="allow"))),
                         without_vix)
    assert open_.fills.shape[0] == 1 and "fail open" in open_.risk["notes"][0]  # type: ignore[index]


def test_signal_filter_decisions_written_with_the_run(with_vix: Any) -> None:
    req = _req("2006-01-01", "2006-12-31", params={"entries": "2006-03-01,2006-03-02,2006-05-01"},
               filters=FilterConfig(confirm_bars=2))
    res = run_backtest(req, with_vix, run_id="filter-run")
    assert res.filters == {"allowed": 1, "confirmation": 2}
    buys = res.fills[res.fills["side"] == 0]
    assert len(buys) == 1
    with with_vix.connect() as con:
        sig = read_signal_decisions(con, "filter-run")
    assert sorted(sig["reason"].to_list()) == ["allowed", "confirmation", "confirmation"]


def test_trailing_stop_adds_an_exit(with_vix: Any) -> None:
    from trading_core.risk import TrailingStopConfig

    cfg = RiskConfig(market_filter=MarketFilterConfig(enabled=False),
                     trailing_stop=TrailingStopConfig(kind="percent", trail_pct=0.05))
    res = run_backtest(_req("2007-10-01", "2008-12-31", params={"entries": "2007-10-09"}, risk=cfg,
                            persist=False), with_vix)
    sells = res.fills[res.fills["side"] == 1]
    assert len(sells) == 1  # the 2007-08 slide went more than 5 % below the high


def test_cli_json_reports_risk_and_filter_counts(with_vix: Any, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from trading_core.cli import main

    monkeypatch.setenv("TRADING_WAREHOUSE", str(Path(with_vix.path)))
    base = ["backtest", "--strategy", "on_dates", "--param", "entries=2008-10-10,2008-03-03", "--param",
            "exits=2008-06-02", "--symbol", "^GSPC",
            "--venue", "yahoo", "--timeframe", "1d", "--start", "2008-01-01", "--end", "2008-12-31", "--json",
            "--no-save"]
    assert main([*base, "--risk"]) == 0
    doc = json.loads(capsys.readouterr().out)
    # 2008-03-03 opens (VIX ~26) and 2008-06-02 closes (both audited as allowed); by 2008-10-10
    # VIX (~64) and realised volatility are extreme: the market breaker holds the book reduce-only
    assert doc["risk"]["enabled"] is True and doc["risk"]["counts"] == {"none": 2, "reduce_only": 1}
    assert doc["filters"] == {"allowed": 2, "risk_blocked": 1}
    assert doc["driver"] == "stepped"
    trips = {(e["ts"][:10], e["rule"]) for e in doc["breakers"]["events"] if e["to_state"] == "reduce_only"}
    # realised volatility of the Lehman week ranks above the 95th percentile of the past year
    assert ("2008-09-17", "market_vol_percentile") in trips
    for off in ([], ["--no-risk"]):  # off by default, and explicitly
        assert main([*base, *off]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["risk"]["enabled"] is False and doc["driver"] == "batch"


def test_config_params_presets_and_structured_values_reach_the_request(tmp_path: Path) -> None:
    from trading_core.cli.backtest import _config_params
    from trading_core.config import TradingConfig
    from trading_core.errors import InvalidInput

    cfg = TradingConfig.model_validate({
        "market_data": {"universes": [{"name": "eq", "asset_class": "equity", "venue": "yahoo", "timeframe": "1d",
                                       "symbols": ["^GSPC"], "start": "2000-01-01"}]},
        "strategies": {"regime_rotation": {"params": {"exit_on_switch": False}, "presets": {
            "trend_only": {"mapping": {"trending_up": ["ma_crossover"], "high_vol_stress": []}}}}},
    })
    params = _config_params("regime_rotation", {"preset": "trend_only"}, cfg)
    assert json.loads(str(params["mapping"])) == {"trending_up": ["ma_crossover"], "high_vol_stress": []}
    assert params["exit_on_switch"] == 0
    from trading_core.strategies import get_strategy

    get_strategy("regime_rotation", params)  # the request's params build the strategy
    with pytest.raises(InvalidInput, match="no preset 'nope'"):
        _config_params("regime_rotation", {"preset": "nope"}, cfg)


def test_cli_risk_config_file_replaces_the_section(with_vix: Any, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from trading_core.cli import main

    monkeypatch.setenv("TRADING_WAREHOUSE", str(Path(with_vix.path)))
    rc = tmp_path / "risk.yaml"
    rc.write_text("risk:\n  market_filter:\n    vix_threshold: 80\n  breakers:\n    market:\n"
                  "      vix_reduce: 90\n      vol_percentile_reduce: 1.0\n")
    args = ["backtest", "--strategy", "on_dates", "--param", "entries=2008-10-10", "--symbol", "^GSPC",
            "--venue", "yahoo", "--timeframe", "1d", "--start", "2008-01-01", "--end", "2008-12-31", "--json",
            "--no-save", "--risk-config", str(rc)]
    assert main(args) == 0
    doc = json.loads(capsys.readouterr().out)
    # VIX ~64 on 2008-10-10 is below 80: the entry is allowed and bought at the next open
    assert "market_filter" not in doc["risk"]["counts"] and doc["risk"]["counts"]["none"] >= 1
    assert doc["fills"][0]["side"] == "buy" and doc["fills"][0]["ts"].startswith("2008-10-13")
    rc.write_text("risk:\n  market_filter:\n    vix_treshold: 80\n")
    assert main(args) == 2
    assert "vix_treshold" in capsys.readouterr().err
