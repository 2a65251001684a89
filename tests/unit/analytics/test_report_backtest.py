"""The HTML report of a stored backtest on the real sample data: valid HTML, its metrics, trades,
regimes, benchmark and attribution, and hostile text escaped."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from paper_support import gspc_request, sample_warehouse
from report_html_checks import facts, parse_report, table_with_header

from trading_core.analytics.report import fmt, render_report, write_report
from trading_core.analytics.report_data import backtest_report_data
from trading_core.backtest import run_backtest
from trading_core.errors import InvalidInput
from trading_core.warehouse import Warehouse
from trading_core.warehouse.backtests import BacktestRecord, write_backtest


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[Warehouse, str]:
    """^GSPC 2005-2011 with regime labels, ma_crossover 20/50 persisted like `trading backtest` does."""
    from trading_core.features.pipeline import update_features

    root = tmp_path_factory.mktemp("report")
    wh = sample_warehouse(root / "warehouse.duckdb", root)
    update_features(wh, "yahoo", "^GSPC", "1d", calendar="equity")
    res = run_backtest(gspc_request(persist=True, risk=None), wh, run_id="bt-report-1")
    return wh, res.run_id


def test_the_report_of_a_stored_backtest_is_valid_html_with_its_metrics(stored: tuple[Warehouse, str]) -> None:
    wh, run_id = stored
    data = backtest_report_data(wh, run_id)
    page = render_report(data, inline_js=False)
    p = parse_report(page)
    assert p.title == f"Backtest {run_id}"
    run = wh.query("SELECT metrics FROM backtest.runs WHERE run_id = ?", [run_id])
    stored_metrics = json.loads(run["metrics"][0])
    kv = facts(p)
    assert kv["strategy"] == "ma_crossover" and kv["symbols"] == "^GSPC"
    assert kv["total_return"] == f"{stored_metrics['total_return'] * 100:.2f}%"
    assert kv["max_drawdown"] == f"{stored_metrics['max_drawdown'] * 100:.2f}%"
    assert kv["trades"] == str(stored_metrics["trades"])
    for section in ("Metrics", "Equity and drawdown", "Monthly returns", "Regime breakdown", "Attribution",
                    "By strategy", "By asset", "By period", "Trades"):
        assert section in p.headings


def test_every_stored_trade_is_a_row_of_the_trade_list(stored: tuple[Warehouse, str]) -> None:
    wh, run_id = stored
    trades = wh.query("SELECT trade_no, pnl FROM backtest.trades WHERE run_id = ? AND portfolio = 0 "
                      "ORDER BY trade_no", [run_id])
    assert trades.height > 5
    p = parse_report(render_report(backtest_report_data(wh, run_id), inline_js=False))
    rows = table_with_header(p, "trade_no")
    assert [r[0] for r in rows[1:]] == [str(n) for n in trades["trade_no"].to_list()]
    pnl_col = rows[0].index("pnl")
    assert [r[pnl_col] for r in rows[1:]] == [fmt(v, "pnl") for v in trades["pnl"].to_list()]


def test_benchmark_is_buy_and_hold_of_the_same_bars(stored: tuple[Warehouse, str]) -> None:
    wh, run_id = stored
    data = backtest_report_data(wh, run_id)
    eq = wh.query("SELECT ts FROM backtest.equity WHERE run_id = ? AND portfolio = 0 ORDER BY ts", [run_id])
    bars = wh.query("SELECT ts, close FROM market.bars WHERE symbol = '^GSPC' AND ts >= ? AND ts <= ? ORDER BY ts",
                    [eq["ts"][0], eq["ts"][-1]])
    expected = bars["close"][-1] / bars["close"][0] - 1.0
    assert data.benchmark is not None
    assert data.metrics["benchmark_return"] == pytest.approx(expected, rel=1e-9)
    assert data.benchmark[0] == pytest.approx(data.equity[0])
    p = parse_report(render_report(data, inline_js=False))
    bench = table_with_header(p, "metric")
    row = next(r for r in bench if r[0] == "total_return")
    assert row[2] == f"{expected * 100:.2f}%"


def test_regimes_months_and_years_cover_the_run(stored: tuple[Warehouse, str]) -> None:
    wh, run_id = stored
    data = backtest_report_data(wh, run_id)
    assert len(data.by_regime) >= 2  # labels stored by `update_features` before the run
    assert sum(v["bars"] for v in data.by_regime.values()) == data.equity.size - 1
    monthly = data.monthly()
    assert monthly.height == 7 * 12  # 2005-01 .. 2011-12
    compounded = float((monthly["return"] + 1.0).product()) - 1.0
    assert compounded == pytest.approx(data.equity[-1] / data.equity[0] - 1.0, rel=1e-9)
    years = data.periods()
    assert years["year"].to_list() == list(range(2005, 2012))
    assert float(years["pnl"].sum()) == pytest.approx(float(data.equity[-1] - data.equity[0]))
    assets = data.assets()
    assert assets["symbol"].to_list() == ["^GSPC"]
    assert float(assets["pnl"][0]) == pytest.approx(float(data.trades["pnl"].sum()))


def test_hostile_text_is_escaped(tmp_path: Path, stored: tuple[Warehouse, str]) -> None:
    wh, _ = stored
    hostile = '<script>alert("x")</script>'
    eq = pl.DataFrame({"portfolio": [0, 0, 0], "ts": [datetime(2010, 1, d, tzinfo=UTC) for d in (4, 5, 6)],
                       "equity": [100.0, 101.0, 99.0], "cash": [100.0] * 3, "position": [0.0] * 3})
    record = BacktestRecord(
        run_id="bt-hostile", created_at=datetime(2026, 1, 1, tzinfo=UTC), strategy=hostile,
        params={"note": '<img src=x onerror="alert(1)">'}, venue="yahoo", symbol="^GSPC", timeframe="1d",
        start_ts=datetime(2010, 1, 4, tzinfo=UTC), end_ts=datetime(2010, 1, 7, tzinfo=UTC),
        config={"calendar": "equity"}, execution_model_hash="h" * 16,
        metrics={"total_return": -0.01, "max_drawdown": -0.02, "final_equity": 99.0, "trades": 0},
        portfolios=[{"portfolio": 0, "symbol": "^GSPC", "params": {"x": hostile},
                     "metrics": {"final_equity": 99.0, "total_return": -0.01, "max_drawdown": -0.02, "trades": 0}}],
        equity=eq)
    copy = Warehouse(tmp_path / "w.duckdb")
    copy.path.write_bytes(wh.path.read_bytes())
    with copy.connect() as con:
        write_backtest(con, record)
    page = render_report(backtest_report_data(copy, "bt-hostile"))
    assert hostile not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    p = parse_report(page)
    assert p.scripts == 4  # plotly.js once, three figures: no script came from the data
    assert facts(p)["strategy"] == hostile  # shown as typed


def test_an_unknown_run_is_one_clear_error(stored: tuple[Warehouse, str]) -> None:
    wh, run_id = stored
    with pytest.raises(InvalidInput, match=r"no backtest run 'nope'.*recent runs: .*bt-report-1"):
        backtest_report_data(wh, "nope")


def test_the_written_file_is_self_contained(tmp_path: Path, stored: tuple[Warehouse, str]) -> None:
    wh, run_id = stored
    out = write_report(render_report(backtest_report_data(wh, run_id)), tmp_path / "r" / "bt.html")
    page = out.read_text(encoding="utf-8")
    assert "<script src" not in page and 'src="http' not in page  # nothing loaded from a network
    assert page.count("Plotly.newPlot") == 3
    assert len(page) > 3_000_000  # plotly.js inlined, once
    assert page.count("/*! For license information") <= 1
