"""Backtests: a validated request, the runner over the engine, round trips, and the stored result.

Exports are lazy (``trading_core._lazy``): ``from trading_core.backtest import BacktestRequest``
imports only the pydantic request, so the CLI validates arguments before the runner's Numba
kernels, Polars and DuckDB are imported."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .request import BacktestRequest, calendar_for_venue, parse_slippage
    from .runner import BacktestResult, PortfolioResult, build_market_model, check_lot_size, run_backtest
    from .trades import Trade, round_trips

_EXPORTS = {
    "BacktestRequest": "request",
    "calendar_for_venue": "request",
    "parse_slippage": "request",
    "BacktestResult": "runner",
    "PortfolioResult": "runner",
    "build_market_model": "runner",
    "check_lot_size": "runner",
    "run_backtest": "runner",
    "Trade": "trades",
    "round_trips": "trades",
}

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

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
