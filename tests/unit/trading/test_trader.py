"""The trading loop (``trading.Trader``): its events, its blindness to later bars, its many
accounts per call, and its position rules.

Bars are seeded random walks or hand-made paths (``trader_helpers``); signals are replayed from
arrays (``ReplaySignals``), so every scenario is exact and repeatable.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from typing import Any

import numpy as np
import pytest
from trader_helpers import (
    FREE,
    HOUR_MS,
    QUIET_RISK,
    book_json,
    collect,
    config,
    events_json,
    flags,
    make_bars,
    path_bars,
    random_signals,
    snapshot_scenario,
    split_bars,
    tripping_risk,
)

from trading_core.engine import enums as E
from trading_core.risk.codes import RiskReason, reason_name
from trading_core.risk.config import MarketFilterConfig, OrderLimits, RiskConfig, TrailingStopConfig
from trading_core.strategies.filter_config import FilterConfig
from trading_core.trading import PositionRules, Protection, ReplaySignals, Trader, VixAsOf, bar_slices
from trading_core.trading.inputs import DAY_MS
from trading_core.trading.trips import round_trips

ROLE = {E.Role.MAKER: "maker", E.Role.TAKER: "taker"}


def _rich() -> tuple[Trader, Any, list[Any], list[np.ndarray]]:
    """The snapshot scenario run end to end (risk on, breakers tripping, trailing stops, shorts)."""
    cfg, warm, bars, ent, ex = snapshot_scenario()
    tr = Trader(cfg, ReplaySignals(ent, ex))
    tr.warm_up(bar_slices(warm), strategy=False)
    events, fills, _ = collect(tr, bars)
    return tr, bars, events, fills


@pytest.fixture(scope="module")
def rich() -> tuple[Trader, Any, list[Any], list[np.ndarray]]:
    return _rich()


# ---- events: names and ids -----------------------------------------------------------------------
def test_event_ids_are_run_bar_seq_unique_with_seq_counting_up_within_a_bar(rich: Any) -> None:
    tr, bars, events, _ = rich
    assert len(events) > 300
    seen: dict[int, int] = defaultdict(int)
    last_bar = -1
    for e in events:
        assert e.bar >= last_bar  # events come bar by bar
        last_bar = e.bar
        assert e.id == f"snap:{e.bar}:{seen[e.bar]}"
        seen[e.bar] += 1
        assert e.ts_event == int(bars.ts[e.bar]) + HOUR_MS  # the decision instant: the bar's close
        d = e.to_dict()
        assert d["kind"] == e.kind == type(e).__name__ and d["id"] == e.id
    assert len({e.id for e in events}) == len(events)
    json.dumps([e.to_dict() for e in events])  # the ledger form is plain JSON


def test_replaying_the_same_run_gives_identical_events_and_ids(rich: Any) -> None:
    tr, _, events, _ = rich
    tr2, _, events2, _ = _rich()
    assert events_json(events2) == events_json(events)
    assert book_json(tr2) == book_json(tr)


def test_order_filled_events_carry_the_engine_fill_role_fee_and_slippage(rich: Any) -> None:
    _, _, events, fills = rich
    by_bar: dict[int, list[Any]] = defaultdict(list)
    for e in events:
        if e.kind == "OrderFilled":
            by_bar[e.bar].append(e)
    n = 0
    reasons = set()
    for t, f in enumerate(fills):
        evs = by_bar.get(t, [])
        assert len(evs) == f.shape[0]
        for e, r in zip(evs, f, strict=True):
            n += 1
            assert (e.account, e.order_id, e.qty, e.price, e.fee, e.slippage) == (
                int(r["portfolio"]), int(r["order_id"]), float(r["qty"]), float(r["price"]), float(r["fee"]),
                float(r["slippage_cost"]))
            assert e.side == ("buy" if int(r["side"]) == E.Side.BUY else "sell")
            assert e.role == ROLE[int(r["role"])]
            assert e.fee > 0 and e.slippage > 0  # 7.5 bps taker fee, 2 bps slippage
            reasons.add(e.fill_reason)
    assert n > 100 and {"open", "intrabar"} <= reasons  # market orders at the open, stops intrabar


def _cycle_events(events: list[Any]) -> dict[tuple[int, str], list[Any]]:
    out: dict[tuple[int, str], list[Any]] = defaultdict(list)
    for e in events:
        if e.kind in ("PositionOpened", "PositionChanged", "PositionClosed"):
            out[(e.account, e.symbol)].append(e)
    return out


def test_a_position_cycle_gives_opened_then_closed_with_the_round_trip_pnl() -> None:
    symbols = ("AAA", "BBB")
    bars = make_bars(300, symbols, seed=21)
    ent, ex = random_signals(300, 3, seed=22, p_entry=0.1, p_exit=0.1)
    tr = Trader(config(symbols, (0, 1, 1)), ReplaySignals(ent, ex))  # long-only, no resting exits
    events, fills, _ = collect(tr, bars)
    trips = round_trips(np.concatenate(fills), last_close=bars.close[-1])
    cycles = _cycle_events(events)
    n_closed = 0
    for key, evs in cycles.items():
        a, sym = key
        mine = [t for t in trips if (t.portfolio, symbols[t.symbol]) == (a, sym)]
        kinds = [e.kind for e in evs]
        assert kinds[::2] == ["PositionOpened"] * len(kinds[::2])
        assert kinds[1::2] == ["PositionClosed"] * len(kinds[1::2])
        for i, e in enumerate(evs):
            trip = mine[i // 2]
            if e.kind == "PositionOpened":
                assert e.qty == pytest.approx(trip.quantity) and e.avg_price == pytest.approx(trip.entry_price)
                assert e.bar == trip.entry_bar
            else:
                assert not trip.is_open and e.bar == trip.exit_bar
                assert e.realized_pnl == trip.pnl  # the same TripBook arithmetic: exact
                assert e.previous_qty == pytest.approx(trip.quantity)
                n_closed += 1
        assert len(mine) == (len(evs) + 1) // 2
    assert n_closed == sum(not t.is_open for t in trips) > 10


def test_a_position_stopped_out_on_its_entry_bar_still_reports_opened_and_closed() -> None:
    T = 12
    close = np.full(T, 100.0)
    low = np.full(T, 100.0)
    low[5] = 95.0  # the entry fills at bar 5's open; the 2% trailing stop (98) is hit on the same bar
    bars = path_bars(close, low=low)
    cfg = config(("X",), (0,), model=FREE,
                 protection=Protection(trailing=TrailingStopConfig(kind="percent", trail_pct=0.02)))
    tr = Trader(cfg, ReplaySignals(flags(T, 1, {4: [0]}), flags(T, 1)))
    events, fills, _ = collect(tr, bars)
    assert [(int(f["bar"]), int(f["side"])) for f in np.concatenate(fills)] == [(5, E.Side.BUY), (5, E.Side.SELL)]
    kinds = [e.kind for e in events if e.kind.startswith("Position")]
    assert kinds == ["PositionOpened", "PositionClosed"]
    closed = [e for e in events if e.kind == "PositionClosed"]
    assert closed[0].realized_pnl == pytest.approx(1000 * (98.0 - 100.0))


def test_a_reversal_reports_the_closed_trip_then_the_new_position() -> None:
    T = 20
    bars = path_bars(100 + np.arange(T) * 0.1)
    cfg = config(("X",), (0,), model=FREE.replace(allow_short=True), short=True)
    tr = Trader(cfg, ReplaySignals(flags(T, 1, {2: [0]}), flags(T, 1, {8: [0]})))
    events, fills, _ = collect(tr, bars)
    trips = round_trips(np.concatenate(fills))
    assert [t.side for t in trips] == ["long", "short"] and not trips[0].is_open
    pos = [e for e in events if e.kind.startswith("Position")]
    assert [e.kind for e in pos] == ["PositionOpened", "PositionClosed", "PositionOpened"]
    assert pos[1].realized_pnl == trips[0].pnl and pos[2].qty < 0


def _crash_run(**risk_kw: Any) -> tuple[Trader, list[Any], Any]:
    """One all-in long from bar 1; bar 10 closes 4% down: the 2% daily-loss halt trips, the kill
    switch flattens; an entry signal at bar 14 meets the halted account."""
    T = 30
    r = np.full(T, 0.0005)
    r[10] = -0.04
    close = 100.0 * np.exp(np.cumsum(r))
    bars = path_bars(close, volume=1e6)
    risk = tripping_risk(**risk_kw)
    cfg = config(("X",), (0,), risk=risk)
    tr = Trader(cfg, ReplaySignals(flags(T, 1, {0: [0], 14: [0]}), flags(T, 1)))
    events, _, _ = collect(tr, bars)
    return tr, events, bars


def test_a_breaker_trip_yields_breaker_tripped_then_the_kill_switch() -> None:
    tr, events, _ = _crash_run()
    trips = [e for e in events if e.kind == "BreakerTripped"]
    assert trips, "the crash must trip a breaker"
    halt = [e for e in trips if e.to_state == "halted"]
    assert len(halt) == 1
    h = halt[0]
    assert (h.bar, h.level, h.scope, h.account, h.reason, h.symbol) == (10, "portfolio", "0", 0,
                                                                        "portfolio_daily_loss", None)
    assert h.metrics["daily_loss"] >= 0.02
    after = [e for e in events if e.bar == 10 and int(e.id.rsplit(":", 1)[1]) > int(h.id.rsplit(":", 1)[1])]
    kill = [e for e in after if e.kind == "OrderSubmitted"]
    assert [(e.purpose, e.side, e.size_mode) for e in kill] == [("kill_switch", "sell", "close")]
    closed = [e for e in events if e.kind == "PositionClosed"]
    assert [e.bar for e in closed] == [11] and tr.positions[0, 0] == 0.0
    # the run record of transitions says the same as the events
    rec = [(b.level, b.scope, b.from_state, b.to_state, b.rule) for b in tr.breaker_events]
    evs = [(e.level, e.scope, e.from_state, e.to_state, e.reason if e.kind == "BreakerTripped" else None)
           for e in events if e.kind in ("BreakerTripped", "BreakerReset")]
    assert [r[:4] for r in rec] == [e[:4] for e in evs]
    assert [r[4] for r, e in zip(rec, evs, strict=True) if e[4] is not None] == [e[4] for e in evs if e[4]]


def test_an_entry_on_a_halted_account_yields_order_denied_trading_halted() -> None:
    tr, events, _ = _crash_run()
    denied = [e for e in events if e.kind == "OrderDenied"]
    assert [(e.bar, e.side, e.reason, e.reason_code, e.trading_state) for e in denied] == [
        (14, "buy", "trading_halted", RiskReason.TRADING_HALTED, "halted")]
    assert not [e for e in events if e.kind == "OrderSubmitted" and e.bar == 14]
    audit = [row for row in tr.audit if row[0] == 14]
    assert len(audit) == 1 and audit[0][5] == RiskReason.TRADING_HALTED


def _denial_case(case: str) -> tuple[Trader, list[Any], int]:
    T = 40
    r = np.full(T, 0.0005)
    entry = 30
    vix = None
    orders = OrderLimits(max_price_deviation=0.5, max_adv_fraction=1.0)
    mf = MarketFilterConfig(enabled=False)
    volume = 1e6
    if case == "price_deviation":
        r[entry] = 0.05
        orders = OrderLimits(max_price_deviation=0.02, max_adv_fraction=1.0)
    elif case == "adv_exceeded":
        volume = 10.0  # ADV 240 a day: 10% of it is far below an all-in 1000 units
        orders = OrderLimits(max_price_deviation=0.5, max_adv_fraction=0.1)
    elif case == "market_filter":
        mf = MarketFilterConfig(enabled=True, vix_threshold=30.0)
        days = np.arange(-5, 3, dtype=np.int64)
        from trader_helpers import T0

        vix = VixAsOf(T0 + days * DAY_MS, np.where(days < 0, 20.0, 45.0))  # VIX 45 from day 0 on, known at its end
    bars = path_bars(100.0 * np.exp(np.cumsum(r)), volume=volume)
    risk = RiskConfig(market_filter=mf, orders=orders, breakers=QUIET_RISK.breakers)
    tr = Trader(config(("X",), (0,), risk=risk), ReplaySignals(flags(T, 1, {entry: [0]}), flags(T, 1)), vix=vix)
    events, _, _ = collect(tr, bars)
    return tr, events, entry


@pytest.mark.parametrize("case", ["price_deviation", "adv_exceeded", "market_filter"])
def test_a_refused_entry_yields_order_denied_named_by_its_reason(case: str) -> None:
    tr, events, entry = _denial_case(case)
    denied = [e for e in events if e.kind == "OrderDenied"]
    code = getattr(RiskReason, case.upper())
    assert [(e.bar, e.side, e.reason, e.reason_code, e.trading_state) for e in denied] == [
        (entry, "buy", case, code, "active")]
    assert denied[0].reason == reason_name(code) and denied[0].requested_qty > 0
    assert not [e for e in events if e.kind in ("OrderSubmitted", "OrderFilled")]
    assert [row[5] for row in tr.audit] == [code]


def test_a_filtered_signal_yields_signal_filtered_named_by_its_filter() -> None:
    T = 30
    bars = path_bars(100 + np.arange(T) * 0.05)
    ent = flags(T, 2, {2: [0], 5: [0], 12: [1]})
    ex = flags(T, 2, {4: [0], 9: [0], 12: [1]})
    tr = Trader(config(("X",), (0, 0), filters=FilterConfig(min_hold_bars=3)), ReplaySignals(ent, ex))
    events, _, _ = collect(tr, bars)
    filt = [(e.bar, e.column, e.account, e.signal, e.reason) for e in events if e.kind == "SignalFiltered"]
    assert filt == [(4, 0, 0, "exit", "min_hold"),  # held 1 bar of 3
                    (5, 0, 0, "entry", "in_position"),
                    (12, 1, 1, "entry", "cancelled"), (12, 1, 1, "exit", "cancelled")]
    subs = [(e.bar, e.account, e.side) for e in events if e.kind == "OrderSubmitted"]
    assert subs == [(2, 0, "buy"), (9, 0, "sell")]  # the exit at bar 9 passes the minimum hold


# ---- no look-ahead ---------------------------------------------------------------------------------
def _perturbed(t: int, seed: int) -> tuple[Any, Any]:
    """Two bar sets equal up to bar t, different (prices, volumes) after it."""
    a = make_bars(260, ("AAA", "BBB"), seed=seed, vol=0.01, crash={120: -0.05})
    b = make_bars(260, ("AAA", "BBB"), seed=seed + 1000, vol=0.03)
    keep = slice(0, t + 1)
    out = []
    for k in ("open", "high", "low", "close", "volume"):
        x = getattr(b, k).copy()
        x[keep] = getattr(a, k)[keep]
        out.append(x)
    from trading_core.strategies import Bars

    return a, Bars(ts=a.ts, open=out[0], high=out[1], low=out[2], close=out[3], volume=out[4], symbols=a.symbols)


@pytest.mark.parametrize("fill_at", ["next_open", "close"])
@pytest.mark.parametrize("t", [60, 121, 200])
def test_decisions_up_to_bar_t_do_not_change_when_later_bars_change(t: int, fill_at: str) -> None:
    a, b = _perturbed(t, seed=31)
    T = a.n_bars
    ent_a, ex_a = random_signals(T, 3, seed=32, p_entry=0.1, p_exit=0.08)
    ent_b, ex_b = random_signals(T, 3, seed=33, p_entry=0.3, p_exit=0.3)
    ent_b[: t + 1], ex_b[: t + 1] = ent_a[: t + 1], ex_a[: t + 1]
    # VIX: the closes known by bar t's close are the same, later ones differ
    decision_t = int(a.ts[t]) + HOUR_MS
    days = np.arange(-3, 14, dtype=np.int64)
    vts = int(a.ts[0]) - int(a.ts[0]) % DAY_MS + days * DAY_MS
    rng = np.random.default_rng(34)
    v_a = rng.uniform(15, 40, days.shape[0])
    v_b = np.where(vts + DAY_MS <= decision_t, v_a, rng.uniform(15, 40, days.shape[0]))
    risk = tripping_risk().model_copy(update={"market_filter": MarketFilterConfig(enabled=True, vix_threshold=30)})
    from trading_core.engine import MarketModel

    cfg = config(a.symbols, (0, 1, 0), account_of=(0, 0, 1), risk=risk, filters=FilterConfig(min_hold_bars=2),
                 model=MarketModel(fill_at=fill_at, slippage_bps=2.0),
                 protection=Protection(trailing=TrailingStopConfig(kind="atr", atr_period=10, atr_multiple=2.0)))
    runs = []
    for bars, ent, ex, v in ((a, ent_a, ex_a, v_a), (b, ent_b, ex_b, v_b)):
        tr = Trader(cfg, ReplaySignals(ent, ex), vix=VixAsOf(vts, v))
        events = []
        for bar in bar_slices(bars)[: t + 1]:
            events.extend(tr.on_bar(bar))
        runs.append((tr, events))
    (ta, ea), (tb, eb) = runs
    assert len(ea) > 20
    assert events_json(ea) == events_json(eb)
    assert book_json(ta) == book_json(tb)
    assert repr(ta.audit) == repr(tb.audit)  # (NaN != NaN: compare the records as text)
    np.testing.assert_array_equal(ta.all_decisions(), tb.all_decisions())
    assert ta.snapshot() == tb.snapshot()  # the whole state, not only what was reported
    # ...and the bars after t do matter (the test is not blind)
    rest_a = [e for bar in bar_slices(a)[t + 1:] for e in ta.on_bar(bar)]
    rest_b = [e for bar in bar_slices(b)[t + 1:] for e in tb.on_bar(bar)]
    assert events_json(rest_a) != events_json(rest_b)


# ---- many accounts per call ---------------------------------------------------------------------------
def test_fifty_accounts_in_one_trader_equal_fifty_single_account_traders() -> None:
    P, T = 50, 160
    bars = make_bars(T, ("X",), seed=41, vol=0.008, crash={60: -0.04, 110: -0.03})
    ent, ex = random_signals(T, P, seed=42, p_entry=0.08, p_exit=0.06)
    kw: dict[str, Any] = dict(risk=tripping_risk(), filters=FilterConfig(min_hold_bars=2),
                              protection=Protection(trailing=TrailingStopConfig(kind="percent", trail_pct=0.02)))
    big = Trader(config(("X",), (0,) * P, **kw), ReplaySignals(ent, ex))
    events, fills, equity = collect(big, bars)
    all_fills = np.concatenate(fills)
    kinds = {e.kind for e in events}
    assert {"BreakerTripped", "OrderDenied", "SignalFiltered", "PositionClosed"} <= kinds
    assert not any(e.kind == "OrderRejected" for e in events)  # rejections feed a shared system breaker
    fields = [f for f in all_fills.dtype.names or () if f != "portfolio"]
    for p in range(P):
        one = Trader(config(("X",), (0,), **kw), ReplaySignals(ent[:, p:p + 1], ex[:, p:p + 1]))
        _, f1, eq1 = collect(one, bars)
        mine = all_fills[all_fills["portfolio"] == p]
        f1c = np.concatenate(f1)
        assert mine.shape == f1c.shape, f"account {p}"
        for name in fields:
            np.testing.assert_array_equal(mine[name], f1c[name], err_msg=f"account {p} {name}")
        np.testing.assert_array_equal(equity[:, p], eq1[:, 0], err_msg=f"account {p}")
        np.testing.assert_array_equal(big.positions[p], one.positions[0])


# ---- position rules ---------------------------------------------------------------------------------
def _rules_run(close: np.ndarray, rules: PositionRules, *, size_mode: str = "fixed", size: float = 10.0,
               symbol_of: tuple[int, ...] = (0,), entry_at: int = 30, volume: float = 100.0) -> tuple[Trader, list[Any]]:
    T = close.shape[0]
    C = len(symbol_of)
    S = close.shape[1] if close.ndim == 2 else 1
    syms = tuple(f"S{i}" for i in range(S))
    bars = path_bars(close, symbols=syms, volume=volume)
    cfg = config(syms, symbol_of, account_of=(0,) * C, model=FREE, size_mode=size_mode, size=size,
                 position=rules)
    tr = Trader(cfg, ReplaySignals(flags(T, C, {entry_at: list(range(C))}), flags(T, C)))
    events, _, _ = collect(tr, bars)
    return tr, events


def _line(slope: float, T: int = 60, start: int = 31) -> np.ndarray:
    """100 until bar ``start``, then 100 x (1 + slope x bars since): the entry (signal at bar 30)
    fills at bar 31's open, 100."""
    k = np.maximum(np.arange(T) - start, 0)
    return 100.0 * (1.0 + slope * k)


