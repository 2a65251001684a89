"""Round trips from the engine's fill records: flat -> position -> flat, per portfolio and symbol.

One builder (``TripBook``) and one ``Trade`` type serve the Trader (a trip's PnL feeds the
losing-streak breaker the bar it closes), backtest reports and the engine's ``SimResult.trades``.

Built from fills alone (not from engine internals) so the trade list can be re-derived from what
the warehouse stores and checked against the equity curve: the PnL of all trips (open ones marked
at the last close) adds up to the change in equity.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

# Side codes of the engine's fill records (trading_core.engine.enums.Side).
BUY, SELL = 0, 1


@dataclass(frozen=True)
class Trade:
    """One round trip. Prices are quantity-weighted averages of the fills on each side.

    ``pnl`` is net of every fee of the trip; slippage is already inside the fill prices (it is
    reported separately, never subtracted twice). An open trip (``exit_ts`` None) is marked at the
    last close: its ``exit_price`` is None and ``pnl`` is unrealised.
    """

    trade_no: int
    portfolio: int
    symbol: int
    side: str
    entry_ts: datetime
    exit_ts: datetime | None
    entry_bar: int
    exit_bar: int | None
    entry_price: float
    exit_price: float | None
    quantity: float
    fees: float
    slippage: float
    pnl: float
    return_pct: float
    n_fills: int

    @property
    def is_open(self) -> bool:
        return self.exit_ts is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "trade_no": self.trade_no, "portfolio": self.portfolio, "symbol": self.symbol,
            "side": self.side, "status": "open" if self.is_open else "closed",
            "entry_ts": self.entry_ts.isoformat(),
            "exit_ts": self.exit_ts.isoformat() if self.exit_ts else None,
            "entry_bar": self.entry_bar, "exit_bar": self.exit_bar,
            "entry_price": self.entry_price, "exit_price": self.exit_price,
            "quantity": self.quantity, "fees": self.fees, "slippage": self.slippage,
            "pnl": self.pnl, "return_pct": self.return_pct, "n_fills": self.n_fills,
        }


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(int(ms) / 1000.0, tz=UTC)


class _Trip:
    __slots__ = ("direction", "entry_qty", "entry_value", "exit_qty", "exit_value", "fees", "slippage",
                 "entry_bar", "entry_ts", "exit_bar", "exit_ts", "n_fills")

    def __init__(self, direction: int, bar: int, ts: int) -> None:
        self.direction = direction
        self.entry_qty = self.entry_value = self.exit_qty = self.exit_value = 0.0
        self.fees = self.slippage = 0.0
        self.entry_bar, self.entry_ts = bar, ts
        self.exit_bar: int | None = None
        self.exit_ts: int | None = None
        self.n_fills = 0

    def state(self) -> list[Any]:
        return [getattr(self, k) for k in self.__slots__]

    @classmethod
    def from_state(cls, values: list[Any]) -> _Trip:
        t = cls(1, 0, 0)
        for k, v in zip(cls.__slots__, values, strict=True):
            setattr(t, k, v)
        return t


class TripBook:
    """The one round-trip builder: fills of one (portfolio, symbol) in execution order -> trips.

    A fill that crosses zero closes one trip and opens the opposite one, its fee split by
    quantity. Streaming (a Trader adds each bar's fills and learns the PnL of a trip the moment it
    closes) and batch (``round_trips``) are the same code. ``state()`` restores exactly.
    """

    __slots__ = ("portfolio", "symbol", "pos", "max_qty", "trip", "closed")

    def __init__(self, portfolio: int, symbol: int) -> None:
        self.portfolio, self.symbol = int(portfolio), int(symbol)
        self.pos = 0.0
        self.max_qty = 1.0  # scale of the zero test: a residual below 1e-12 of the largest fill is flat
        self.trip: _Trip | None = None
        self.closed = 0  # trips closed so far (their numbers)

    def add(self, side: int, qty: float, price: float, fee: float, slippage: float, bar: int,
            ts: int) -> Trade | None:
        """Fold one fill in; the trip it closed, if any."""
        if qty <= 0:
            return None
        self.max_qty = max(self.max_qty, qty)
        signed = qty if side == BUY else -qty
        trip = self.trip
        if trip is None:
            trip = self.trip = _Trip(1 if signed > 0 else -1, bar, ts)
        trip.n_fills += 1
        if signed * trip.direction > 0:  # opening or adding
            trip.entry_qty += qty
            trip.entry_value += qty * price
            trip.fees += fee
            trip.slippage += slippage
            self.pos += signed
            return None
        closing = min(qty, abs(self.pos))
        share = closing / qty
        trip.exit_qty += closing
        trip.exit_value += closing * price
        trip.fees += fee * share
        trip.slippage += slippage * share
        self.pos += signed
        if abs(self.pos) <= 1e-12 * self.max_qty:
            self.pos = 0.0
        if not (self.pos == 0.0 or self.pos * trip.direction < 0):
            return None
        trip.exit_bar, trip.exit_ts = bar, ts
        done = _finish(trip, self.portfolio, self.symbol, self.closed, None)
        self.closed += 1
        self.trip = None
        if self.pos != 0.0:  # flipped: the rest of this fill opens the opposite trip
            nt = self.trip = _Trip(1 if self.pos > 0 else -1, bar, ts)
            nt.n_fills = 1
            nt.entry_qty = abs(self.pos)
            nt.entry_value = abs(self.pos) * price
            nt.fees = fee * (1 - share)
            nt.slippage = slippage * (1 - share)
        return done

    def open_trade(self, mark: float | None) -> Trade | None:
        """The trip still open, marked at ``mark`` (None: at its entry price)."""
        if self.trip is None:
            return None
        return _finish(self.trip, self.portfolio, self.symbol, self.closed, mark)

    @property
    def avg_entry_price(self) -> float:
        t = self.trip
        return t.entry_value / t.entry_qty if t is not None and t.entry_qty > 0 else float("nan")

    def state(self) -> list[Any]:
        return [self.portfolio, self.symbol, self.pos, self.max_qty,
                None if self.trip is None else self.trip.state(), self.closed]

    @classmethod
    def from_state(cls, s: list[Any]) -> TripBook:
        b = cls(s[0], s[1])
        b.pos, b.max_qty = float(s[2]), float(s[3])
        b.trip = None if s[4] is None else _Trip.from_state(list(s[4]))
        b.closed = int(s[5])
        return b


def round_trips(fills: np.ndarray, *, last_close: np.ndarray | float | None = None,
                start_no: int = 0) -> list[Trade]:
    """Round trips of ``fills`` (the engine's FILL_DTYPE records, any portfolios and symbols).

    Fills are replayed in record order within each (portfolio, symbol) through ``TripBook``.
    ``last_close`` (scalar, or an array indexed by symbol) marks trips still open at the end.
    """
    trades: list[Trade] = []
    if fills.size == 0:
        return trades
    keys = sorted({(int(p), int(s)) for p, s in zip(fills["portfolio"], fills["symbol"], strict=True)})
    for portfolio, symbol in keys:
        sel = fills[(fills["portfolio"] == portfolio) & (fills["symbol"] == symbol)]
        mark = None
        if last_close is not None:
            mark = float(np.asarray(last_close, dtype=np.float64).reshape(-1)[symbol]) if np.ndim(
                last_close) else float(last_close)  # type: ignore[arg-type]
        book = TripBook(portfolio, symbol)
        out: list[Trade] = []
        for f in sel:
            done = book.add(int(f["side"]), float(f["qty"]), float(f["price"]), float(f["fee"]),
                            float(f["slippage_cost"]), int(f["bar"]), int(f["ts"]))
            if done is not None:
                out.append(done)
        last = book.open_trade(mark)
        if last is not None:
            out.append(last)
        base = start_no + len(trades)
        trades.extend(replace(t, trade_no=base + i) for i, t in enumerate(out))
    return trades


def _finish(t: _Trip, portfolio: int, symbol: int, no: int, mark: float | None) -> Trade:
    open_qty = t.entry_qty - t.exit_qty if t.exit_ts is None else 0.0
    mark_value = open_qty * mark if (mark is not None and open_qty > 0) else 0.0
    if t.exit_ts is None and mark is None:
        mark_value = open_qty * (t.entry_value / t.entry_qty)
    gross = t.direction * (t.exit_value + mark_value - t.entry_value)
    pnl = gross - t.fees
    return Trade(
        trade_no=no, portfolio=portfolio, symbol=symbol, side="long" if t.direction > 0 else "short",
        entry_ts=_dt(t.entry_ts), exit_ts=_dt(t.exit_ts) if t.exit_ts is not None else None,
        entry_bar=t.entry_bar, exit_bar=t.exit_bar,
        entry_price=t.entry_value / t.entry_qty,
        exit_price=(t.exit_value / t.exit_qty) if (t.exit_ts is not None and t.exit_qty > 0) else None,
        quantity=t.entry_qty, fees=t.fees, slippage=t.slippage, pnl=pnl,
        return_pct=pnl / t.entry_value if t.entry_value > 0 else 0.0, n_fills=t.n_fills,
    )
