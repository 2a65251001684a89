"""Compile (or load from the on-disk cache) every kernel before the first real bar."""

from __future__ import annotations

import numpy as np

from trading_core.engine import enums as E
from trading_core.engine.batch import simulate_signals
from trading_core.engine.model import MarketModel
from trading_core.engine.stream import Engine


def warmup(device: str = "cpu") -> None:
    """Compile (or load from cache) every kernel on tiny inputs so a paper session's first bar is fast."""
    T, P = 4, 2
    ts = np.arange(T, dtype=np.int64) * 60_000
    c = np.full((T, 1), 100.0)
    ent = np.zeros((T, P), np.bool_)
    ent[0] = True
    ex = np.zeros((T, P), np.bool_)
    ex[2] = True
    for m in (MarketModel(fill_at="close"), MarketModel(participation_rate=0.5, impact_coef=0.1)):
        simulate_signals(ts, c, c, c, c, c * 10, entries=ent, exits=ex, model=m, device=device)
        simulate_signals(ts, c, c, c, c, c * 10, entries=ent[:, :1], exits=ex[:, :1], model=m, device=device)
    eng = Engine(1, 1, MarketModel(), device=device)
    eng.submit_limit(0, 0, E.Side.BUY, 1.0, 99.0)
    one = np.ones(1)
    eng.step(0, 100.0 * one, 101.0 * one, 98.0 * one, 100.0 * one, 1e6 * one)
