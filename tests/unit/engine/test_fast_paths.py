"""The compiled fast paths give exactly what the NumPy paths they replace gave."""

from __future__ import annotations

import numpy as np
import pytest

from trading_core.engine import enums as E
from trading_core.engine.results import pack_events, pack_fills
from trading_core.strategies.nb import crossed_above, ema_nb, ma_cross_signals_nb, sma_nb


@pytest.mark.parametrize("chunk", [0, 1, 7, 256])
@pytest.mark.parametrize("kind", ["sma", "ema"])
@pytest.mark.parametrize("T", [1, 2, 300, 1000])
def test_ma_cross_signals_nb_when_grid_with_nans_then_equals_numpy_path(kind: str, T: int, chunk: int) -> None:
    g = np.random.default_rng(3)
    S = 3
    x = 100.0 * np.exp(np.cumsum(g.normal(0.0, 0.002, (T, S)), axis=0))
    if T > 10:
        x[g.integers(0, T, 15), g.integers(0, S, 15)] = np.nan
    pairs = [(2, 5), (3, 7), (5, 7), (2, 3), (10, 50)]
    windows = sorted({w for p in pairs for w in p})
    pos = {w: i for i, w in enumerate(windows)}
    f = sma_nb if kind == "sma" else ema_nb
    ma = {w: f(x.copy(), w) for w in windows}
    fast = np.concatenate([ma[a] for a, _ in pairs], axis=1)
    slow = np.concatenate([ma[b] for _, b in pairs], axis=1)
    ent, ex = ma_cross_signals_nb(x, np.array(windows, np.int64), np.array([pos[a] for a, _ in pairs], np.int64),
                                  np.array([pos[b] for _, b in pairs], np.int64), kind == "ema", chunk)
    np.testing.assert_array_equal(ent, crossed_above(fast, slow))
    np.testing.assert_array_equal(ex, crossed_above(slow, fast))


def _wrap_fills(fi: np.ndarray, ff: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Oracle: the NumPy fancy-indexing wrap the compiled ``pack_fills_nb`` replaced."""
    C = fi.shape[1]
    pi, ci = np.nonzero(np.arange(C)[None, :] < np.minimum(n, C)[:, None])
    out = np.empty(pi.size, E.FILL_DTYPE)
    out["portfolio"] = pi
    a, b = fi[pi, ci], ff[pi, ci]
    for name, col in (("symbol", E.FI_SYM), ("bar", E.FI_BAR), ("ts", E.FI_TS), ("order_id", E.FI_ID),
                      ("side", E.FI_SIDE), ("role", E.FI_ROLE), ("reason", E.FI_REASON), ("order_type", E.FI_TYPE)):
        out[name] = a[:, col]
    for name, col in (("qty", E.FF_QTY), ("price", E.FF_PRICE), ("fee", E.FF_FEE), ("slippage_cost", E.FF_SLIP)):
        out[name] = b[:, col]
    return out


def _wrap_events(ei: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Oracle: the NumPy wrap the compiled ``pack_events_nb`` replaced."""
    C = ei.shape[1]
    pi, ci = np.nonzero(np.arange(C)[None, :] < np.minimum(n, C)[:, None])
    out = np.empty(pi.size, E.EVENT_DTYPE)
    out["portfolio"] = pi
    a = ei[pi, ci]
    for name, col in (("symbol", E.EI_SYM), ("bar", E.EI_BAR), ("ts", E.EI_TS), ("order_id", E.EI_ID),
                      ("kind", E.EI_KIND), ("reason", E.EI_REASON)):
        out[name] = a[:, col]
    return out


def test_pack_fills_and_events_when_ragged_counts_then_equal_wrap() -> None:
    g = np.random.default_rng(5)
    P, C = 4, 6
    fi = g.integers(0, 1000, (P, C, E.N_FI)).astype(np.int64)
    ff = g.random((P, C, E.N_FF))
    ei = g.integers(0, 1000, (P, C, E.N_EI)).astype(np.int64)
    ai = np.zeros((P, E.N_AI), np.int64)
    ai[:, E.AI_NFILL] = [0, 3, 6, 9]  # the last one overflows the buffer: capped like _wrap_fills
    ai[:, E.AI_NEV] = [2, 0, 7, 1]
    a, b = pack_fills(fi, ff, ai), _wrap_fills(fi, ff, ai[:, E.AI_NFILL])
    assert a.tobytes() == b.tobytes()
    a, b = pack_events(ei, ai), _wrap_events(ei, ai[:, E.AI_NEV])
    assert a.tobytes() == b.tobytes()
