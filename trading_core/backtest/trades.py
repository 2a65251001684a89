"""Round trips from the engine's fill records: flat -> position -> flat, per portfolio and symbol.

Built from fills alone (not from engine internals) so the trade list can be re-derived from what
the warehouse stores and checked against the equity curve: the PnL of all trips (open ones marked
at the last close) adds up to the change in equity.
"""

from __future__ import annotations

from dataclasses import dataclass
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


def round_trips(fills: np.ndarray, *, last_close: np.ndarray | float | None = None,
                start_no: int = 0) -> list[Trade]:
    """Round trips of ``fills`` (the engine's FILL_DTYPE records, any portfolios and symbols).

    Fills are replayed in record order within each (portfolio, symbol); a fill that crosses zero
    closes one trip and opens the opposite one, its fee split by quantity. ``last_close`` (scalar,
    or an array indexed by symbol) marks trips still open at the end.
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
        trades.extend(_trips_one(sel, portfolio, symbol, mark, start_no + len(trades)))
    return trades


def _trips_one(fills: np.ndarray, portfolio: int, symbol: int, mark: float | None,
               start_no: int) -> list[Trade]:
    out: list[Trade] = []
    pos = 0.0
    trip: _Trip | None = None
    scale = float(np.abs(fills["qty"]).max()) if fills.size else 1.0
    eps = 1e-12 * max(scale, 1.0)
    for f in fills:
        qty, price = float(f["qty"]), float(f["price"])
        if qty <= 0:
            continue
        signed = qty if int(f["side"]) == BUY else -qty
        bar, ts = int(f["bar"]), int(f["ts"])
        fee, slip = float(f["fee"]), float(f["slippage_cost"])
        if trip is None:
            trip = _Trip(1 if signed > 0 else -1, bar, ts)
        trip.n_fills += 1
        if signed * trip.direction > 0:  # opening or adding
            trip.entry_qty += qty
            trip.entry_value += qty * price
            trip.fees += fee
            trip.slippage += slip
            pos += signed
            continue
        closing = min(qty, abs(pos))
        share = closing / qty
        trip.exit_qty += closing
        trip.exit_value += closing * price
        trip.fees += fee * share
        trip.slippage += slip * share
        pos += signed
        if abs(pos) <= eps:
            pos = 0.0
        if pos == 0.0 or pos * trip.direction < 0:
            trip.exit_bar, trip.exit_ts = bar, ts
            out.append(_finish(trip, portfolio, symbol, start_no + len(out), None))
            trip = None
            if pos != 0.0:  # flipped: the rest of this fill opens the opposite trip
                trip = _Trip(1 if pos > 0 else -1, bar, ts)
                trip.n_fills = 1
                trip.entry_qty = abs(pos)
                trip.entry_value = abs(pos) * price
                trip.fees = fee * (1 - share)
                trip.slippage = slip * (1 - share)
    if trip is not None:
        out.append(_finish(trip, portfolio, symbol, start_no + len(out), mark))
    return out


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
