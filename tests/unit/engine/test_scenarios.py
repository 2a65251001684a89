"""Hand-computed scenarios, one per rule (Arrange / Act / Assert)."""

from __future__ import annotations

import numpy as np
import pydantic
import pytest

from tests.unit.engine.conftest import MIN, bars_from, order, orders
from trading_core.engine import Action as A
from trading_core.engine import (
    Engine,
    EventKind,
    FeeTier,
    FillReason,
    MarketModel,
    OrderType,
    RejectReason,
    Role,
    Side,
    SizeMode,
    TimeInForce,
    simulate_orders,
    simulate_signals,
)

FREE = MarketModel(fee_tiers=(FeeTier(0, 0, 0),))
FLAT = [(100, 101, 99, 100)] * 6


def run(rows, ords, model=FREE, cash=100_000.0, volume=1e9, **kw):
    ts, o, h, lo, c, v = bars_from(rows, volume)
    return simulate_orders(ts, o, h, lo, c, v, orders=ords, n_portfolios=1, model=model, cash=cash, device="cpu",
                           **kw)


def kinds(res, oid):
    ev = res.events[res.events["order_id"] == oid]
    return [(int(e["kind"]), int(e["reason"])) for e in ev]


def test_market_order_when_submitted_before_bar_then_fills_at_that_open_as_taker():
    res = run([(100, 101, 99, 100), (102, 103, 101, 102)], order(1, type=OrderType.MARKET, side=Side.BUY, qty=2))
    f = res.fills[0]
    assert (f["bar"], f["price"], f["qty"], f["role"], f["reason"]) == (1, 102.0, 2.0, Role.TAKER, FillReason.OPEN)
    assert res.cash[-1, 0] == 100_000.0 - 204.0
    assert res.equity[-1, 0] == 100_000.0


def test_limit_rests_across_bars_then_fills_at_limit_as_maker():
    rows = [(100, 101, 99, 100), (100, 100, 96, 97), (97, 98, 94, 95)]
    res = run(rows, order(0, type=OrderType.LIMIT, side=Side.BUY, qty=1, limit_price=95))
    assert len(res.fills) == 1
    f = res.fills[0]
    assert (f["bar"], f["price"], f["role"], f["reason"]) == (2, 95.0, Role.MAKER, FillReason.INTRABAR)


def test_stop_when_bar_gaps_through_then_fills_at_open():
    rows = [(100, 101, 99, 100), (90, 91, 88, 89)]
    ords = orders(order(0, type=OrderType.MARKET, side=Side.BUY, qty=1),
                  order(1, type=OrderType.STOP, side=Side.SELL, qty=1, stop_price=95))
    res = run(rows, ords)
    f = res.fills[1]
    assert (f["bar"], f["price"], f["reason"]) == (1, 90.0, FillReason.GAP)


def test_stop_touched_intrabar_fills_at_stop_level_plus_slippage():
    model = FREE.replace(slippage_bps=10)
    ords = orders(order(0, type=OrderType.MARKET, side=Side.BUY, qty=1),
                  order(1, type=OrderType.STOP, side=Side.SELL, qty=1, stop_price=95))
    res = run([(100, 101, 99, 100), (99, 99, 94, 96)], ords, model=model)
    f = res.fills[1]
    assert f["price"] == pytest.approx(95 * (1 - 0.001))
    assert f["slippage_cost"] == pytest.approx(95 * 0.001)


@pytest.mark.parametrize("close,expected_exit", [(103.0, 95.0), (97.0, 105.0)])
def test_intrabar_path_decides_which_bracket_leg_fills(close, expected_exit):
    # up bar: O->L->H->C, so the low (stop) comes first; down bar: O->H->L->C, the high (take-profit) first
    rows = [(100, 100, 100, 100), (100, 100, 100, 100), (100, 106, 94, close)]
    res = run(rows, order(0, type=OrderType.MARKET, side=Side.BUY, qty=1, sl_price=95, tp_price=105))
    assert [f["price"] for f in res.fills] == [100.0, expected_exit]
    loser = 3 if expected_exit == 95.0 else 2  # sl id = 2, tp id = 3
    assert (EventKind.CANCELED, 0) in kinds(res, loser)