def _by_purpose(events: list[Any], purpose: str) -> list[tuple[int, str, str, float]]:
    return [(e.bar, e.side, e.size_mode, e.qty) for e in events if e.kind == "OrderSubmitted" and e.purpose == purpose]


def test_scale_in_adds_a_fraction_each_time_the_gain_from_the_average_reaches_the_next_step() -> None:
    rules = PositionRules(scale_in_step_pct=0.01, scale_in_fraction=0.5, scale_in_max=2)
    tr, events = _rules_run(_line(0.004), rules)
    # bar 34: 101.2 / 100 = +1.2% >= 1%: add 5 (filled at 101.2, average 100.4);
    # bar 38: 102.8 / 100.4 = +2.4% >= 2x1%: add 5 again (half the OPENING size); then the adds are used up
    assert _by_purpose(events, "scale_in") == [(34, "buy", "qty", 5.0), (38, "buy", "qty", 5.0)]
    assert tr.positions[0, 0] == pytest.approx(20.0)
    assert not _by_purpose(events, "average_down") and not _by_purpose(events, "scale_out")


def test_average_down_adds_each_time_the_loss_from_the_average_reaches_the_next_step() -> None:
    rules = PositionRules(average_down_step_pct=0.01, scale_in_fraction=0.5, average_down_max=2)
    tr, events = _rules_run(_line(-0.004), rules)
    # bar 34: 98.8 / 100 = -1.2%: add 5 (filled at 98.8, average 99.6);
    # bar 37: 97.6 / 99.6 = -2.01% <= -2x1%: add 5 (half the opening size)
    assert _by_purpose(events, "average_down") == [(34, "buy", "qty", 5.0), (37, "buy", "qty", 5.0)]
    assert tr.positions[0, 0] == pytest.approx(20.0)
    assert not _by_purpose(events, "scale_in")


