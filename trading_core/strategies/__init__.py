"""Trading strategies: the ``Strategy`` interface, a registry, and the built-in rule strategies."""

from .base import Bars, Strategy, StrategyParams, as_bars, portfolio_symbols
from .buy_and_hold import BuyAndHold, BuyAndHoldParams
from .ma_crossover import MaCrossover, MaCrossoverParams, moving_average
from .registry import STRATEGIES, get_strategy, parse_params, strategy_params_help

__all__ = [
    "STRATEGIES",
    "Bars",
    "BuyAndHold",
    "BuyAndHoldParams",
    "MaCrossover",
    "MaCrossoverParams",
    "Strategy",
    "StrategyParams",
    "as_bars",
    "get_strategy",
    "moving_average",
    "parse_params",
    "portfolio_symbols",
    "strategy_params_help",
]