def test_partial_fills_capped_by_participation_with_remainder_resting():
    model = FREE.replace(participation_rate=0.1)
    res = run(FLAT, order(0, type=OrderType.MARKET, side=Side.BUY, qty=25), model=model, volume=100)
    assert list(res.fills["qty"]) == [10.0, 10.0, 5.0]
    assert list(res.fills["bar"]) == [0, 1, 2]
    assert (EventKind.FILLED, 0) in kinds(res, 1)


def test_latency_fixed_two_bars_delays_activation_and_price_moves_meanwhile():
    model = FREE.replace(latency_kind="fixed", latency_a=2)
    rows = [(100, 101, 99, 100), (101, 102, 100, 101), (105, 106, 104, 105)]
    res = run(rows, order(0, type=OrderType.MARKET, side=Side.BUY, qty=1), model=model)
    assert (res.fills[0]["bar"], res.fills[0]["price"]) == (2, 105.0)


def test_latency_in_ms_is_converted_with_the_bar_length():
    model = FREE.replace(latency_kind="fixed", latency_unit="ms", latency_a=MIN * 1.5)
    rows = [(100, 101, 99, 100), (101, 102, 100, 101), (105, 106, 104, 105)]
    res = run(rows, order(0, type=OrderType.MARKET, side=Side.BUY, qty=1), model=model)
    assert res.fills[0]["bar"] == 1  # floor(1.5 bars)


def test_fee_tier_switches_on_the_day_after_30d_volume_crosses_the_boundary():
    model = MarketModel(fee_tiers=(FeeTier(0, 0, 10), FeeTier(1_000, 0, 5)))
    rows = [(100, 100, 100, 100)] * 4
    ts, o, h, lo, c, v = bars_from(rows)
    ts = np.arange(4, dtype=np.int64) * 43_200_000  # 12-hour bars: bars 0,1 day 0; 2,3 day 1
    ords = orders(order(0, type=OrderType.MARKET, side=Side.BUY, qty=5), order(1, type=OrderType.MARKET,
                  side=Side.BUY, qty=5), order(2, type=OrderType.MARKET, side=Side.BUY, qty=1))
    res = simulate_orders(ts, o, h, lo, c, v, orders=ords, n_portfolios=1, model=model, device="cpu")
    assert list(res.fills["fee"]) == pytest.approx([0.5, 0.5, 0.05])


@pytest.mark.parametrize("model,rec,reason", [
    (FREE.replace(tick_size=0.5), dict(type=OrderType.LIMIT, qty=1, limit_price=99.3), RejectReason.TICK_SIZE),
    (FREE.replace(lot_size=0.1), dict(type=OrderType.MARKET, qty=0.25), RejectReason.LOT_SIZE),
    (FREE.replace(min_notional=1_000), dict(type=OrderType.LIMIT, qty=1, limit_price=99), RejectReason.MIN_NOTIONAL),
    (FREE.replace(reject_prob=1.0), dict(type=OrderType.MARKET, qty=1), RejectReason.RANDOM),
    (FREE, dict(type=OrderType.LIMIT, qty=1, limit_price=0.0), RejectReason.INVALID),
])
def test_venue_rule_when_violated_then_rejected_with_reason_and_nothing_filled(model, rec, reason):
    res = run(FLAT, order(0, side=Side.BUY, **rec), model=model)
    assert len(res.fills) == 0
    assert list(res.rejections["reason"]) == [reason]


def test_rate_limit_rejects_orders_beyond_max_per_interval():
    model = FREE.replace(max_orders_per_interval=2, rate_interval_bars=3)
    ords = orders(*[order(0, type=OrderType.LIMIT, side=Side.BUY, qty=1, limit_price=50) for _ in range(3)],
                  order(3, type=OrderType.LIMIT, side=Side.BUY, qty=1, limit_price=50))
    res = run(FLAT, ords, model=model)
    assert list(res.rejections["reason"]) == [RejectReason.RATE_LIMIT]
    assert list(res.rejections["order_id"]) == [3]