def test_scale_out_closes_a_fraction_once_when_the_gain_is_reached() -> None:
    rules = PositionRules(scale_out_pct=0.019, scale_out_fraction=0.5)
    tr, events = _rules_run(_line(0.004), rules)
    # bar 35: +1.6%; bar 36: +2.0% >= 1.9%: sell half, once
    assert _by_purpose(events, "scale_out") == [(36, "sell", "qty", 5.0)]
    assert tr.positions[0, 0] == pytest.approx(5.0)
    changed = [e for e in events if e.kind == "PositionChanged"]
    assert [(e.bar, e.previous_qty, e.qty) for e in changed] == [(37, 10.0, 5.0)]


def test_position_rules_wait_while_any_column_has_a_signal() -> None:
    rules = PositionRules(scale_in_step_pct=0.01, scale_in_fraction=0.5, scale_in_max=2)
    T = 60
    close = _line(0.004, T)
    bars = path_bars(np.column_stack([close, np.full(T, 50.0)]), symbols=("S0", "S1"))
    ent = flags(T, 2, {30: [0], 34: [1], 35: [1]})  # the second column's entries keep bars 34-35 busy
    cfg = config(("S0", "S1"), (0, 1), model=FREE, size_mode="fixed", size=10.0, position=rules)
    events, _, _ = collect(Trader(cfg, ReplaySignals(ent, flags(T, 2))), bars)
    assert [b for b, *_ in _by_purpose(events, "scale_in")][0] == 36


