"""Mixed calendars: a 24/7 symbol and a weekday symbol in one portfolio step on the UNION of their
bars (``aligned_bars``; the closed symbol's rows are NaN). Signals are computed on each symbol's
OWN bars (``own_bar_signals``) -- exactly what that symbol alone would give -- and the streaming
twin (``OwnBarsStream``) gives the same flags bar by bar and survives a state round trip."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest

from trading_core.strategies import get_strategy
from trading_core.strategies.base import Bars, OwnBarsStream, aligned_bars, own_bar_signals, signal_stream
from trading_core.strategies.streaming import bar_slices

DAY = 86_400_000
MON = 1_514_764_800_000  # 2018-01-01, a Monday

CASES: list[tuple[str, dict[str, Any]]] = [
    ("ma_crossover", {"fast": 5, "slow": 20}),
    ("ma_crossover", {"kind": "ema", "grid": "3:8,5:20"}),
    ("rsi_mean_reversion", {"window": 7, "lower": 40, "upper": 60}),
    ("macd", {"fast": 5, "slow": 13, "signal": 4}),
    ("bollinger_breakout", {"window": 10, "k": 1}),
]
IDS = [f"{n}-{i}" for i, (n, _) in enumerate(CASES)]


def frame(seed: int, ts: np.ndarray) -> pl.DataFrame:
    g = np.random.default_rng(seed)
    n = ts.shape[0]
    close = 100.0 * np.exp(np.cumsum(g.normal(0.0, 0.02, n)))
    spread = np.abs(g.normal(0.0, 0.01, n)) * close
    high, low = close + spread * g.random(n), close - spread * g.random(n)
    return pl.DataFrame({"ts": ts, "open": low + (high - low) * g.random(n), "high": high, "low": low,
                         "close": close, "volume": g.lognormal(10, 1, n)}).with_columns(
        pl.col("ts").cast(pl.Datetime("ms", "UTC")))


def mixed_frames(days: int = 400) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A crypto frame on every day and an equity frame on weekdays only; the crypto frame also lacks
    two weekdays (an exchange outage) so the union is more than either calendar."""
    every = MON + np.arange(days, dtype=np.int64) * DAY
    weekday = ((every // DAY) + 3) % 7 < 5
    crypto_ts = np.delete(every, [100, 101])  # 2018-04-11/12: Wed/Thu with no crypto bar
    return frame(1, crypto_ts), frame(2, every[weekday])


def test_aligned_bars_is_the_union_with_nan_where_a_symbol_has_no_bar() -> None:
    btc, spx = mixed_frames()
    b = aligned_bars([btc, spx], ("BTC/USD", "^GSPC"))
    union = np.union1d(btc["ts"].dt.epoch("ms").to_numpy(), spx["ts"].dt.epoch("ms").to_numpy())
    np.testing.assert_array_equal(b.ts, union)
    assert b.n_bars == 400 and b.symbols == ("BTC/USD", "^GSPC")
    weekend = ((b.ts // DAY) + 3) % 7 >= 5
    for k in ("open", "high", "low", "close", "volume"):
        x = getattr(b, k)
        assert np.isnan(x[weekend, 1]).all() and not np.isnan(x[~weekend, 1]).any()
        assert np.isnan(x[[100, 101], 0]).all() and np.isnan(x[:, 0]).sum() == 2
    # where a symbol has its bar, it is its own bar unchanged
    for s, f in ((0, btc), (1, spx)):
        own = np.isfinite(b.close[:, s])
        np.testing.assert_array_equal(b.ts[own], f["ts"].dt.epoch("ms").to_numpy())
        np.testing.assert_array_equal(b.close[own, s], f["close"].to_numpy())
        np.testing.assert_array_equal(b.volume[own, s], f["volume"].to_numpy())


def _mixed_bars() -> Bars:
    btc, spx = mixed_frames()
    return aligned_bars([btc, spx], ("BTC/USD", "^GSPC"))


@pytest.mark.parametrize(("name", "params"), CASES, ids=IDS)
def test_own_bar_signals_equal_each_symbol_alone_on_its_own_bars(name: str, params: dict[str, Any]) -> None:
    strategy = get_strategy(name, params)
    btc, spx = mixed_frames()
    bars = aligned_bars([btc, spx], ("BTC/USD", "^GSPC"))
    V, S = len(strategy.variants()), 2
    ent, ex = own_bar_signals(strategy, bars)
    assert ent.shape == ex.shape == (bars.n_bars, V * S)
    for s, f in ((0, btc), (1, spx)):
        own = np.isfinite(bars.close[:, s])
        want_e, want_x = strategy.signals(Bars.from_frame(f, bars.symbols[s]))
        cols = np.arange(V) * S + s
        np.testing.assert_array_equal(ent[np.ix_(own, cols)], want_e)
        np.testing.assert_array_equal(ex[np.ix_(own, cols)], want_x)
        assert not ent[np.ix_(~own, cols)].any() and not ex[np.ix_(~own, cols)].any()  # closed: no signal
    assert ent[:, 1::2].any() and ent[:, 0::2].any(), "both symbols signal at all"


def test_own_bar_signals_without_a_closed_bar_is_the_strategy_unchanged() -> None:
    strategy = get_strategy("ma_crossover", {"fast": 5, "slow": 20})
    bars = _mixed_bars()
    full = np.isfinite(bars.close).all(axis=1)
    both = Bars(ts=bars.ts[full], symbols=bars.symbols,
                **{k: getattr(bars, k)[full] for k in ("open", "high", "low", "close", "volume")})
    got, want = own_bar_signals(strategy, both), strategy.signals(both)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


@pytest.mark.parametrize(("name", "params"), CASES, ids=IDS)
def test_own_bars_stream_equals_batch_and_round_trips_its_state(name: str, params: dict[str, Any]) -> None:
    strategy = get_strategy(name, params)
    bars = _mixed_bars()
    want_e, want_x = own_bar_signals(strategy, bars)
    stream = signal_stream(strategy, 2)
    assert isinstance(stream, OwnBarsStream) and stream.columns == want_e.shape[1]
    cut = 203  # mid-stream, on a Sunday (the equity is closed there)
    assert np.isnan(bars.close[cut - 1, 1])
    resumed: OwnBarsStream | None = None
    for t, b in enumerate(bar_slices(bars)):
        if t == cut:
            resumed = OwnBarsStream(strategy, 2)
            resumed.load_state(stream.state())
        e, x = stream.update(b)
        np.testing.assert_array_equal(e, want_e[t], err_msg=f"entries differ at bar {t}")
        np.testing.assert_array_equal(x, want_x[t], err_msg=f"exits differ at bar {t}")
        if resumed is not None:
            e2, x2 = resumed.update(b)
            np.testing.assert_array_equal(e2, want_e[t], err_msg=f"resumed entries differ at bar {t}")
            np.testing.assert_array_equal(x2, want_x[t], err_msg=f"resumed exits differ at bar {t}")
    assert resumed is not None and want_e.any()


def test_signal_stream_of_one_symbol_is_the_strategys_own_stream() -> None:
    strategy = get_strategy("ma_crossover", {"fast": 5, "slow": 20})
    assert type(signal_stream(strategy, 1)) is type(strategy.stream(1))
