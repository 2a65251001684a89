"""Builders for the Trader tests: seeded synthetic bars, random signals, configs, event digests.

Everything here is deterministic given its seed, so a subprocess that imports this module
rebuilds exactly the scenario the test process ran (the snapshot tests rely on it).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from trading_core.engine import MarketModel
from trading_core.risk.config import (
    BreakerConfig,
    MarketFilterConfig,
    OrderLimits,
    PortfolioBreakerConfig,
    RiskConfig,
    TrailingStopConfig,
)
from trading_core.strategies import Bars
from trading_core.strategies.filter_config import FilterConfig
from trading_core.trading import Protection, Trader, TraderConfig, bar_slices

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
T0 = 1_600_000_000_000 - (1_600_000_000_000 % DAY_MS)  # a UTC midnight (2020-09-13)


def make_bars(T: int, symbols: tuple[str, ...], *, seed: int, bar_ms: int = HOUR_MS, t0: int = T0,
              vol: float = 0.01, drift: float = 0.0, crash: dict[int, float] | None = None,
              ts: np.ndarray | None = None) -> Bars:
    """Geometric random walks, one per symbol; ``crash`` = {bar: log return} forced on every symbol."""
    rng = np.random.default_rng(seed)
    S = len(symbols)
    r = rng.normal(drift, vol, size=(T, S))
    for t, x in (crash or {}).items():
        r[t, :] = x
    close = 100.0 * np.exp(np.cumsum(r, axis=0))
    prev = np.vstack([close[:1] * np.exp(-r[:1]), close[:-1]])
    open_ = prev * np.exp(rng.normal(0.0, vol / 4, size=(T, S)))
    hi = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, vol / 2, size=(T, S))))
    lo = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, vol / 2, size=(T, S))))
    volume = rng.uniform(500.0, 5_000.0, size=(T, S))
    stamps = np.asarray(ts, np.int64) if ts is not None else t0 + np.arange(T, dtype=np.int64) * bar_ms
    return Bars(ts=stamps, open=open_, high=hi, low=lo, close=close, volume=volume, symbols=symbols)


def random_signals(T: int, C: int, *, seed: int, p_entry: float = 0.08, p_exit: float = 0.08,
                   quiet: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Independent random entry/exit flags (T, C); none in the first ``quiet`` bars."""
    rng = np.random.default_rng(seed)
    ent = rng.random((T, C)) < p_entry
    ex = rng.random((T, C)) < p_exit
    ent[:quiet] = ex[:quiet] = False
    return ent, ex


QUIET_RISK = RiskConfig(market_filter=MarketFilterConfig(enabled=False), breakers=BreakerConfig(enabled=False),
                        orders=OrderLimits(max_price_deviation=1.0, max_adv_fraction=1.0))


def tripping_risk(**portfolio: Any) -> RiskConfig:
    """Risk on, VIX filter off, breakers tight enough to trip on the synthetic crash."""
    pb = dict(daily_loss_reduce=0.01, daily_loss_halt=0.02, cooldown_s=6 * 3600.0)
    pb.update(portfolio)
    return RiskConfig(market_filter=MarketFilterConfig(enabled=False),
                      orders=OrderLimits(max_price_deviation=0.5, max_adv_fraction=1.0),
                      breakers=BreakerConfig(portfolio=PortfolioBreakerConfig(**pb)))


def config(symbols: tuple[str, ...], symbol_of: tuple[int, ...], **kw: Any) -> TraderConfig:
    base: dict[str, Any] = dict(symbols=symbols, symbol_of=symbol_of, model=MarketModel(fee_tiers=_fees(),
                                                                                        slippage_bps=2.0),
                                bar_ms=HOUR_MS, run_id="run")
    base.update(kw)
    return TraderConfig(**base)


def _fees() -> tuple[Any, ...]:
    from trading_core.engine.model import FeeTier

    return (FeeTier(maker_bps=5.0, taker_bps=7.5),)


def run_all(trader: Trader, bars: Bars, start: int = 0, stop: int | None = None) -> list[Any]:
    out: list[Any] = []
    for b in bar_slices(bars)[start:stop]:
        out.extend(trader.on_bar(b))
    return out


def events_json(events: list[Any]) -> str:
    return json.dumps([e.to_dict() for e in events], sort_keys=True, allow_nan=True)


