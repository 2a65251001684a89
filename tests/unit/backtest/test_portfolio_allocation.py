"""Several symbols in one account: correlation-aware sizing and Markowitz allocation, on real
S&P 500 and Nasdaq Composite daily bars (two indices whose returns correlate ~0.9)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from bt_helpers import build_warehouse

from trading_core.backtest import BacktestRequest, run_backtest
from trading_core.risk import BreakerConfig, MarketFilterConfig, OrderLimits, RiskConfig
from trading_core.risk.sizing import markowitz_weights

# Every rule that could refuse an order is off: these tests look at sizing alone.
SIZING_ONLY = RiskConfig(market_filter=MarketFilterConfig(enabled=False), breakers=BreakerConfig(enabled=False),
                         orders=OrderLimits(max_price_deviation=1.0, max_adv_fraction=1.0))


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory, sp500: pl.DataFrame, nasdaq: pl.DataFrame) -> Any:
    path = tmp_path_factory.mktemp("pair") / "w.duckdb"
    build_warehouse(path, sp500)
    return build_warehouse(path, nasdaq, symbol="^IXIC")


def _req(**kw: Any) -> BacktestRequest:
    base: dict[str, Any] = dict(strategy="ma_crossover", params={"fast": 20, "slow": 100}, symbol="^GSPC",
                                symbols=("^GSPC", "^IXIC"), venue="yahoo", timeframe="1d",
                                start=datetime(2003, 1, 1, tzinfo=UTC), end=datetime(2013, 1, 1, tzinfo=UTC),
                                fee_bps=0.0, risk=SIZING_ONLY, persist=False)
    base.update(kw)
    return BacktestRequest(**base)


def test_two_symbols_share_one_account(wh: Any) -> None:
    res = run_backtest(_req(), wh)
    assert res.equity.shape == (res.bars, 1) and len(res.portfolios) == 1
    assert res.portfolios[0].symbol == "^GSPC,^IXIC"
    assert set(res.fills["symbol"].tolist()) == {0, 1}
    assert (res.cash >= -1e-6).all()  # shared cash is never overdrawn
    doc = res.to_dict(include_fills=True)
    assert {f["symbol"] for f in doc["fills"]} == {"^GSPC", "^IXIC"}
    assert {t["symbol"] for t in doc["portfolios"][0]["trades"]} == {"^GSPC", "^IXIC"}


def test_an_entry_correlated_with_a_held_position_is_resized_and_audited(wh: Any) -> None:
    res = run_backtest(_req(), wh, run_id="corr")
    rows = res.risk_rows
    assert rows is not None
    resized = rows.filter(pl.col("decision") == "resized")
    assert resized.height > 0
    for r in resized.iter_rows(named=True):
        scale = r["inputs"]["correlation_scale"]
        assert 0.4 < scale < 1.0  # one index held at about half of equity, correlation ~0.9
        assert r["approved_qty"] == pytest.approx(r["requested_qty"] * scale, rel=1e-9)
    # the engine bought exactly the approved quantity at the next open
    first = resized.row(0, named=True)
    sym = 0 if first["symbol"] == "^GSPC" else 1
    day = first["ts"]
    buys = [f for f in res.fills if int(f["side"]) == 0 and int(f["symbol"]) == sym and
            datetime.fromtimestamp(int(f["ts"]) / 1000, tz=UTC) >= day]
    assert float(buys[0]["qty"]) == pytest.approx(first["approved_qty"], rel=1e-12)


def test_without_correlation_scaling_entries_get_an_equal_share(wh: Any) -> None:
    cfg = SIZING_ONLY.model_copy(update={"sizing": SIZING_ONLY.sizing.model_copy(
        update={"correlation_scaling": False})})
    res = run_backtest(_req(risk=cfg), wh)
    assert res.risk is not None and "resized" not in res.risk["counts"]
    first_buy = res.fills[res.fills["side"] == 0][0]
    bar = int(first_buy["bar"])
    close = run_backtest(_req(risk=cfg), wh)  # deterministic: same run, same numbers
    assert np.array_equal(close.fills, res.fills)
    # all_in with two symbols: half of the equity at the decision close
    s = int(first_buy["symbol"])
    px = float(_closes(wh)[s][bar - 1])
    assert float(first_buy["qty"]) == pytest.approx(res.equity[bar - 1, 0] / 2 / px, rel=1e-12)


def _closes(wh: Any) -> list[np.ndarray]:
    out = []
    for sym in ("^GSPC", "^IXIC"):
        f = wh.read_bars("yahoo", sym, "1d", datetime(2003, 1, 1, tzinfo=UTC), datetime(2013, 1, 1, tzinfo=UTC))
        out.append(f["close"].to_numpy())
    return out


def test_markowitz_trades_to_the_mean_variance_weights_of_the_held_set(wh: Any) -> None:
    res = run_backtest(_req(allocation="markowitz"), wh)
    closes = _closes(wh)
    c = np.column_stack(closes)
    logr = np.vstack([np.full((1, 2), np.nan), np.diff(np.log(c), axis=0)])
    pos = np.asarray(res.position)  # open positions per account
    # find a bar where both indices became held after a rebalance decided at the previous close
    fills = res.fills
    by_bar: dict[int, set[int]] = {}
    for f in fills:
        by_bar.setdefault(int(f["bar"]), set()).add(int(f["symbol"]))
    checked = 0
    for bar in sorted(by_bar):
        if pos[bar, 0] != 2 or by_bar[bar] != {0, 1}:
            continue
        t = bar - 1  # the decision close
        r = logr[max(1, t - 251):t + 1]
        r = r[np.isfinite(r).all(axis=1)]
        w = markowitz_weights(r.mean(axis=0), np.cov(r, rowvar=False), bounds=(0.0, 1.0))
        equity = res.equity[t, 0]
        held = {}
        for f in fills[fills["bar"] <= bar]:
            q = float(f["qty"]) * (1 if int(f["side"]) == 0 else -1)
            held[int(f["symbol"])] = held.get(int(f["symbol"]), 0.0) + q
        for s in (0, 1):
            assert held[s] == pytest.approx(w[s] * equity / c[t, s], rel=1e-9)
        checked += 1
        break
    assert checked == 1, "no rebalance with both indices held in 2003-2012"


def test_markowitz_needs_several_symbols_and_refuses_shorts() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="two or more symbols"):
        _req(symbols=(), allocation="markowitz")
    with pytest.raises(ValidationError, match="long-only"):
        _req(allocation="markowitz", short=True)
    with pytest.raises(ValidationError, match="start with symbol"):
        _req(symbols=("^IXIC", "^GSPC"))


def test_cli_portfolio_run_stores_fills_with_their_symbols(wh: Any, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from trading_core.cli import main

    monkeypatch.setenv("TRADING_WAREHOUSE", str(Path(wh.path)))
    args = ["backtest", "--strategy", "ma_crossover", "--param", "fast=20", "--param", "slow=100",
            "--symbol", "^GSPC,^IXIC", "--venue", "yahoo", "--timeframe", "1d", "--start", "2003-01-01",
            "--end", "2012-12-31", "--allocation", "markowitz", "--no-risk", "--json"]
    assert main(args) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["request"]["symbols"] == ["^GSPC", "^IXIC"] and doc["request"]["allocation"] == "markowitz"
    with wh.connect(read_only=True) as con:
        syms = con.execute("SELECT DISTINCT symbol FROM backtest.fills WHERE run_id = ? ORDER BY 1",
                           [doc["run_id"]]).fetchall()
    assert [s[0] for s in syms] == ["^GSPC", "^IXIC"]
    one = [a if a != "^GSPC,^IXIC" else "^GSPC" for a in args]
    assert main(one) == 2
    assert "two or more symbols" in capsys.readouterr().err
