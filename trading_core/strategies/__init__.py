"""Trading strategies: the ``Strategy`` interface, a registry, and the built-in rule strategies."""

from .base import Bars, Strategy, StrategyParams, as_bars, portfolio_symbols
from .bollinger import BollingerBreakout, BollingerMeanReversion, BollingerParams
from .buy_and_hold import BuyAndHold, BuyAndHoldParams
from .fibonacci_retracement import FibonacciRetracement, FibonacciRetracementParams
from .ma_crossover import MaCrossover, MaCrossoverParams, moving_average
from .macd import Macd, MacdParams
from .registry import STRATEGIES, get_strategy, parse_params, strategy_params_help
from .rsi_mean_reversion import RsiMeanReversion, RsiMeanReversionParams
from .seasonality import Seasonality, SeasonalityParams
from .sentiment import (
    ExternalIndexSentiment,
    SentimentFilter,
    SentimentFilterParams,
    SentimentProvider,
    VixSentiment,
)
from .support_resistance import SupportResistance, SupportResistanceParams
from .volume_profile import VolumeProfile, VolumeProfileParams
from .yaml_builder import YamlStrategy, YamlStrategyError, load_yaml_strategy, parse_yaml_strategy

__all__ = [
    "STRATEGIES",
    "Bars",
    "BollingerBreakout",
    "BollingerMeanReversion",
    "BollingerParams",
    "BuyAndHold",
    "BuyAndHoldParams",
    "ExternalIndexSentiment",
    "FibonacciRetracement",
    "FibonacciRetracementParams",
    "MaCrossover",
    "MaCrossoverParams",
    "Macd",
    "MacdParams",
    "RsiMeanReversion",
    "RsiMeanReversionParams",
    "Seasonality",
    "SeasonalityParams",
    "SentimentFilter",
    "SentimentFilterParams",
    "SentimentProvider",
    "Strategy",
    "StrategyParams",
    "SupportResistance",
    "SupportResistanceParams",
    "VixSentiment",
    "VolumeProfile",
    "VolumeProfileParams",
    "YamlStrategy",
    "YamlStrategyError",
    "as_bars",
    "get_strategy",
    "load_yaml_strategy",
    "moving_average",
    "parse_params",
    "parse_yaml_strategy",
    "portfolio_symbols",
    "strategy_params_help",
]