def test_no_cash_caps_the_fill_and_cancels_the_rest():
    res = run(FLAT, order(0, type=OrderType.MARKET, side=Side.BUY, qty=20), cash=1_000.0)
    assert list(res.fills["qty"]) == [10.0]
    assert (EventKind.CANCELED, RejectReason.NO_CASH) in kinds(res, 1)


def test_no_cash_at_all_rejects():
    res = run(FLAT, order(0, type=OrderType.MARKET, side=Side.BUY, qty=1), cash=0.0)
    assert list(res.rejections["reason"]) == [RejectReason.NO_CASH]


def test_sell_without_position_when_shorting_disabled_is_rejected():
    res = run(FLAT, order(0, type=OrderType.MARKET, side=Side.SELL, qty=1))
    assert list(res.rejections["reason"]) == [RejectReason.SHORT_NOT_ALLOWED]


def test_fok_unfillable_and_ioc_remainder_cancelled():
    model = FREE.replace(participation_rate=0.1)
    ords = orders(order(0, type=OrderType.MARKET, side=Side.BUY, qty=25, tif=TimeInForce.FOK),
                  order(1, type=OrderType.MARKET, side=Side.BUY, qty=25, tif=TimeInForce.IOC))
    res = run(FLAT, ords, model=model, volume=100)
    assert kinds(res, 1)[-1] == (EventKind.REJECTED, RejectReason.FOK_UNFILLABLE)
    assert list(res.fills["qty"]) == [10.0]
    assert kinds(res, 2)[-1] == (EventKind.CANCELED, 0)


def test_ioc_limit_not_marketable_at_open_is_cancelled():
    res = run(FLAT, order(0, type=OrderType.LIMIT, side=Side.BUY, qty=1, limit_price=99.5, tif=TimeInForce.IOC))
    assert len(res.fills) == 0 and kinds(res, 1)[-1] == (EventKind.CANCELED, 0)


def test_gtd_expires_after_n_bars_and_at_timestamp():
    ords = orders(order(0, type=OrderType.LIMIT, side=Side.BUY, qty=1, limit_price=50, tif=TimeInForce.GTD,
                        expire_bars=2),
                  order(0, type=OrderType.LIMIT, side=Side.BUY, qty=1, limit_price=50, tif=TimeInForce.GTD,
                        expire_ts=4 * MIN))
    res = run(FLAT, ords)
    exp = res.events[res.events["kind"] == EventKind.EXPIRED]
    assert [(int(e["order_id"]), int(e["bar"])) for e in exp] == [(1, 2), (2, 4)]


def test_cancel_and_replace():
    rows = [(100, 101, 99, 100), (100, 101, 97, 98), (98, 99, 96, 97)]
    ords = orders(order(0, type=OrderType.LIMIT, side=Side.BUY, qty=1, limit_price=90),
                  order(0, type=OrderType.LIMIT, side=Side.BUY, qty=1, limit_price=90),
                  order(1, action=A.REPLACE, order_id=1, limit_price=97, qty=2),
                  order(1, action=A.CANCEL, order_id=2), order(1, action=A.CANCEL, order_id=99))
    res = run(rows, ords)
    assert [(int(f["order_id"]), f["qty"], f["price"]) for f in res.fills] == [(1, 2.0, 97.0)]
    assert (EventKind.REPLACED, 0) in kinds(res, 1)
    assert (EventKind.CANCELED, 0) in kinds(res, 2)
    assert kinds(res, 99) == [(EventKind.REJECTED, RejectReason.UNKNOWN_ORDER)]


