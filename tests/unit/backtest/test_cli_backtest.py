"""``trading backtest`` in-process on a temporary warehouse of real S&P 500 bars, through the engine."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from bt_helpers import build_warehouse

from trading_core.cli import main

BASE = ["backtest", "--symbol", "^GSPC", "--venue", "yahoo", "--timeframe", "1d",
        "--start", "2000-01-01", "--end", "2018-12-31"]


@pytest.fixture(scope="module")
def warehouse_path(tmp_path_factory: pytest.TempPathFactory, sp500: pl.DataFrame, vix: pl.DataFrame) -> Path:
    # ^VIX is stored too: with --risk the CLI applies the config's risk section, whose VIX market
    # filter fails closed (no entries at all) when the warehouse has no VIX.
    path = tmp_path_factory.mktemp("cli") / "warehouse.duckdb"
    build_warehouse(path, sp500)
    build_warehouse(path, vix, symbol="^VIX")
    return path


@pytest.fixture
def use_warehouse(warehouse_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRADING_WAREHOUSE", str(warehouse_path))
    return warehouse_path


def _run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    rc = main([*BASE, *args, "--json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    return json.loads(out)


def _check_trades_match_fills(doc: dict) -> None:
    """Every fill belongs to exactly one trade; each trade's fees and quantity come from its fills."""
    for pf in doc["portfolios"]:
        p = pf["portfolio"]
        fills = [f for f in doc["fills"] if f["portfolio"] == p]
        trades = [t for t in doc["trades"] if t["portfolio"] == p]
        assert sum(t["n_fills"] for t in trades) == len(fills)
        assert sum(t["fees"] for t in trades) == pytest.approx(sum(f["fee"] for f in fills), rel=1e-9)
        bought = sum(f["qty"] for f in fills if f["side"] == "buy")
        assert sum(t["quantity"] for t in trades if t["side"] == "long") == pytest.approx(bought, rel=1e-9)
        m = pf["metrics"]
        assert m["trades"] == sum(t["status"] == "closed" for t in trades)
        assert m["fees_paid"] == pytest.approx(sum(f["fee"] for f in fills), rel=1e-9, abs=1e-12)
        # The trip PnLs (open ones marked at the last close) add up to the equity change.
        assert sum(t["pnl"] for t in trades) == pytest.approx(m["final_equity"] - 100_000, rel=1e-6, abs=1e-6)


def test_cli_backtest_when_buy_and_hold_json_then_final_equity_is_price_ratio_minus_fees(
    capsys: pytest.CaptureFixture[str], use_warehouse: Path, sp500: pl.DataFrame,
) -> None:
    # Act
    doc = _run_json(capsys, "--strategy", "buy_and_hold", "--fee-bps", "10", "--fill", "close", "--no-risk")

    # Assert
    spx = sp500.filter(pl.col("ts").dt.year() >= 2000)
    m = doc["metrics"]
    for key in ("total_return", "cagr", "volatility", "sharpe", "sortino", "calmar", "max_drawdown",
                "max_drawdown_peak", "max_drawdown_trough", "win_rate", "profit_factor", "exposure",
                "turnover", "fees_paid", "slippage_paid", "alpha", "beta", "excess_return"):
        assert key in m
    assert doc["calendar"] == "equity" and m["periods_per_year"] == 252
    assert doc["bars"] == spx.height
    first, last = spx["close"][0], spx["close"][-1]
    assert m["final_equity"] == pytest.approx(100_000 * last / first / 1.001, rel=1e-6)
    assert m["fees_paid"] == pytest.approx(100_000 * 0.001 / 1.001, rel=1e-6)
    assert m["beta"] == pytest.approx(1.0, abs=1e-6)
    assert len(doc["trades"]) == 1 and doc["trades"][0]["status"] == "open"
    assert len(doc["execution_model_hash"]) == 64
    _check_trades_match_fills(doc)


def test_cli_backtest_when_ma_crossover_grid_json_then_trades_consistent_with_fills(
    capsys: pytest.CaptureFixture[str], use_warehouse: Path,
) -> None:
    doc = _run_json(capsys, "--strategy", "ma_crossover", "--param", "grid=20:100,50:200",
                    "--param", "kind=ema", "--slippage", "fixed:5", "--fee-bps", "5")
    assert [p["params"] for p in doc["portfolios"]] == [
        {"fast": 20, "slow": 100, "kind": "ema"}, {"fast": 50, "slow": 200, "kind": "ema"}]
    for p in doc["portfolios"]:
        assert p["metrics"]["trades"] >= 3
        assert p["metrics"]["win_rate"] is not None
        assert p["metrics"]["slippage_paid"] > 0
    for t in doc["trades"]:
        if t["status"] == "closed":
            assert t["exit_ts"] > t["entry_ts"]
    _check_trades_match_fills(doc)


