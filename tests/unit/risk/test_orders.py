"""Pre-trade order checks: each rule by a hand-made scenario; nothing refused reaches the engine."""

from __future__ import annotations

import numpy as np
import pytest
from risk_helpers import RecordingEngine, pass_to_engine

from trading_core.engine import ORDER_DTYPE, Action, OrderType, SizeMode
from trading_core.risk import (
    OrderLimits,
    RiskReason,
    TradingState,
    verify_order,
    verify_order_records,
    verify_orders,
)

LAST = np.array([100.0, 20.0])  # symbol 0 at 100, symbol 1 at 20
ADV = np.array([10_000.0, 50_000.0])  # 10 % ADV = 1 000 and 5 000 units
BUY, SELL = 0, 1


def _one(qty: float = 10.0, price: float = 100.0, symbol: int = 0, side: int = BUY, **kw: object) -> np.ndarray:
    return verify_orders(np.array([symbol]), np.array([side]), np.array([qty]), np.array([price]),
                         last_price=LAST, adv=ADV, **kw).reason


def test_order_priced_11pct_from_last_is_rejected_with_price_deviation(engine: RecordingEngine) -> None:
    # Arrange
    orders = np.array([111.0])
    # Act
    res = verify_orders(np.array([0]), np.array([BUY]), np.array([10.0]), orders, last_price=LAST, adv=ADV)
    pass_to_engine(orders, res.allowed, engine)
    # Assert
    assert res.reason.tolist() == [RiskReason.PRICE_DEVIATION]
    assert res.names() == ["price_deviation"] and res.decisions() == ["rejected"]
    assert engine.received == []


def test_order_priced_11pct_below_last_is_rejected_with_price_deviation() -> None:
    assert _one(price=89.0).tolist() == [RiskReason.PRICE_DEVIATION]


def test_order_priced_exactly_10pct_from_last_is_allowed(engine: RecordingEngine) -> None:
    orders = np.array([110.0, 90.0])
    res = verify_orders(np.array([0, 0]), np.array([BUY, SELL]), np.array([10.0, 10.0]), orders,
                        last_price=LAST, adv=ADV, position=np.array([0.0, 50.0]))
    pass_to_engine(orders, res.allowed, engine)
    assert res.reason.tolist() == [RiskReason.NONE, RiskReason.NONE]
    assert engine.received == [110.0, 90.0]


def test_price_deviation_limit_is_configurable() -> None:
    assert _one(price=104.0, limits=OrderLimits(max_price_deviation=0.03)).tolist() == [RiskReason.PRICE_DEVIATION]
    assert _one(price=104.0, limits=OrderLimits(max_price_deviation=0.05)).tolist() == [RiskReason.NONE]


def test_order_above_10pct_of_adv_is_rejected_with_adv_exceeded(engine: RecordingEngine) -> None:
    qty = np.array([1_001.0])
    res = verify_orders(np.array([0]), np.array([BUY]), qty, np.array([100.0]), last_price=LAST, adv=ADV)
    pass_to_engine(qty, res.allowed, engine)
    assert res.reason.tolist() == [RiskReason.ADV_EXCEEDED]
    assert engine.received == []


def test_order_at_exactly_10pct_of_adv_is_allowed() -> None:
    assert _one(qty=1_000.0).tolist() == [RiskReason.NONE]


def test_adv_fraction_is_configurable() -> None:
    assert _one(qty=600.0, limits=OrderLimits(max_adv_fraction=0.05)).tolist() == [RiskReason.ADV_EXCEEDED]


def test_unknown_adv_skips_the_size_check_by_default_and_rejects_when_required() -> None:
    adv = np.array([np.nan, 0.0])
    r = verify_orders(np.array([0, 1]), np.array([BUY, BUY]), np.array([1e9, 1e9]), np.array([100.0, 20.0]),
                      last_price=LAST, adv=adv)
    assert r.reason.tolist() == [RiskReason.NONE, RiskReason.NONE]
    r = verify_orders(np.array([0, 1]), np.array([BUY, BUY]), np.array([1.0, 1.0]), np.array([100.0, 20.0]),
                      last_price=LAST, adv=adv, limits=OrderLimits(require_volume_history=True))
    assert r.reason.tolist() == [RiskReason.NO_VOLUME_HISTORY] * 2