@pytest.mark.parametrize("layout", ["one_symbol", "two_symbols"])
def test_adv_participation_caps_an_entry_quantity(layout: str) -> None:
    # 100 units a bar: ADV 2400 from day 1 on; 1% participation caps an order at 24 units
    rules = PositionRules(max_adv_participation=0.01)
    T = 40
    if layout == "one_symbol":
        tr, events = _rules_run(np.full(T, 100.0), rules, size_mode="all_in", size=1.0)
    else:
        tr, events = _rules_run(np.full((T, 2), 100.0), rules, size_mode="all_in", size=1.0, symbol_of=(0, 1))
    subs = _by_purpose(events, "signal")
    assert subs and all(s[2] == "qty" and s[3] == 24.0 for s in subs)
    filled = [e.qty for e in events if e.kind == "OrderFilled"]
    assert filled == [24.0] * len(subs)
    np.testing.assert_array_equal(tr.positions[0], np.full(len(subs), 24.0))


def test_without_a_participation_cap_the_entry_is_sized_by_the_engine() -> None:
    tr, events = _rules_run(np.full(40, 100.0), PositionRules(), size_mode="all_in", size=1.0)
    assert _by_purpose(events, "signal") == [(30, "buy", "all_in", 1.0)]
    assert tr.positions[0, 0] == pytest.approx(1000.0)


