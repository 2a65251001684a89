"""``trading backtest --symbol coinbase:BTC/USD,yahoo:^GSPC``: one portfolio across a 24/7 venue and
a weekday venue, on real sample bars, stepped on the union of their bars. BTC trades on a
Saturday, ^GSPC never fills on a weekend; the bar count is the union; the ``--symbol`` parser's
errors are one line; ``venues`` is validated by the request."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from bt_helpers import build_warehouse, register_on_dates
from pydantic import ValidationError

from trading_core.backtest import BacktestRequest
from trading_core.backtest.runner import last_traded_close, parse_universe
from trading_core.cli import main
from trading_core.config import PROJECT_ROOT
from trading_core.errors import InvalidInput

MIXED = ["backtest", "--symbol", "coinbase:BTC/USD,yahoo:^GSPC", "--timeframe", "1d"]


@pytest.fixture(scope="module")
def btc_1d() -> pl.DataFrame:
    from trading_core.market_data.providers.sample import SampleProvider

    return SampleProvider(PROJECT_ROOT / ".cache" / "sample-packages").fetch_ohlcv(
        "coinbase", "BTC/USD", "1d", datetime(2014, 1, 1, tzinfo=UTC), datetime(2020, 1, 1, tzinfo=UTC))


@pytest.fixture(scope="module")
def warehouse_path(tmp_path_factory: pytest.TempPathFactory, sp500: pl.DataFrame, vix: pl.DataFrame,
                   btc_1d: pl.DataFrame) -> Path:
    path = tmp_path_factory.mktemp("mixed") / "warehouse.duckdb"
    build_warehouse(path, sp500)
    build_warehouse(path, vix, symbol="^VIX")
    build_warehouse(path, btc_1d, venue="coinbase", symbol="BTC/USD")
    return path


@pytest.fixture
def use_warehouse(warehouse_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRADING_WAREHOUSE", str(warehouse_path))
    register_on_dates(monkeypatch)
    return warehouse_path


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    rc = main([*MIXED, *args, "--json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    return json.loads(out)


def _weekday(iso: str) -> int:
    return datetime.fromisoformat(iso).weekday()  # 5, 6 = Saturday, Sunday


def _union(sp500: pl.DataFrame, btc: pl.DataFrame, start: datetime, end: datetime) -> int:
    ts = pl.concat([sp500.select("ts"), btc.select("ts")]).unique()
    return ts.filter((pl.col("ts") >= start) & (pl.col("ts") <= end)).height


def test_btc_trades_on_a_weekend_and_gspc_only_on_weekdays(capsys: pytest.CaptureFixture[str],
                                                           use_warehouse: Path) -> None:
    # entries: Saturday 2017-03-04 (only BTC is open) and Monday 03-06 (^GSPC; BTC already long);
    # exits: Sunday 03-12 (only BTC) and Monday 03-20 (^GSPC). ^GSPC's weekend flags cannot exist.
    doc = _json(capsys, "--strategy", "on_dates", "--param", "entries=2017-03-04,2017-03-06",
                "--param", "exits=2017-03-12,2017-03-20", "--start", "2017-03-01", "--end", "2017-03-31",
                "--fill", "close", "--sizing", "fixed", "--size", "1", "--no-risk")
    got = [(f["ts"][:10], f["symbol"], f["side"]) for f in doc["fills"]]
    assert got == [("2017-03-04", "BTC/USD", "buy"), ("2017-03-06", "^GSPC", "buy"),
                   ("2017-03-12", "BTC/USD", "sell"), ("2017-03-20", "^GSPC", "sell")]
    assert doc["bars"] == 31  # every day of March: the union (BTC's calendar)
    assert doc["request"]["venues"] == ["coinbase", "yahoo"] and doc["calendar"] == "crypto"


def test_a_real_strategy_over_two_years_steps_on_the_union(capsys: pytest.CaptureFixture[str], use_warehouse: Path,
                                                           sp500: pl.DataFrame, btc_1d: pl.DataFrame) -> None:
    doc = _json(capsys, "--strategy", "ma_crossover", "--start", "2016-01-01", "--end", "2018-12-31")
    start, end = datetime(2016, 1, 1, tzinfo=UTC), datetime(2018, 12, 31, tzinfo=UTC)
    assert doc["bars"] == _union(sp500, btc_1d, start, end) == 1096
    fills = doc["fills"]
    assert {f["symbol"] for f in fills} == {"BTC/USD", "^GSPC"}
    assert all(_weekday(f["ts"]) < 5 for f in fills if f["symbol"] == "^GSPC")
    assert any(_weekday(f["ts"]) >= 5 for f in fills if f["symbol"] == "BTC/USD")
    m = doc["metrics"]
    assert m["periods_per_year"] == 365.0 and m["final_equity"] > 0


def test_the_symbol_order_does_not_change_the_calendar(capsys: pytest.CaptureFixture[str],
                                                       use_warehouse: Path) -> None:
    args = ("--strategy", "ma_crossover", "--start", "2017-01-01", "--end", "2018-12-31")
    a = _json(capsys, *args)
    rc = main(["backtest", "--symbol", "yahoo:^GSPC,coinbase:BTC/USD", "--timeframe", "1d", *args, "--json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    b = json.loads(out)
    assert a["bars"] == b["bars"] and a["calendar"] == b["calendar"] == "crypto"
    assert a["metrics"]["cagr"] == pytest.approx(b["metrics"]["cagr"], rel=1e-9)


def test_the_text_report_names_both_symbols_and_the_union_bar_count(capsys: pytest.CaptureFixture[str],
                                                                    use_warehouse: Path) -> None:
    rc = main([*MIXED, "--strategy", "ma_crossover", "--start", "2017-01-01", "--end", "2018-12-31"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    head = out.strip().splitlines()[0]
    assert "BTC/USD,^GSPC" in head and "730 bars" in head and "crypto calendar" in head


@pytest.mark.parametrize(("symbol", "extra", "needle"), [
    ("BTC/USD,^GSPC", ["--timeframe", "1d"], "no venue (give --venue or write venue:SYMBOL)"),
    ("coinbase:BTC/USD@1h,yahoo:^GSPC@1d", [], "mixed timeframes: BTC/USD 1h and ^GSPC 1d"),
    ("coinbase:BTC/USD@1h,yahoo:^GSPC", ["--timeframe", "1d"], "mixed timeframes: BTC/USD 1h and ^GSPC 1d"),
    ("coinbase:BTC/USD,coinbase:BTC/USD", ["--timeframe", "1d"], "named twice"),
    ("coinbase:BTC/USD,yahoo:^NOPE", ["--timeframe", "1d"], "bar(s) of ^NOPE on yahoo"),
])
def test_bad_mixed_symbol_lists_are_one_line_errors(capsys: pytest.CaptureFixture[str], use_warehouse: Path,
                                                    symbol: str, extra: list[str], needle: str) -> None:
    rc = main(["backtest", "--symbol", symbol, "--strategy", "ma_crossover", "--start", "2017-01-01",
               "--end", "2017-06-01", *extra])
    _, err = capsys.readouterr()
    assert rc == 2 and needle in err and err.count("\n") == 1, err


def test_parse_universe_reads_venues_and_timeframes() -> None:
    assert parse_universe("coinbase:BTC/USD,yahoo:^GSPC", None, "1d") == (
        ["BTC/USD", "^GSPC"], ["coinbase", "yahoo"], "1d")
    assert parse_universe("^GSPC,^IXIC", "yahoo", None) == (["^GSPC", "^IXIC"], ["yahoo", "yahoo"], None)
    assert parse_universe("coinbase:BTC/USD@1d,yahoo:^GSPC", None, None)[2] == "1d"
    # a perpetual's settlement suffix is part of the symbol, not a venue
    assert parse_universe("BTC/USDT:USDT", "binance", "1h") == (["BTC/USDT:USDT"], ["binance"], "1h")
    with pytest.raises(InvalidInput, match="no venue"):
        parse_universe("coinbase:BTC/USD,^GSPC", None, "1d")
    with pytest.raises(InvalidInput, match="mixed timeframes"):
        parse_universe("coinbase:BTC/USD@4h,yahoo:^GSPC", None, "1d")


def _req(**kw: Any) -> BacktestRequest:
    base: dict[str, Any] = dict(strategy="ma_crossover", symbol="BTC/USD", venue="coinbase",
                                symbols=("BTC/USD", "^GSPC"), venues=("coinbase", "yahoo"), timeframe="1d",
                                start=datetime(2017, 1, 1, tzinfo=UTC), end=datetime(2018, 1, 1, tzinfo=UTC))
    base.update(kw)
    return BacktestRequest(**base)


def test_request_venues_are_one_per_symbol_led_by_the_request_venue() -> None:
    r = _req()
    assert (r.venue_of("^GSPC"), r.calendar_of("^GSPC"), r.calendar_of("BTC/USD")) == ("yahoo", "equity", "crypto")
    assert r.resolved_calendar() == "crypto"
    assert _req(symbol="^GSPC", venue="yahoo", symbols=("^GSPC", "BTC/USD"),
                venues=("yahoo", "coinbase")).resolved_calendar() == "crypto"
    with pytest.raises(ValidationError, match="venues names 1 venue"):
        _req(venues=("coinbase",))
    with pytest.raises(ValidationError, match="venues must start with venue 'coinbase'"):
        _req(venues=("yahoo", "coinbase"))
    one = _req(symbols=(), venues=())
    assert one.venue_of("BTC/USD") == "coinbase" and one.universe == ("BTC/USD",)


def test_a_run_ending_on_a_weekend_marks_open_equity_trades_at_their_last_close(
        capsys: pytest.CaptureFixture[str], use_warehouse: Path) -> None:
    # 2018-12-30 is a Sunday: ^GSPC's last bar is Friday 12-28; an open ^GSPC trade is marked there
    doc = _json(capsys, "--strategy", "buy_and_hold", "--start", "2017-01-01", "--end", "2018-12-30",
                "--fee-bps", "0")
    m = doc["metrics"]
    trades = {t["symbol"]: t for t in doc["trades"]}
    assert {t["status"] for t in trades.values()} == {"open"} and set(trades) == {"BTC/USD", "^GSPC"}
    assert sum(t["pnl"] for t in trades.values()) == pytest.approx(m["final_equity"] - 100_000, rel=1e-9)
    assert np.isfinite(m["benchmark_return"])


def test_last_traded_close_fills_closed_bars_forward_only() -> None:
    nan = np.nan
    c = np.array([[1.0, nan], [2.0, 10.0], [3.0, nan], [4.0, nan], [5.0, 11.0]])
    np.testing.assert_array_equal(last_traded_close(c), [[1, nan], [2, 10], [3, 10], [4, 10], [5, 11]])
    full = np.ones((3, 2))
    assert last_traded_close(full) is not None and np.array_equal(last_traded_close(full), full)