def book_json(trader: Trader) -> str:
    return json.dumps({"equity": [float(x).hex() for x in trader.equity],
                       "cash": [float(x).hex() for x in trader.cash],
                       "positions": [[float(x).hex() for x in row] for row in trader.positions]})


# ---- the snapshot scenario: rebuilt identically in a fresh process ------------------------------
SNAP_SYMBOLS = ("AAA", "BBB")
SNAP_WARM, SNAP_T = 300, 400


def snapshot_scenario(seed: int = 14) -> tuple[TraderConfig, Bars, Bars, np.ndarray, np.ndarray]:
    """2 symbols, 3 accounts (account 0 trades both symbols, 1 and 2 one each), shorting, risk on
    with breakers that trip (daily loss on a crash, losing streaks, volatility rank after the
    warm-up), a percent trailing stop and a min-hold filter. Returns (config, warm-up bars, run
    bars, entries, exits)."""
    allb = make_bars(SNAP_WARM + SNAP_T, SNAP_SYMBOLS, seed=seed, vol=0.006,
                     crash={SNAP_WARM + 150: -0.04, SNAP_WARM + 151: -0.03, SNAP_WARM + 300: -0.05})
    warm, bars = split_bars(allb, SNAP_WARM)
    symbol_of = (0, 1, 0, 1)
    account_of = (0, 0, 1, 2)
    ent, ex = random_signals(SNAP_T, len(symbol_of), seed=seed + 4, p_entry=0.06, p_exit=0.05)
    cfg = config(SNAP_SYMBOLS, symbol_of, account_of=account_of, short=True,
                 model=MarketModel(fee_tiers=_fees(), slippage_bps=2.0, allow_short=True),
                 risk=tripping_risk(), filters=FilterConfig(min_hold_bars=3),
                 protection=Protection(trailing=TrailingStopConfig(kind="percent", trail_pct=0.015)),
                 run_id="snap")
    return cfg, warm, bars, ent, ex


def split_bars(b: Bars, k: int) -> tuple[Bars, Bars]:
    def part(sl: slice) -> Bars:
        return Bars(ts=b.ts[sl], open=b.open[sl], high=b.high[sl], low=b.low[sl], close=b.close[sl],
                    volume=b.volume[sl], symbols=b.symbols)

    return part(slice(0, k)), part(slice(k, None))


def path_bars(close: np.ndarray, *, symbols: tuple[str, ...] = ("X",), volume: float = 100.0,
              low: np.ndarray | None = None, t0: int = T0, bar_ms: int = HOUR_MS) -> Bars:
    """Hand-made bars: each bar opens at the previous close, high/low are the body (``low``
    overrides the low, to reach a resting stop); (T,) or (T, S) closes."""
    c = np.asarray(close, dtype=np.float64)
    c = c.reshape(c.shape[0], -1)
    o = np.vstack([c[:1], c[:-1]])
    lo = np.minimum(o, c) if low is None else np.asarray(low, np.float64).reshape(c.shape)
    return Bars(ts=t0 + np.arange(c.shape[0], dtype=np.int64) * bar_ms, open=o, high=np.maximum(o, c), low=lo,
                close=c, volume=np.full(c.shape, float(volume)), symbols=symbols)


def flags(T: int, C: int, at: dict[int, list[int]] | None = None) -> np.ndarray:
    """(T, C) False with True at ``{bar: [columns]}``."""
    out = np.zeros((T, C), np.bool_)
    for t, cols in (at or {}).items():
        out[t, cols] = True
    return out


FREE = MarketModel(fee_tiers=(_fees()[0].__class__(maker_bps=0.0, taker_bps=0.0),), slippage_bps=0.0)


def collect(trader: Trader, bars: Bars, start: int = 0) -> tuple[list[Any], list[np.ndarray], np.ndarray]:
    """Run the rest of ``bars``: (events, each bar's fills, equity after each bar (T, A))."""
    events: list[Any] = []
    fills: list[np.ndarray] = []
    equity = []
    for b in bar_slices(bars)[start:]:
        events.extend(trader.on_bar(b))
        fills.append(trader.last_fills.copy())
        equity.append(trader.equity)
    return events, fills, np.array(equity)