# ---- a real strategy stream ------------------------------------------------------------------------
@pytest.mark.parametrize("name,params", [("ma_crossover", {"grid": "5:20,8:30"}),
                                         ("rsi_mean_reversion", {"window": 5, "lower": 35, "upper": 60})])
def test_a_strategy_stream_gives_the_same_events_as_its_replayed_batch_signals(name: str,
                                                                             params: dict[str, Any]) -> None:
    from trading_core.strategies import get_strategy

    strat = get_strategy(name, params)
    if not hasattr(strat, "stream"):
        pytest.skip(f"{name}.stream() not there yet")
    symbols = ("AAA", "BBB")
    warm_n, T = 60, 300
    allb = make_bars(warm_n + T, symbols, seed=51, vol=0.012)
    warm, bars = split_bars(allb, warm_n)
    ent, ex = strat.signals(allb)
    C = ent.shape[1]
    V = C // len(symbols)
    symbol_of = tuple(c % len(symbols) for c in range(C))  # variant-major columns
    assert V >= 1 and ent[warm_n:].any()
    cfg = config(symbols, symbol_of, risk=tripping_risk(), filters=FilterConfig(min_hold_bars=2),
                 protection=Protection(trailing=TrailingStopConfig(kind="percent", trail_pct=0.02)))
    live = Trader(cfg, strat.stream(len(symbols)))
    live.warm_up(bar_slices(warm))  # the stream learns the history, nothing trades
    replay = Trader(cfg, ReplaySignals(ent[warm_n:], ex[warm_n:]))
    replay.warm_up(bar_slices(warm), strategy=False)
    ev_live, _, _ = collect(live, bars)
    ev_replay, _, _ = collect(replay, bars)
    assert len(ev_replay) > 20
    assert events_json(ev_live) == events_json(ev_replay)
    assert book_json(live) == book_json(replay)