def test_cli_backtest_when_run_then_stored_with_config_and_hash(
    capsys: pytest.CaptureFixture[str], use_warehouse: Path,
) -> None:
    from trading_core.warehouse import Warehouse

    doc = _run_json(capsys, "--strategy", "ma_crossover", "--param", "fast=20", "--param", "slow=100")
    runs = Warehouse(use_warehouse).query(
        "SELECT execution_model_hash, config FROM backtest.runs WHERE run_id = $r", {"r": doc["run_id"]})
    assert runs["execution_model_hash"][0] == doc["execution_model_hash"]
    assert json.loads(runs["config"][0])["request"]["strategy"] == "ma_crossover"


def test_cli_backtest_when_table_output_then_one_row_per_portfolio(
    capsys: pytest.CaptureFixture[str], use_warehouse: Path,
) -> None:
    rc = main([*BASE, "--strategy", "ma_crossover", "--param", "grid=10:50,20:100", "--no-save"])
    out, _ = capsys.readouterr()
    assert rc == 0
    lines = out.strip().splitlines()
    assert "ma_crossover on ^GSPC" in lines[0]
    assert "sharpe" in lines[1]
    # the risk layer is off by default: header, column names, two portfolios, the driver line
    assert len(lines) == 5 and lines[-1].endswith("not stored") and lines[-1].startswith("driver batch")
    assert not any(line.startswith(("risk decisions: ", "risk layer changed")) for line in lines)
    rc = main([*BASE, "--strategy", "ma_crossover", "--param", "grid=10:50,20:100", "--no-save", "--risk"])
    out, _ = capsys.readouterr()
    assert rc == 0
    lines = out.strip().splitlines()
    assert lines[-1].startswith("driver stepped") and lines[-1].endswith("not stored")
    assert lines[4].startswith("risk decisions: ") and "breaker transitions" in lines[4]


@pytest.mark.parametrize(("args", "fragment"), [
    (["--strategy", "rsi"], "unknown strategy 'rsi'"),
    (["--strategy", "ma_crossover", "--param", "kind=wma"], "param 'kind'='wma'"),
    (["--strategy", "ma_crossover", "--param", "fast"], "expected key=value"),
    (["--strategy", "buy_and_hold", "--cash", "-5"], "--cash '-5': expected a number > 0"),
    (["--strategy", "buy_and_hold", "--cash", "abc"], "--cash 'abc': expected a number"),
    (["--strategy", "buy_and_hold", "--fee-bps", "-1"], "--fee-bps '-1'"),
    (["--strategy", "buy_and_hold", "--size", "0"], "--size '0'"),
    (["--strategy", "buy_and_hold", "--fill", "open"], "--fill 'open': expected one of next_open, close"),
    (["--strategy", "buy_and_hold", "--sizing", "kelly"], "--sizing 'kelly'"),
    (["--strategy", "buy_and_hold", "--slippage", "fixed"], "--slippage"),
    (["--strategy", "buy_and_hold", "--start", "2018-13-01"], "--start '2018-13-01'"),
    (["--strategy", "buy_and_hold", "--end", "1999-01-01"], "must be after --start"),
    (["--strategy", "buy_and_hold", "--symbol", "spx'; drop table x"], "invalid symbol"),
    (["--strategy", "buy_and_hold", "--venue", "Yahoo"], "invalid venue"),
    (["--strategy", "buy_and_hold", "--timeframe", "2d"], "unknown timeframe"),
    (["--strategy", "buy_and_hold", "--symbol", "AAPL"], "ingest them first"),
    ([], "missing required argument(s) --strategy"),
])
def test_cli_backtest_when_bad_argument_then_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], use_warehouse: Path, args: list[str], fragment: str,
) -> None:
    rc = main([*BASE, *args])
    out, err = capsys.readouterr()
    assert rc == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("trading: ")
    assert fragment in err


def test_cli_backtest_when_no_warehouse_then_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRADING_WAREHOUSE", str(tmp_path / "none.duckdb"))
    rc = main([*BASE, "--strategy", "buy_and_hold"])
    _, err = capsys.readouterr()
    assert rc == 2 and "no warehouse at" in err and err.count("\n") == 1