@pytest.mark.parametrize("qty", [0.0, -5.0, np.nan, np.inf])
def test_non_positive_or_nan_quantity_is_rejected_with_invalid_quantity(qty: float, engine: RecordingEngine) -> None:
    q = np.array([qty])
    res = verify_orders(np.array([0]), np.array([BUY]), q, np.array([100.0]), last_price=LAST, adv=ADV)
    pass_to_engine(q, res.allowed, engine)
    assert res.reason.tolist() == [RiskReason.INVALID_QUANTITY]
    assert engine.received == []


@pytest.mark.parametrize("price", [0.0, -1.0, np.nan, -np.inf])
def test_non_positive_or_nan_price_is_rejected_with_invalid_price(price: float) -> None:
    assert _one(price=price).tolist() == [RiskReason.INVALID_PRICE]


@pytest.mark.parametrize("symbol", [-1, 2, 99])
def test_unknown_symbol_is_rejected_with_unknown_symbol(symbol: int) -> None:
    assert _one(symbol=symbol).tolist() == [RiskReason.UNKNOWN_SYMBOL]


def test_symbol_without_a_last_price_is_rejected_as_unknown() -> None:
    r = verify_orders(np.array([0]), np.array([BUY]), np.array([1.0]), np.array([100.0]),
                      last_price=np.array([np.nan]), adv=np.array([1e6]))
    assert r.reason.tolist() == [RiskReason.UNKNOWN_SYMBOL]


def test_halted_state_denies_even_a_reducing_order_with_trading_halted(engine: RecordingEngine) -> None:
    q = np.array([10.0])
    res = verify_orders(np.array([0]), np.array([SELL]), q, np.array([100.0]), last_price=LAST, adv=ADV,
                        position=50.0, state=TradingState.HALTED)
    pass_to_engine(q, res.allowed, engine)
    assert res.reason.tolist() == [RiskReason.TRADING_HALTED] and res.decisions() == ["halted"]
    assert engine.received == []


def test_reduce_only_state_denies_an_entry_and_allows_a_reducing_exit(engine: RecordingEngine) -> None:
    # Arrange: long 50 units; a buy adds, a sell of 30 reduces, a sell of 80 would flip short
    orders = np.array([0, 1, 2])
    # Act
    res = verify_orders(np.zeros(3, np.int64), np.array([BUY, SELL, SELL]), np.array([10.0, 30.0, 80.0]),
                        np.full(3, 100.0), last_price=LAST, adv=ADV, position=50.0,
                        state=TradingState.REDUCE_ONLY)
    pass_to_engine(orders, res.allowed, engine)
    # Assert
    assert res.reason.tolist() == [RiskReason.REDUCE_ONLY, RiskReason.NONE, RiskReason.REDUCE_ONLY]
    assert engine.received == [1]


def test_paused_entries_deny_new_positions_but_let_exits_through() -> None:
    r = verify_orders(np.array([0, 0]), np.array([BUY, BUY]), np.array([10.0, 10.0]), np.full(2, 100.0),
                      last_price=LAST, adv=ADV, position=np.array([0.0, -20.0]), entries_paused=True)
    assert r.reason.tolist() == [RiskReason.MARKET_FILTER, RiskReason.NONE]


def test_checks_run_in_documented_order_first_failure_wins() -> None:
    # invalid quantity beats price deviation; halted beats price deviation
    assert _one(qty=-1.0, price=500.0).tolist() == [RiskReason.INVALID_QUANTITY]
    assert _one(price=500.0, state=TradingState.HALTED).tolist() == [RiskReason.TRADING_HALTED]


def test_scalar_path_gives_the_same_reasons_as_the_vectorised_path() -> None:
    rng = np.random.default_rng(7)
    n = 400
    sym = rng.integers(-1, 3, n)
    side = rng.integers(0, 2, n)
    qty = rng.choice([-1.0, 0.0, 5.0, 900.0, 1200.0, 6000.0, np.nan], n)
    price = rng.choice([0.0, 18.0, 20.0, 23.0, 95.0, 100.0, 112.0, np.nan], n)
    pos = rng.choice([0.0, 10.0, -10.0, 2000.0], n)
    state = rng.integers(0, 3, n)
    paused = rng.integers(0, 2, n).astype(bool)
    vec = verify_orders(sym, side, qty, price, last_price=LAST, adv=ADV, position=pos, state=state,
                        entries_paused=paused).reason
    one = [verify_order(int(sym[i]), int(side[i]), qty[i], price[i], last_price=LAST, adv=ADV, position=pos[i],
                        state=int(state[i]), entries_paused=bool(paused[i])).reason for i in range(n)]
    assert vec.tolist() == one
    assert len(set(one)) >= 7  # the scenario mix really exercises most rules


