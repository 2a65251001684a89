"""Builders for engine tests: tiny bar sets and order records (NautilusTrader test-kit style)."""

from __future__ import annotations

import numpy as np

from trading_core.engine import ORDER_DTYPE, Engine, FeeTier, MarketModel
from trading_core.engine import enums as E
from trading_core.engine.cpu import ewm_sigma_nb

MIN = 60_000


def bars_from(rows: list[tuple[float, float, float, float]], volume: float = 1e9):
    """rows of (open, high, low, close) for one symbol -> (ts, o, h, l, c, v) with (T, 1) arrays."""
    a = np.asarray(rows, np.float64)
    T = a.shape[0]
    ts = np.arange(T, dtype=np.int64) * MIN
    return ts, a[:, :1], a[:, 1:2], a[:, 2:3], a[:, 3:4], np.full((T, 1), volume)


def order(bar: int = 0, portfolio: int = 0, **kw) -> np.ndarray:
    r = np.zeros(1, ORDER_DTYPE)
    r["portfolio"] = portfolio
    r["bar"] = bar
    for k, v in kw.items():
        r[k] = v
    return r


def orders(*recs: np.ndarray) -> np.ndarray:
    return np.concatenate(recs) if recs else np.zeros(0, ORDER_DTYPE)


def random_market(seed: int, T: int, S: int):
    """A seeded random walk with consistent OHLC, gaps and varying volume; bars (T, S, 5)."""
    g = np.random.default_rng(seed)
    c = 100.0 * np.exp(np.cumsum(g.normal(0, 0.01, (T, S)), 0))
    o = np.vstack([c[:1], c[:-1]]) * np.exp(g.normal(0, 0.004, (T, S)))
    h = np.maximum(o, c) * (1 + g.uniform(0, 0.01, (T, S)))
    lo = np.minimum(o, c) * (1 - g.uniform(0, 0.01, (T, S)))
    v = g.uniform(50, 500, (T, S))
    # round prices to a 0.01 grid so tick rules and equal-touch cases occur
    o, h, lo, c = (np.round(x, 2) for x in (o, h, lo, c))
    h = np.maximum.reduce([h, o, c])
    lo = np.minimum.reduce([lo, o, c])
    ts = np.arange(T, dtype=np.int64) * 3_600_000 * 6  # 6-hour bars: several UTC days -> fee tiers roll
    bars = np.stack([o, h, lo, c, v], axis=2)
    return ts, bars


def random_orders(seed: int, T: int, S: int, P: int, n: int, bars: np.ndarray) -> np.ndarray:
    g = np.random.default_rng(seed + 1000)
    out = np.zeros(n, ORDER_DTYPE)
    for i in range(n):
        p = int(g.integers(P))
        t = int(g.integers(T))
        s = int(g.integers(S))
        ref = float(bars[t, s, 3])
        r = out[i]
        r["portfolio"], r["bar"], r["symbol"] = p, t, s
        u = g.random()
        if u < 0.1 and i > 0:
            r["action"] = E.Action.CANCEL if g.random() < 0.5 else E.Action.REPLACE
            r["order_id"] = int(g.integers(1, 2 * n))
            if r["action"] == E.Action.REPLACE:
                r["limit_price"] = round(ref * (1 + g.normal(0, 0.01)), 2)
            continue
        typ = int(g.integers(0, 8))
        r["type"] = typ
        r["side"] = int(g.integers(2))
        r["tif"] = int(g.choice([0, 0, 0, 1, 2, 3]))
        r["expire_bars"] = int(g.integers(0, 4))
        r["size_mode"] = int(g.choice([0, 0, 0, 1, 2, 3]))
        r["qty"] = float(g.choice([0.5, 1.0, 2.0, 5.0, 20.0, 0.3]))
        sgn = 1 if r["side"] == E.Side.BUY else -1
        r["limit_price"] = round(ref * (1 - sgn * g.uniform(-0.01, 0.02)), 2)
        r["stop_price"] = round(ref * (1 + sgn * g.uniform(-0.01, 0.02)), 2)
        r["trail_amount"] = round(ref * 0.01, 2)
        r["trail_pct"] = 0.01
        if g.random() < 0.2:
            r["sl_price"] = round(ref * (1 - sgn * 0.03), 2)
            r["tp_price"] = round(ref * (1 + sgn * 0.03), 2)
    return out


# The rich model the CUDA-simulator parity scripts run (every rule family on).
CUDA_MODEL = MarketModel(spread_bps=4, slippage_bps=3, impact_coef=0.5, participation_rate=0.3, tick_size=0.01,
                         reject_prob=0.1, touch_fill_prob=0.5, allow_short=True, borrow_rate_annual=0.2,
                         latency_kind="uniform", latency_a=0, latency_b=2, max_open_orders=8,
                         fee_tiers=(FeeTier(0, 10, 20), FeeTier(2_000, 5, 12)))


def record_tuples(recs) -> list[tuple]:
    """Structured records as plain tuples: exact comparison with readable diffs."""
    return [tuple(r.item() for r in row) for row in recs]


def sigma_for(model: MarketModel, bars: np.ndarray) -> np.ndarray | None:
    """The EWM volatility the impact rule reads, as the batch run computes it (None without impact)."""
    if model.impact_coef > 0:
        S = bars.shape[1]
        return ewm_sigma_nb(np.ascontiguousarray(bars[:, :, 3]), model.vol_lambda(), np.zeros(S), np.zeros(S))
    return None


def stream_orders(eng: Engine, ts: np.ndarray, bars: np.ndarray, ords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Feed ``bars`` to a streaming ``Engine`` one bar at a time, submitting each order on its bar:
    the fills sorted by portfolio (batch order) and the equity after every bar."""
    fills, equity = [], []
    for t in range(ts.shape[0]):
        todo = ords[ords["bar"] == t]
        if todo.size:
            eng.submit(todo)
        fills.append(eng.step(int(ts[t]), *(bars[t, :, i] for i in range(5))))
        equity.append(eng.equity)
    f = np.concatenate(fills)
    return f[np.argsort(f["portfolio"], kind="stable")], np.array(equity)
