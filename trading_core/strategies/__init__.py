"""Trading strategies: the ``Strategy`` interface, a registry, and the built-in rule strategies."""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "Bars": "base",
    "Strategy": "base",
    "StrategyParams": "base",
    "SingleVariantStrategy": "base",
    "as_bars": "base",
    "portfolio_symbols": "base",
    "BollingerBreakout": "bollinger",
    "BollingerMeanReversion": "bollinger",
    "BollingerParams": "bollinger",
    "BuyAndHold": "buy_and_hold",
    "BuyAndHoldParams": "buy_and_hold",
    "FibonacciRetracement": "fibonacci_retracement",
    "FibonacciRetracementParams": "fibonacci_retracement",
    "MaCrossover": "ma_crossover",
    "MaCrossoverParams": "ma_crossover",
    "moving_average": "ma_crossover",
    "Macd": "macd",
    "MacdParams": "macd",
    "STRATEGIES": "registry",
    "get_strategy": "registry",
    "parse_params": "registry",
    "strategy_params_help": "registry",
    "RsiMeanReversion": "rsi_mean_reversion",
    "RsiMeanReversionParams": "rsi_mean_reversion",
    "Seasonality": "seasonality",
    "SeasonalityParams": "seasonality",
    "ExternalIndexSentiment": "sentiment",
    "SentimentFilter": "sentiment",
    "SentimentFilterParams": "sentiment",
    "SentimentProvider": "sentiment",
    "VixSentiment": "sentiment",
    "SupportResistance": "support_resistance",
    "SupportResistanceParams": "support_resistance",
    "VolumeProfile": "volume_profile",
    "VolumeProfileParams": "volume_profile",
    "YamlStrategy": "yaml_builder",
    "YamlStrategyError": "yaml_builder",
    "load_yaml_strategy": "yaml_builder",
    "parse_yaml_strategy": "yaml_builder",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
