"""Backtest metrics sliced by the regime labels stored in ``features.regimes`` (real S&P 500)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl
import pytest
from bt_helpers import build_warehouse

from trading_core.analytics.by_regime import UNLABELLED, metrics_by_regime
from trading_core.backtest import BacktestRequest, run_backtest
from trading_core.features.pipeline import update_features


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory, sp500: pl.DataFrame) -> Any:
    wh = build_warehouse(tmp_path_factory.mktemp("regimes") / "w.duckdb", sp500)
    update_features(wh, "yahoo", "^GSPC", "1d", calendar="equity")
    return wh


def _req(**kw: Any) -> BacktestRequest:
    return BacktestRequest(strategy="buy_and_hold", symbol="^GSPC", venue="yahoo", timeframe="1d",
                           start=datetime(2006, 1, 1, tzinfo=UTC), end=datetime(2010, 1, 1, tzinfo=UTC),
                           fee_bps=0.0, fill="close", **kw)


def test_buy_and_hold_earns_the_index_return_in_every_regime(labelled: Any) -> None:
    res = run_backtest(_req(), labelled, run_id="by-regime")
    assert res.regimes["available"] and res.regimes["labelled_bars"] == res.bars
    sliced = res.portfolios[0].by_regime
    assert {"high_vol_stress", "trending_up"} <= set(sliced)
    assert sum(v["bars"] for v in sliced.values()) == res.bars - 1
    for v in sliced.values():  # fully invested from the first close on: the index's own return
        assert v["total_return"] == pytest.approx(v["benchmark_return"], rel=1e-9, abs=1e-12)
        assert v["exposure"] == 1.0
    # autumn 2008 is labelled stress: the most volatile slice by far
    vols = {k: v["volatility"] for k, v in sliced.items() if k != UNLABELLED}
    assert max(vols, key=vols.__getitem__) == "high_vol_stress" and vols["high_vol_stress"] > 0.3
    assert sliced["trending_up"]["total_return"] > 0
    # compounding the slices gives the whole run
    whole = np.prod([1 + v["total_return"] for v in sliced.values()]) - 1
    assert whole == pytest.approx(res.portfolios[0].metrics.total_return, rel=1e-9)
    with labelled.connect(read_only=True) as con:
        stored = con.execute("SELECT metrics FROM backtest.portfolios WHERE run_id = 'by-regime'").fetchone()[0]
    assert set(json.loads(stored)["by_regime"]) == set(sliced)


def test_without_labels_the_run_says_how_to_get_them(tmp_path: Any, sp500: pl.DataFrame) -> None:
    wh = build_warehouse(tmp_path / "bare.duckdb", sp500)
    res = run_backtest(_req(persist=False), wh)
    assert res.portfolios[0].by_regime == {}
    assert not res.regimes["available"] and "materialise the feature assets" in res.regimes["note"]


def test_unlabelled_bars_are_counted_apart() -> None:
    eq = np.array([100.0, 110.0, 99.0, 99.0])
    out = metrics_by_regime(eq, [None, None, "ranging", "ranging"], timeframe="1d", calendar="equity")
    assert out[UNLABELLED]["bars"] == 1 and out[UNLABELLED]["total_return"] == pytest.approx(0.1)
    assert out["ranging"]["bars"] == 2 and out["ranging"]["total_return"] == pytest.approx(-0.1)
    assert out["ranging"]["exposure"] is None


def test_mismatched_inputs_are_refused_with_their_lengths() -> None:
    eq = np.array([100.0, 101.0, 102.0])
    with pytest.raises(ValueError, match="3 equity values but 2 labels"):
        metrics_by_regime(eq, ["ranging", "ranging"], timeframe="1d", calendar="equity")
    with pytest.raises(ValueError, match="1 benchmark returns for 2 bar returns"):
        metrics_by_regime(eq, ["ranging"] * 3, timeframe="1d", calendar="equity", benchmark_returns=np.zeros(1))