def test_scalar_verify_order_reports_name_and_decision() -> None:
    c = verify_order(0, BUY, 10.0, 111.0, last_price=LAST, adv=ADV)
    assert (c.allowed, c.reason_name, c.decision) == (False, "price_deviation", "rejected")


def _records(n: int) -> np.ndarray:
    o = np.zeros(n, dtype=ORDER_DTYPE)
    o["action"] = Action.NEW
    o["size_mode"] = SizeMode.QTY
    o["type"] = OrderType.MARKET
    return o


def test_engine_order_records_use_limit_stop_or_last_price_by_type(engine: RecordingEngine) -> None:
    # Arrange: market (judged at last), limit 15 % away, stop 5 % away, limit over ADV
    o = _records(4)
    o["qty"] = [10.0, 10.0, 10.0, 2_000.0]
    o["type"] = [OrderType.MARKET, OrderType.LIMIT, OrderType.STOP, OrderType.LIMIT]
    o["limit_price"] = [0.0, 115.0, 0.0, 100.0]
    o["stop_price"] = [0.0, 0.0, 105.0, 0.0]
    # Act
    res = verify_order_records(o, last_price=LAST, adv=ADV)
    pass_to_engine(o, res.allowed, engine)
    # Assert
    assert res.reason.tolist() == [RiskReason.NONE, RiskReason.PRICE_DEVIATION, RiskReason.NONE,
                                   RiskReason.ADV_EXCEEDED]
    assert [int(r["stop_price"]) for r in engine.received] == [0, 105]


def test_engine_cancel_always_passes_and_close_counts_as_reducing() -> None:
    o = _records(3)
    o["action"] = [Action.CANCEL, Action.NEW, Action.NEW]
    o["side"] = [BUY, SELL, BUY]
    o["size_mode"] = [SizeMode.QTY, SizeMode.CLOSE, SizeMode.ALL_IN]
    o["qty"] = [0.0, 0.0, 1.0]
    res = verify_order_records(o, last_price=LAST, adv=ADV, state=TradingState.REDUCE_ONLY)
    assert res.reason.tolist() == [RiskReason.NONE, RiskReason.NONE, RiskReason.REDUCE_ONLY]


def test_engine_records_use_per_portfolio_positions() -> None:
    o = _records(2)
    o["portfolio"] = [0, 1]
    o["side"] = SELL
    o["qty"] = 5.0
    positions = np.array([[10.0, 0.0], [0.0, 0.0]])
    res = verify_order_records(o, last_price=LAST, adv=ADV, positions=positions, entries_paused=True)
    assert res.reason.tolist() == [RiskReason.NONE, RiskReason.MARKET_FILTER]


def test_mismatched_per_order_array_raises_a_clear_error() -> None:
    with pytest.raises(ValueError, match="position"):
        verify_orders(np.array([0, 0]), np.array([0, 0]), np.ones(2), np.full(2, 100.0), last_price=LAST,
                      adv=ADV, position=np.zeros(3))


def test_orders_over_many_bars_are_judged_against_their_own_bars_last_price(engine: RecordingEngine) -> None:
    # Arrange: price known before bar 0 is 100, before bar 1 is 120; both orders are limit 115
    last = np.array([[100.0], [120.0]])
    adv = np.full((2, 1), 1e6)
    prices = np.array([115.0, 115.0])
    # Act
    res = verify_orders(np.zeros(2, np.int64), np.zeros(2, np.int64), np.ones(2), prices, last_price=last,
                        adv=adv, bar=np.array([0, 1]))
    pass_to_engine(np.array([0, 1]), res.allowed, engine)
    # Assert: 15 % from 100 is refused, 4 % from 120 passes
    assert res.reason.tolist() == [RiskReason.PRICE_DEVIATION, RiskReason.NONE]
    assert engine.received == [1]


def test_engine_records_use_the_row_of_their_bar() -> None:
    o = _records(2)
    o["bar"] = [0, 1]
    o["type"] = OrderType.LIMIT
    o["limit_price"] = 115.0
    o["qty"] = 1.0
    res = verify_order_records(o, last_price=np.array([[100.0], [120.0]]), adv=np.full((2, 1), 1e6))
    assert res.reason.tolist() == [RiskReason.PRICE_DEVIATION, RiskReason.NONE]


def test_two_dimensional_prices_without_bar_rows_are_refused() -> None:
    with pytest.raises(ValueError, match="bar"):
        verify_orders(np.array([0]), np.array([0]), np.ones(1), np.full(1, 100.0),
                      last_price=np.ones((2, 1)), adv=np.ones((2, 1)))
