"""Round trips of a backtest: the one builder lives with the trading loop (``trading.trips``)."""

from __future__ import annotations

from ..trading.trips import BUY, SELL, Trade, TripBook, round_trips

__all__ = ["BUY", "SELL", "Trade", "TripBook", "round_trips"]
