"""Round trips from literal fill records: open/close, scale-in, partial exits, flips, shorts."""

from __future__ import annotations

import numpy as np
import pytest

from trading_core.backtest import round_trips
from trading_core.engine.enums import FILL_DTYPE

DAY = 86_400_000


def _fills(*rows: tuple) -> np.ndarray:
    """rows: (portfolio, bar, side, qty, price, fee) with side 0 buy / 1 sell."""
    return np.array([(p, 0, bar, bar * DAY, i, side, qty, price, fee, 0.0, 1, 0, 0)
                     for i, (p, bar, side, qty, price, fee) in enumerate(rows)], dtype=FILL_DTYPE)


def test_round_trips_when_buy_then_sell_then_one_closed_long() -> None:
    (t,) = round_trips(_fills((0, 1, 0, 2.0, 100.0, 0.2), (0, 5, 1, 2.0, 110.0, 0.22)))
    assert t.side == "long" and not t.is_open
    assert (t.entry_bar, t.exit_bar) == (1, 5)
    assert t.entry_price == 100.0 and t.exit_price == 110.0 and t.quantity == 2.0
    assert t.fees == pytest.approx(0.42)
    assert t.pnl == pytest.approx(20.0 - 0.42)
    assert t.return_pct == pytest.approx((20.0 - 0.42) / 200.0)


def test_round_trips_when_scale_in_and_partial_exits_then_weighted_prices() -> None:
    trades = round_trips(_fills((0, 1, 0, 1.0, 100.0, 0.0), (0, 2, 0, 3.0, 104.0, 0.0),
                                (0, 3, 1, 2.0, 110.0, 0.0), (0, 4, 1, 2.0, 90.0, 0.0)))
    (t,) = trades
    assert t.entry_price == pytest.approx(103.0) and t.exit_price == pytest.approx(100.0)
    assert t.quantity == 4.0 and t.n_fills == 4
    assert t.pnl == pytest.approx(4 * (100.0 - 103.0))


def test_round_trips_when_fill_crosses_zero_then_flip_splits_fee() -> None:
    a, b = round_trips(_fills((0, 1, 0, 1.0, 100.0, 1.0), (0, 2, 1, 3.0, 110.0, 3.0)),
                       last_close=100.0)
    assert a.side == "long" and not a.is_open and a.pnl == pytest.approx(10.0 - 1.0 - 1.0)
    assert b.side == "short" and b.is_open and b.quantity == 2.0 and b.entry_price == 110.0
    assert b.fees == pytest.approx(2.0)
    assert b.pnl == pytest.approx(2 * (110.0 - 100.0) - 2.0)  # marked at the last close
    assert b.exit_price is None and b.exit_ts is None


def test_round_trips_when_several_portfolios_then_grouped_and_numbered() -> None:
    trades = round_trips(_fills((1, 1, 0, 1.0, 10.0, 0.0), (0, 1, 0, 1.0, 10.0, 0.0),
                                (0, 2, 1, 1.0, 12.0, 0.0), (1, 3, 1, 1.0, 9.0, 0.0)))
    assert [(t.portfolio, t.trade_no, round(t.pnl, 9)) for t in trades] == [(0, 0, 2.0), (1, 1, -1.0)]


def test_round_trips_when_no_fills_then_empty() -> None:
    assert round_trips(np.zeros(0, dtype=FILL_DTYPE)) == []


# ############# Property: trip PnL accounts for every unit of cash ############# #

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0, 1]), st.integers(1, 50), st.integers(50, 150),
                          st.integers(0, 30)), min_size=1, max_size=30),
       st.integers(50, 150))
def test_round_trips_when_random_fills_then_pnl_sum_equals_cash_and_mark_change(rows, mark) -> None:  # type: ignore[no-untyped-def]
    # Arrange: integer quantities/prices keep the arithmetic exact enough to compare tightly.
    fills = _fills(*[(0, i, side, float(q), float(px), fee / 10) for i, (side, q, px, fee) in enumerate(rows)])
    cash_change = sum((-1 if f["side"] == 0 else 1) * f["qty"] * f["price"] - f["fee"] for f in fills)
    position = sum((1 if f["side"] == 0 else -1) * f["qty"] for f in fills)

    # Act
    trades = round_trips(fills, last_close=float(mark))

    # Assert
    assert sum(t.pnl for t in trades) == pytest.approx(cash_change + position * mark, abs=1e-6)
    assert sum(t.n_fills for t in trades) >= len(fills)
    assert sum(t.is_open for t in trades) == (1 if position != 0 else 0)