def test_warm_up_trades_nothing_and_does_not_advance_the_bar_counter() -> None:
    cfg, warm, bars, ent, ex = snapshot_scenario()
    tr = Trader(cfg, ReplaySignals(ent, ex))
    assert tr.warm_up(bar_slices(warm), strategy=False) == warm.n_bars
    assert tr.t == 0 and tr.engine.bar == 0 and math.isfinite(tr.vol.median())
    np.testing.assert_array_equal(tr.equity, np.full(3, cfg.cash))
    first = tr.on_bar(bar_slices(bars)[0])
    assert all(e.bar == 0 for e in first)


def test_drain_records_hands_over_the_run_records_once() -> None:
    import trader_helpers as th

    from trading_core.trading import ReplaySignals, Trader, bar_slices

    cfg, warm, bars, ent, ex = th.snapshot_scenario()
    tr = Trader(cfg, ReplaySignals(ent, ex))
    tr.warm_up(bar_slices(warm), strategy=False)
    for b in bar_slices(bars)[:200]:
        tr.on_bar(b)
    dec, audit, breakers = tr.drain_records()
    assert len(dec) and len(audit) and breakers
    dec2, audit2, breakers2 = tr.drain_records()
    assert len(dec2) == 0 and audit2 == [] and breakers2 == []


def test_without_event_recording_the_book_and_the_audit_are_the_same() -> None:
    import trader_helpers as th

    from trading_core.trading import ReplaySignals, Trader, bar_slices

    cfg, warm, bars, ent, ex = th.snapshot_scenario()
    quiet_cfg = cfg.model_copy(update={"record_events": False})
    a, b = Trader(cfg, ReplaySignals(ent, ex)), Trader(quiet_cfg, ReplaySignals(ent, ex))
    for tr in (a, b):
        tr.warm_up(bar_slices(warm), strategy=False)
    events_b = []
    for bar in bar_slices(bars):
        a.on_bar(bar)
        events_b += b.on_bar(bar)
    assert events_b == []
    np.testing.assert_array_equal(a.equity, b.equity)
    assert a.audit == b.audit and len(a.audit)