def test_trailing_stop_follows_the_high_and_fills_at_the_trailed_level():
    rows = [(100, 100, 100, 100), (100, 100, 100, 100), (100, 110, 100, 109), (109, 109, 104, 105)]
    ords = orders(order(0, type=OrderType.MARKET, side=Side.BUY, qty=1),
                  order(1, type=OrderType.TRAILING_STOP, side=Side.SELL, qty=1, trail_amount=3))
    res = run(rows, ords)
    assert (res.fills[1]["bar"], res.fills[1]["price"]) == (3, 107.0)


def test_trailing_stop_percent():
    rows = [(100, 100, 100, 100), (100, 100, 100, 100), (100, 120, 100, 119), (119, 119, 100, 101)]
    ords = orders(order(0, type=OrderType.MARKET, side=Side.BUY, qty=1),
                  order(1, type=OrderType.TRAILING_STOP_PCT, side=Side.SELL, qty=1, trail_pct=0.1))
    res = run(rows, ords)
    assert res.fills[1]["price"] == pytest.approx(108.0)


def test_stop_limit_triggers_then_rests_as_limit():
    rows = [(100, 100, 100, 100), (100, 104, 99, 103), (103, 103, 101, 102)]
    res = run(rows, order(0, type=OrderType.STOP_LIMIT, side=Side.BUY, qty=1, stop_price=103, limit_price=102))
    assert (EventKind.TRIGGERED, 0) in kinds(res, 1)
    assert (res.fills[0]["bar"], res.fills[0]["price"], res.fills[0]["role"]) == (2, 102.0, Role.MAKER)


def test_take_profit_order_triggers_in_the_favourable_direction():
    rows = [(100, 100, 100, 100), (100, 100, 100, 100), (100, 106, 99, 104)]
    ords = orders(order(0, type=OrderType.MARKET, side=Side.BUY, qty=1),
                  order(1, type=OrderType.TAKE_PROFIT, side=Side.SELL, qty=1, stop_price=105))
    res = run(rows, ords)
    assert (res.fills[1]["price"], res.fills[1]["reason"]) == (105.0, FillReason.INTRABAR)


def test_touch_probability_zero_needs_a_trade_through():
    model = FREE.replace(touch_fill_prob=0.0)
    rows = [(100, 100, 100, 100), (100, 100, 95, 96), (96, 96, 94, 95)]
    res = run(rows, order(0, type=OrderType.LIMIT, side=Side.BUY, qty=1, limit_price=95), model=model)
    assert (res.fills[0]["bar"], res.fills[0]["price"]) == (2, 95.0)


def test_short_with_borrow_cost_and_margin():
    model = FREE.replace(allow_short=True, borrow_rate_annual=365 * 24 * 60 * 0.0001)  # 1 bp per 1-minute bar
    res = run([(100, 100, 100, 100)] * 3, order(0, type=OrderType.MARKET, side=Side.SELL, qty=10), model=model)
    assert res.position[-1, 0, 0] == -10.0
    assert res.borrow_paid[0] == pytest.approx(3 * 1000 * 0.0001)
    assert res.cash[-1, 0] == pytest.approx(101_000 - 0.3)
    margin = FREE.replace(allow_short=True, short_margin=1.0)
    res = run(FLAT, order(0, type=OrderType.MARKET, side=Side.SELL, qty=2000), model=margin)
    assert res.fills[0]["qty"] == 1000.0
    assert (EventKind.CANCELED, RejectReason.NO_MARGIN) in kinds(res, 1)


def test_all_in_order_sizes_at_first_fill():
    res = run(FLAT, order(0, type=OrderType.MARKET, side=Side.BUY, size_mode=SizeMode.ALL_IN), cash=1_000.0)
    assert res.fills[0]["qty"] == 10.0


