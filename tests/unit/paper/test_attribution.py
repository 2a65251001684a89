"""Backtest-vs-paper attribution: timing, price, partial, missed and extra fills, fees."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from paper_support import PaperEnv, btc_request

from trading_core.paper.attribution import FillRow, attribute, attribute_session


def f(bar: int, side: str, qty: float, price: float, fee: float = 0.0, sym: str = "BTC/USD") -> FillRow:
    return FillRow(bar, sym, side, qty, price, fee)


def test_each_difference_lands_in_its_own_component() -> None:
    backtest = [f(10, "buy", 2, 100), f(20, "sell", 2, 110), f(30, "buy", 1, 105), f(40, "sell", 1, 120, 1.0),
                f(50, "buy", 3, 90)]
    paper = [f(10, "buy", 2, 101),         # same bar, 1 dearer: price +2
             f(22, "sell", 2, 108),        # two bars late, 2 cheaper: timing +4
             f(30, "buy", 0.5, 105),       # half filled: partial 0.5 x 105
             f(40, "sell", 1, 120, 1.5),   # fee +0.5
             f(70, "sell", 1, 95)]         # nothing like it in the backtest: extra; bar 50 buy is missed
    a = attribute(paper, backtest, window=5)
    assert (a.matched, a.same_bar, a.timing_fills, a.partial_fills, a.missed_fills, a.extra_fills) == (4, 3, 1, 1, 1, 1)
    assert a.price == pytest.approx(2.0) and a.timing == pytest.approx(4.0) and a.fees == pytest.approx(0.5)
    assert a.partial == pytest.approx(52.5) and a.missed == pytest.approx(270) and a.extra == pytest.approx(95)
    assert a.explained == pytest.approx(6.5)


def test_a_session_against_its_own_backtest_differs_by_nothing(tmp_path: Path,
                                                             tmp_path_factory: pytest.TempPathFactory) -> None:
    env = PaperEnv(tmp_path, tmp_path_factory.getbasetemp())
    sid = env.session(btc_request(start=datetime(2019, 2, 1, tzinfo=UTC), end=datetime(2019, 3, 1, tzinfo=UTC)))
    env.run(sid)
    a = attribute_session(sid, store=env.store, ledger=env.ledger, warehouse=env.warehouse)
    assert a.matched > 5 and a.explained == 0 and a.missed_fills == a.extra_fills == 0
    assert a.equity_gap == pytest.approx(0.0, abs=1e-6)


def test_slippage_shows_as_price_against_an_ideal_baseline(tmp_path: Path,
                                                           tmp_path_factory: pytest.TempPathFactory) -> None:
    env = PaperEnv(tmp_path, tmp_path_factory.getbasetemp())
    req = btc_request(start=datetime(2019, 2, 1, tzinfo=UTC), end=datetime(2019, 3, 1, tzinfo=UTC),
                      slippage="fixed:20")
    sid = env.session(req)
    env.run(sid)
    a = attribute_session(sid, store=env.store, ledger=env.ledger, warehouse=env.warehouse,
                          baseline={"slippage": "none"})
    assert a.same_bar == a.matched > 5 and a.timing == 0
    assert a.price > 0  # 20 bps worse on every fill
    assert a.equity_gap is not None and a.equity_gap > 0
