"""The model's inputs: scale-free transforms of the stored features and the bars.

Raw indicator levels (an SMA in index points) are not comparable across years, so a model gets
ratios (close / SMA - 1, ATR / close, MACD histogram / close), bounded oscillators (RSI, %b, ADX)
and past returns. Every column at bar t is a function of features and bars at or before t only:
both the dataset (stored features) and the ``ml_signal`` strategy (features computed from the bars
it sees) call ``model_features``, so training and trading use one definition.
"""

from __future__ import annotations

import hashlib

import polars as pl

__all__ = ["CALENDAR_FEATURES", "MODEL_FEATURES", "MODEL_FEATURES_VERSION", "model_features"]

MODEL_FEATURES: tuple[str, ...] = (
    "ret_1", "ret_5", "ret_20", "close_sma_fast", "close_sma_slow", "ema_ratio", "macd_hist_n",
    "rsi", "bb_pctb", "bb_width", "atr_n", "adx", "di_spread", "ma_slope_atr", "rvol", "rvol_pct",
    "day_of_week", "month",
)
CALENDAR_FEATURES = frozenset({"day_of_week", "month"})  # not drift-checked: they cycle
# Bump when a formula below changes; part of every dataset's feature version.
MODEL_FEATURES_VERSION = "mf-1:" + hashlib.sha256(",".join(MODEL_FEATURES).encode()).hexdigest()[:8]


def model_features(features: pl.DataFrame, bars: pl.DataFrame) -> pl.DataFrame:
    """``ts`` + ``MODEL_FEATURES`` for the bars both frames have (sorted by ts); NaN where a
    stored feature is still warming up. ``features``: ts + the stored feature columns;
    ``bars``: canonical OHLCV."""
    c = pl.col("close")
    df = bars.select("ts", "close").sort("ts").join(features, on="ts", how="inner")
    return df.select(
        "ts",
        (c / c.shift(1) - 1).alias("ret_1"),
        (c / c.shift(5) - 1).alias("ret_5"),
        (c / c.shift(20) - 1).alias("ret_20"),
        (c / pl.col("sma_fast") - 1).alias("close_sma_fast"),
        (c / pl.col("sma_slow") - 1).alias("close_sma_slow"),
        (pl.col("ema_fast") / pl.col("ema_slow") - 1).alias("ema_ratio"),
        (pl.col("macd_hist") / c).alias("macd_hist_n"),
        pl.col("rsi"),
        pl.col("bb_pctb"),
        pl.col("bb_width"),
        (pl.col("atr") / c).alias("atr_n"),
        pl.col("adx"),
        (pl.col("plus_di") - pl.col("minus_di")).alias("di_spread"),
        pl.col("ma_slope_atr"),
        pl.col("rvol"),
        pl.col("rvol_pct"),
        pl.col("day_of_week"),
        pl.col("month"),
    ).with_columns(pl.col(MODEL_FEATURES).cast(pl.Float64).fill_null(float("nan")))
