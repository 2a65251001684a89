"""Trailing exits: the stop level series a backtest or paper session turns into stop orders.

The stop follows the most favourable price since entry and never moves back (a ratchet):

* ``percent``: long stop = highest high since entry x (1 - trail_pct); short: lowest low x (1 + p).
* ``atr`` (chandelier exit): long stop = highest high since entry - atr_multiple x ATR;
  short: lowest low + atr_multiple x ATR. ATR is Wilder's (first value: mean true range of
  ``atr_period`` bars; NaN before that, so no stop is placed until the ATR exists).

No look-ahead: ``stop_level`` at bar t uses bar t's high/low/close, so it is known at t's close
and may only act from bar t+1; ``stop_in_force`` is that value shifted one bar, and
``stop_hit`` says whether bar t traded through the stop in force during it. The engine can take
``stop_level`` of the last closed bar as the ``stop_price`` of a STOP order (or use its own
``TRAILING_STOP_PCT`` order type for the percent rule).
"""

from __future__ import annotations

from typing import Literal

import numba
import numpy as np
import polars as pl

from ..errors import InvalidInput
from ..features.indicators import atr as _atr
from .config import TrailingStopConfig

__all__ = ["wilder_atr", "trail_level", "trailing_stop_levels", "trailing_stops"]


def wilder_atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int) -> np.ndarray:
    """Wilder's average true range; NaN for the first ``period - 1`` bars.

    The one ATR of the library, ``trading_core.features.indicators.atr`` (kept under this name for
    the callers that import it from here).
    """
    return _atr(high, low, close, period)


@numba.njit(cache=True)
def trail_level(extreme: float, atr: float, is_long: bool, use_atr: bool, mult: float, pct: float) -> float:
    """The stop candidate for the favourable extreme since entry (NaN while the ATR is unknown)."""
    if use_atr:
        if np.isnan(atr):
            return np.nan
        return extreme - mult * atr if is_long else extreme + mult * atr
    return extreme * (1.0 - pct) if is_long else extreme * (1.0 + pct)


@numba.njit(cache=True)
def _trail_nb(high: np.ndarray, low: np.ndarray, atr: np.ndarray, entries: np.ndarray, is_long: bool,
              use_atr: bool, mult: float, pct: float) -> np.ndarray:
    n = high.shape[0]
    out = np.full(n, np.nan)
    in_pos = False
    extreme = np.nan
    stop = np.nan
    for i in range(n):
        if entries[i]:
            in_pos = True
            extreme = high[i] if is_long else low[i]
            stop = np.nan
        if not in_pos:
            continue
        extreme = max(extreme, high[i]) if is_long else min(extreme, low[i])
        cand = trail_level(extreme, atr[i], is_long, use_atr, mult, pct)
        if np.isnan(cand):
            continue
        if not np.isnan(stop):  # ratchet: never loosen
            cand = max(stop, cand) if is_long else min(stop, cand)
        stop = cand
        out[i] = stop
    return out


def trailing_stop_levels(high: np.ndarray, low: np.ndarray, close: np.ndarray, config: TrailingStopConfig,
                         *, side: Literal["long", "short"] = "long",
                         entries: np.ndarray | None = None) -> np.ndarray:
    """Stop level known at each bar's close (NaN where none); arrays of equal length.

    ``entries`` (bool per bar) restarts the trail at each entry bar; None = one position held
    from the first bar. Levels before the first entry are NaN.
    """
    h, lo, c = (np.ascontiguousarray(np.asarray(a, dtype=np.float64)) for a in (high, low, close))
    if not (h.shape == lo.shape == c.shape) or h.ndim != 1:
        raise InvalidInput("high, low and close must be 1-D arrays of the same length")
    if side not in ("long", "short"):
        raise InvalidInput(f"side must be 'long' or 'short', got {side!r}")
    if entries is None:
        ent = np.zeros(h.shape[0], dtype=np.bool_)
        if h.shape[0]:
            ent[0] = True
    else:
        ent = np.ascontiguousarray(np.asarray(entries, dtype=np.bool_))
        if ent.shape != h.shape:
            raise InvalidInput("entries must have one value per bar")
    use_atr = config.kind == "atr"
    atr = wilder_atr(h, lo, c, config.atr_period) if use_atr else np.full(h.shape[0], np.nan)
    return _trail_nb(h, lo, atr, ent, side == "long", use_atr, float(config.atr_multiple),
                     float(config.trail_pct))


def trailing_stops(bars: pl.DataFrame, config: TrailingStopConfig, *,
                   side: Literal["long", "short"] = "long", entries: np.ndarray | None = None) -> pl.DataFrame:
    """Bars (``ts, high, low, close``) -> ``ts, stop_level, stop_in_force, stop_hit``.

    ``stop_in_force`` is the level acting during bar ts (the previous bar's ``stop_level``);
    ``stop_hit`` is True where that bar's low (long) / high (short) reached it.
    """
    level = trailing_stop_levels(bars["high"].to_numpy(), bars["low"].to_numpy(), bars["close"].to_numpy(),
                                 config, side=side, entries=entries)
    in_force = np.concatenate([[np.nan], level[:-1]]) if level.shape[0] else level
    with np.errstate(invalid="ignore"):
        hit = (bars["low"].to_numpy() <= in_force) if side == "long" else (bars["high"].to_numpy() >= in_force)
    return pl.DataFrame({"ts": bars["ts"], "stop_level": level, "stop_in_force": in_force,
                         "stop_hit": hit}).with_columns(
        pl.col("stop_level").fill_nan(None), pl.col("stop_in_force").fill_nan(None))
