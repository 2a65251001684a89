"""Round trips (``trading.trips``): the streaming ``TripBook`` a Trader feeds bar by bar equals the
batch ``round_trips`` over the same fills, on random fills with reversals and partial exits, and
the trips account for every unit of cash: their PnL adds up to the fills' cash flow."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from trading_core.engine import FILL_DTYPE
from trading_core.trading.state import decode_state, encode_state
from trading_core.trading.trips import BUY, SELL, Trade, TripBook, round_trips

KEYS = [(0, 0), (0, 1), (1, 0), (2, 3)]


def _random_fills(seed: int, n: int = 400) -> np.ndarray:
    """Interleaved fills of several (portfolio, symbol) pairs: opens, adds, partial exits, exact
    closes and reversals (a fill larger than the position), bar/ts non-decreasing."""
    rng = np.random.default_rng(seed)
    f = np.zeros(n, FILL_DTYPE)
    pos = {k: 0.0 for k in KEYS}
    bar = 0
    for i in range(n):
        k = KEYS[int(rng.integers(len(KEYS)))]
        q = pos[k]
        u = rng.random()
        if q == 0.0 or u < 0.3:  # open / add in a random direction (or the same one)
            side = int(rng.integers(2)) if q == 0.0 else (BUY if q > 0 else SELL)
            qty = float(rng.uniform(0.5, 20.0))
        elif u < 0.55:  # partial exit
            side, qty = (SELL if q > 0 else BUY), abs(q) * float(rng.uniform(0.1, 0.9))
        elif u < 0.8:  # exact close
            side, qty = (SELL if q > 0 else BUY), abs(q)
        else:  # reversal
            side, qty = (SELL if q > 0 else BUY), abs(q) + float(rng.uniform(0.5, 20.0))
        pos[k] = q + (qty if side == BUY else -qty)
        if abs(pos[k]) < 1e-9:
            pos[k] = 0.0
        bar += int(rng.integers(0, 2))
        f[i] = (k[0], k[1], bar, 1_600_000_000_000 + bar * 3_600_000, i + 1, side, qty,
                float(rng.uniform(50, 150)), float(rng.uniform(0, 0.5)), float(rng.uniform(0, 0.2)), 1, 0, 0)
    return f


def _stream(fills: np.ndarray, mark: np.ndarray | None) -> list[Trade]:
    """Trips as a Trader gets them: one TripBook per (portfolio, symbol), fills in record order."""
    books: dict[tuple[int, int], TripBook] = {}
    closed: dict[tuple[int, int], list[Trade]] = {}
    for r in fills:
        key = (int(r["portfolio"]), int(r["symbol"]))
        book = books.setdefault(key, TripBook(*key))
        done = book.add(int(r["side"]), float(r["qty"]), float(r["price"]), float(r["fee"]),
                        float(r["slippage_cost"]), int(r["bar"]), int(r["ts"]))
        if done is not None:
            closed.setdefault(key, []).append(done)
    out: list[Trade] = []
    for key in sorted(books):
        trips = closed.get(key, [])
        last = books[key].open_trade(None if mark is None else float(mark[key[1]]))
        out.extend(trips + ([last] if last is not None else []))
    return out


def _no_number(trades: list[Trade]) -> list[Trade]:
    return [replace(t, trade_no=0) for t in trades]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_streaming_trip_book_equals_batch_round_trips(seed: int) -> None:
    fills = _random_fills(seed)
    mark = np.array([101.0, 99.0, 1.0, 120.0])
    batch = round_trips(fills, last_close=mark)
    assert _no_number(_stream(fills, mark)) == _no_number(batch)
    assert [t.trade_no for t in batch] == list(range(len(batch)))
    assert sum(t.is_open for t in batch) <= len(KEYS)
    reversals = sum(1 for a, b in zip(batch, batch[1:], strict=False)
                    if (a.portfolio, a.symbol) == (b.portfolio, b.symbol) and a.exit_bar == b.entry_bar
                    and a.side != b.side)
    assert reversals > 5  # the fills really exercise flips


@pytest.mark.parametrize("seed", [0, 5])
def test_trip_pnl_adds_up_to_the_fills_cash_flow(seed: int) -> None:
    fills = _random_fills(seed)
    mark = np.array([101.0, 99.0, 1.0, 120.0])
    trips = round_trips(fills, last_close=mark)
    for key in KEYS:
        sel = fills[(fills["portfolio"] == key[0]) & (fills["symbol"] == key[1])]
        sign = np.where(sel["side"] == BUY, 1.0, -1.0)
        final = float((sign * sel["qty"]).sum())
        cash = float((-sign * sel["qty"] * sel["price"]).sum() - sel["fee"].sum())
        total = sum(t.pnl for t in trips if (t.portfolio, t.symbol) == key)
        assert total == pytest.approx(cash + final * mark[key[1]], rel=1e-9, abs=1e-6), key
        assert sum(t.fees for t in trips if (t.portfolio, t.symbol) == key) == pytest.approx(sel["fee"].sum())
        # a reversing fill is counted in both trips it touches
        n = sum(t.n_fills for t in trips if (t.portfolio, t.symbol) == key)
        assert n >= sel.shape[0]


def test_closed_trips_are_flat_and_ordered() -> None:
    for t in round_trips(_random_fills(9)):
        assert t.entry_bar <= (t.exit_bar if t.exit_bar is not None else t.entry_bar)
        if not t.is_open:
            assert t.exit_price is not None and t.quantity > 0
            assert t.return_pct == pytest.approx(t.pnl / (t.entry_price * t.quantity))


def test_a_reversal_closes_one_trip_and_opens_the_opposite_with_the_fee_split_by_quantity() -> None:
    b = TripBook(0, 0)
    assert b.add(BUY, 10.0, 100.0, 1.0, 0.1, 0, 0) is None
    done = b.add(SELL, 25.0, 110.0, 2.5, 0.5, 1, 3_600_000)  # 10 close the long, 15 open a short
    assert done is not None and done.side == "long" and done.quantity == 10.0
    assert done.fees == pytest.approx(1.0 + 2.5 * 10 / 25)
    assert done.pnl == pytest.approx(10 * (110 - 100) - done.fees)
    assert done.slippage == pytest.approx(0.1 + 0.5 * 10 / 25)
    op = b.open_trade(100.0)
    assert op is not None and op.side == "short" and op.quantity == pytest.approx(15.0)
    assert op.fees == pytest.approx(2.5 * 15 / 25) and op.entry_bar == 1
    assert op.pnl == pytest.approx(15 * (110 - 100) - op.fees)


def test_partial_exits_stay_in_one_trip() -> None:
    b = TripBook(0, 0)
    b.add(SELL, 9.0, 50.0, 0.0, 0.0, 0, 0)
    assert b.add(BUY, 3.0, 45.0, 0.0, 0.0, 1, 1) is None
    assert b.add(BUY, 3.0, 40.0, 0.0, 0.0, 2, 2) is None
    done = b.add(BUY, 3.0, 55.0, 0.0, 0.0, 3, 3)
    assert done is not None and done.n_fills == 4 and done.side == "short"
    assert done.exit_price == pytest.approx((45 + 40 + 55) / 3)
    assert done.pnl == pytest.approx(9 * 50 - 3 * (45 + 40 + 55))
    assert b.trip is None and b.pos == 0.0


def test_a_float_residual_of_an_exact_close_counts_as_flat() -> None:
    b = TripBook(0, 0)
    b.add(BUY, 0.1, 10.0, 0.0, 0.0, 0, 0)
    b.add(BUY, 0.2, 10.0, 0.0, 0.0, 0, 0)
    done = b.add(SELL, 0.3, 11.0, 0.0, 0.0, 1, 1)  # 0.1 + 0.2 - 0.3 != 0 in binary floats
    assert done is not None and b.pos == 0.0 and b.trip is None


def test_zero_quantity_fills_are_ignored() -> None:
    b = TripBook(0, 0)
    assert b.add(BUY, 0.0, 10.0, 1.0, 0.0, 0, 0) is None
    assert b.trip is None and math.isnan(b.avg_entry_price)


@pytest.mark.parametrize("cut", [1, 57, 133, 250])
def test_trip_book_state_restores_to_an_identical_continuation(cut: int) -> None:
    fills = _random_fills(4)
    books: dict[tuple[int, int], TripBook] = {}
    out_a: list[Trade | None] = []
    for r in fills[:cut]:
        key = (int(r["portfolio"]), int(r["symbol"]))
        books.setdefault(key, TripBook(*key)).add(int(r["side"]), float(r["qty"]), float(r["price"]),
                                                  float(r["fee"]), float(r["slippage_cost"]), int(r["bar"]),
                                                  int(r["ts"]))
    saved = encode_state({"books": [b.state() for _, b in sorted(books.items())]})
    restored = {(b.portfolio, b.symbol): b for b in (TripBook.from_state(list(s))
                                                      for s in decode_state(saved)["books"])}
    out_b: list[Trade | None] = []
    for r in fills[cut:]:
        key = (int(r["portfolio"]), int(r["symbol"]))
        args = (int(r["side"]), float(r["qty"]), float(r["price"]), float(r["fee"]), float(r["slippage_cost"]),
                int(r["bar"]), int(r["ts"]))
        out_a.append(books.setdefault(key, TripBook(*key)).add(*args))
        out_b.append(restored.setdefault(key, TripBook(*key)).add(*args))
    assert out_a == out_b
    for key in books:
        assert books[key].state() == restored[key].state()
