"""Backtests: a validated request, the runner over the engine, round trips, and the stored result."""

from .request import BacktestRequest, calendar_for_venue, parse_slippage
from .runner import BacktestResult, PortfolioResult, build_market_model, check_lot_size, run_backtest
from .trades import Trade, round_trips

__all__ = [
    "BacktestRequest",
    "BacktestResult",
    "PortfolioResult",
    "Trade",
    "build_market_model",
    "calendar_for_venue",
    "check_lot_size",
    "parse_slippage",
    "round_trips",
    "run_backtest",
]