@pytest.mark.parametrize("fill_at", ["close", "next_open"])
def test_signals_never_fill_before_their_decision_point(fill_at):
    g = np.random.default_rng(0)
    T = 50
    c = 100 + np.cumsum(g.normal(0, 1, (T, 1)), 0)
    o = c + g.normal(0, 0.5, (T, 1))
    ts = np.arange(T, dtype=np.int64) * MIN
    ent, ex = g.random((T, 1)) < 0.2, g.random((T, 1)) < 0.2
    res = simulate_signals(ts, o, np.maximum(o, c) + 1, np.minimum(o, c) - 1, c, np.full((T, 1), 1e9), entries=ent,
                           exits=ex, model=FREE.replace(fill_at=fill_at), device="cpu")
    sig_bars = np.nonzero(ent[:, 0] ^ ex[:, 0])[0]
    for f in res.fills:
        b = int(f["bar"])
        if fill_at == "close":
            assert b in sig_bars and f["price"] == c[b, 0]
        else:
            assert b - 1 in sig_bars and f["price"] == o[b, 0]


def test_trades_round_trips_and_frames():
    rows = [(100, 100, 100, 100), (100, 100, 100, 100), (110, 110, 110, 110)]
    ent = np.array([[True], [False], [False]])
    ex = np.array([[False], [True], [False]])
    ts, o, h, lo, c, v = bars_from(rows)
    res = simulate_signals(ts, o, h, lo, c, v, entries=ent, exits=ex, model=FREE.replace(fill_at="next_open"),
                           size_mode="fixed", size=2.0, device="cpu")
    (tr,) = res.trades(0)
    assert (tr.entry_bar, tr.exit_bar, tr.entry_price, tr.exit_price, tr.pnl) == (1, 2, 100.0, 110.0, 20.0)
    assert set(res.to_frames()) >= {"fills", "equity", "cash"}


def test_venue_config_builds_validated_model_with_stable_hash():
    cfg = {"venues": {"coinbase": {"fees": {"tiers": [{"min_volume_30d": 0, "maker_bps": 40, "taker_bps": 60},
                                                      {"min_volume_30d": 10_000, "maker_bps": 25, "taker_bps": 40}]},
                                   "tick_size": 0.01, "lot_size": 1e-8, "min_notional": 1.0}}}
    m = MarketModel.from_venue_config(cfg)
    assert m.venue == "coinbase" and m.fee_tiers[1].taker_bps == 40 and m.tick_size == 0.01
    assert m.execution_model_hash() == MarketModel.from_venue_config(cfg).execution_model_hash()
    assert m.execution_model_hash() != m.replace(slippage_bps=1).execution_model_hash()
    with pytest.raises(pydantic.ValidationError):
        MarketModel.from_venue_config({"venues": {"x": {"tick_sise": 0.01}}})
    with pytest.raises(pydantic.ValidationError):
        MarketModel.from_venue_config({"venues": {"x": {"fees": {"tiers": [{"min_volume_30d": 5}]}}}})


def test_engine_snapshot_restore_resumes_identically():
    model = FREE.replace(participation_rate=0.1)
    bars = [(100 + i, 101 + i, 99 + i, 100 + i) for i in range(6)]

    def drive(eng, lo, hi):
        out = []
        for t in range(lo, hi):
            o_, h_, l_, c_ = bars[t]
            out.append(eng.step(t * MIN, [o_], [h_], [l_], [c_], [100.0]))
        return out

    a = Engine(1, 1, model)
    a.submit_market(0, 0, Side.BUY, 35.0)
    drive(a, 0, 2)
    snap = a.snapshot()
    rest_a = drive(a, 2, 6)
    b = Engine(1, 1, model)
    b.restore(snap)
    rest_b = drive(b, 2, 6)
    assert [x.tobytes() for x in rest_a] == [x.tobytes() for x in rest_b]
    assert b.positions[0, 0] == 35.0


def test_engine_helpers_bracket_ids_and_open_orders():
    eng = Engine(1, 1, FREE)
    oid = eng.submit_limit(0, 0, Side.BUY, 1.0, 95.0, sl_price=90.0, tp_price=110.0)
    eng.step(0, [100.0], [101.0], [99.0], [100.0], [1e6])
    assert sorted(eng.open_orders(0)) == [oid, oid + 1, oid + 2]
    eng.cancel(0, oid)
    eng.step(MIN, [100.0], [101.0], [99.0], [100.0], [1e6])
    assert len(eng.open_orders(0)) == 0
