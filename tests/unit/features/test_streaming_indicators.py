"""Per-bar indicator states (features.streaming) equal the batch functions bit for bit.

Fed one bar at a time, every state reproduces its batch function on the same history exactly
(NaN warm-up included), on seeded random walks (with flat stretches, gaps and zero volume) and on
real S&P 500 / BTC bars; and ``state()`` -> ``load_state`` into a fresh state continues exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl
import pytest

from trading_core.features import indicators as ind
from trading_core.features import levels
from trading_core.features import streaming as fs

N_COLS = 3

OHLCV = dict[str, np.ndarray]


def random_walk(seed: int, t: int = 700, cols: int = N_COLS) -> OHLCV:
    """Random-walk OHLCV (t, cols) with flat stretches (repeated closes) and a few zero volumes."""
    g = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(g.normal(0.0, 0.015, (t, cols)), axis=0))
    flat = g.random((t, cols)) < 0.05
    for i in range(1, t):
        close[i, flat[i]] = close[i - 1, flat[i]]
    spread = np.abs(g.normal(0.0, 0.01, (t, cols))) * close
    high = close + spread * g.random((t, cols))
    low = close - spread * g.random((t, cols))
    opn = low + (high - low) * g.random((t, cols))
    vol = g.lognormal(10, 1, (t, cols))
    vol[g.random((t, cols)) < 0.03] = 0.0
    return {"open": opn, "high": high, "low": low, "close": close, "volume": vol}


def real(frame: pl.DataFrame, t: int = 1500) -> OHLCV:
    f = frame.tail(t)
    return {c: f[c].cast(pl.Float64).to_numpy().reshape(-1, 1).copy() for c in
            ("open", "high", "low", "close", "volume")}


def batch_cols(fn: Callable[..., Any], inputs: list[np.ndarray], **kw: Any) -> Any:
    """The batch function per column, stacked to (T, cols) (or a tuple of them)."""
    outs = [fn(*(a[:, j] for a in inputs), **kw) for j in range(inputs[0].shape[1])]
    if isinstance(outs[0], tuple):
        return tuple(np.stack([o[i] for o in outs], axis=-1) for i in range(len(outs[0])))
    if outs[0].ndim == 2:  # fibonacci: (T, R) per column -> (T, cols, R)
        return np.stack(outs, axis=1)
    return np.stack(outs, axis=-1)


def run_stream(make: Callable[[int], Any], inputs: list[np.ndarray], cut: int | None = None,
               extra: Callable[[int], dict[str, Any]] | None = None) -> Any:
    """Feed rows one at a time; with ``cut``, move the state into a fresh one after that row."""
    st = make(inputs[0].shape[1])
    rows: list[Any] = []
    for t in range(inputs[0].shape[0]):
        out = st.update(*(a[t] for a in inputs), **(extra(t) if extra else {}))
        rows.append(tuple(np.array(o, copy=True) for o in out) if isinstance(out, tuple) else out.copy())
        if cut is not None and t == cut:
            snap = st.state()
            st = make(inputs[0].shape[1])
            st.load_state(snap)
    if isinstance(rows[0], tuple):
        return tuple(np.stack([r[i] for r in rows]) for i in range(len(rows[0])))
    return np.stack(rows)


def assert_same(got: Any, want: Any) -> None:
    if isinstance(want, tuple):
        assert isinstance(got, tuple) and len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            assert_same(g, w)
        return
    assert got.shape == want.shape
    # Bit for bit: the same float64 bytes (NaN where NaN).
    assert np.array_equal(got, want, equal_nan=True), f"max diff {np.nanmax(np.abs(got - want))}"
    assert np.array_equal(np.isnan(got), np.isnan(want))


# (name, state factory, batch function, input fields, batch kwargs)
CASES: list[tuple[str, Callable[[int], Any], Callable[..., Any], tuple[str, ...], dict[str, Any]]] = [
    ("sma1", lambda c: fs.SmaState(c, 1), ind.sma, ("close",), {"n": 1}),
    ("sma20", lambda c: fs.SmaState(c, 20), ind.sma, ("close",), {"n": 20}),
    ("ema12", lambda c: fs.EmaState(c, 12), ind.ema, ("close",), {"n": 12}),
    ("ema1", lambda c: fs.EmaState(c, 1), ind.ema, ("close",), {"n": 1}),
    ("wilder", lambda c: fs.WilderState(c, 9), lambda x, n: ind._wilder_nb(np.ascontiguousarray(x), n, 0),
     ("close",), {"n": 9}),
    ("atr", lambda c: fs.AtrState(c), ind.atr, ("high", "low", "close"), {}),
    ("atr5", lambda c: fs.AtrState(c, n=5), ind.atr, ("high", "low", "close"), {"n": 5}),
    ("rsi", lambda c: fs.RsiState(c), ind.rsi, ("close",), {}),
    ("rsi3", lambda c: fs.RsiState(c, n=3), ind.rsi, ("close",), {"n": 3}),
    ("macd", lambda c: fs.MacdState(c), ind.macd, ("close",), {}),
    ("macd5", lambda c: fs.MacdState(c, 3, 7, 4), ind.macd, ("close",), {"fast": 3, "slow": 7, "signal": 4}),
    ("bollinger", lambda c: fs.BollingerState(c), ind.bollinger, ("close",), {}),
    ("bollinger7", lambda c: fs.BollingerState(c, n=7, k=1.5), ind.bollinger, ("close",), {"n": 7, "k": 1.5}),
    ("adx", lambda c: fs.AdxState(c), ind.adx, ("high", "low", "close"), {}),
    ("adx5", lambda c: fs.AdxState(c, n=5), ind.adx, ("high", "low", "close"), {"n": 5}),
    ("ma_slope", lambda c: fs.MaSlopeState(c, 50, 10), ind.ma_slope, ("close",), {"n": 50, "k": 10}),
    ("ma_slope_k1", lambda c: fs.MaSlopeState(c, 3, 1), ind.ma_slope, ("close",), {"n": 3, "k": 1}),
    ("rvol", lambda c: fs.RealisedVolState(c), ind.realised_vol, ("close",), {}),
    ("rvol_h", lambda c: fs.RealisedVolState(c, n=5, periods_per_year=8760.0), ind.realised_vol, ("close",),
     {"n": 5, "periods_per_year": 8760.0}),
    ("percentile", lambda c: fs.RollingPercentileState(c, 30), ind.rolling_percentile, ("close",), {"n": 30}),
    ("highest", lambda c: fs.RollingMaxState(c, 15), ind.rolling_max, ("high",), {"n": 15}),
    ("lowest", lambda c: fs.RollingMinState(c, 15), ind.rolling_min, ("low",), {"n": 15}),
    ("volume_profile", lambda c: fs.VolumeProfileState(c), levels.volume_profile,
     ("high", "low", "close", "volume"), {}),
    ("volume_profile_s", lambda c: fs.VolumeProfileState(c, n=20, bins=8, value_area=0.5), levels.volume_profile,
     ("high", "low", "close", "volume"), {"n": 20, "bins": 8, "value_area": 0.5}),
    ("support_resistance", lambda c: fs.SupportResistanceState(c), levels.support_resistance,
     ("high", "low", "close"), {}),
    ("support_resistance_s", lambda c: fs.SupportResistanceState(c, k=2, n=40, tol=0.02, min_touches=2),
     levels.support_resistance, ("high", "low", "close"), {"k": 2, "n": 40, "tol": 0.02, "min_touches": 2}),
    ("fibonacci", lambda c: fs.FibonacciState(c), levels.fibonacci, ("high", "low"), {}),
    ("fibonacci_s", lambda c: fs.FibonacciState(c, k=2, n=30, ratios=(0.0, 0.5, 1.0)), levels.fibonacci,
     ("high", "low"), {"k": 2, "n": 30, "ratios": (0.0, 0.5, 1.0)}),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize(("name", "make", "batch", "fields", "kw"), CASES, ids=IDS)
@pytest.mark.parametrize("seed", [1, 2])
def test_stream_equals_batch_on_random_walks(name: str, make: Callable[[int], Any], batch: Callable[..., Any],
                                             fields: tuple[str, ...], kw: dict[str, Any], seed: int) -> None:
    data = random_walk(seed)
    inputs = [data[f] for f in fields]
    assert_same(run_stream(make, inputs), batch_cols(batch, inputs, **kw))


@pytest.mark.parametrize(("name", "make", "batch", "fields", "kw"), CASES, ids=IDS)
@pytest.mark.parametrize("series", ["sp500", "btc_1h"])
def test_stream_equals_batch_on_real_bars(name: str, make: Callable[[int], Any], batch: Callable[..., Any],
                                          fields: tuple[str, ...], kw: dict[str, Any], series: str,
                                          request: pytest.FixtureRequest) -> None:
    data = real(request.getfixturevalue(series))
    inputs = [data[f] for f in fields]
    assert_same(run_stream(make, inputs), batch_cols(batch, inputs, **kw))


@pytest.mark.parametrize(("name", "make", "batch", "fields", "kw"), CASES, ids=IDS)
def test_state_round_trip_continues_exactly(name: str, make: Callable[[int], Any], batch: Callable[..., Any],
                                            fields: tuple[str, ...], kw: dict[str, Any]) -> None:
    data = random_walk(7, t=400)
    inputs = [data[f] for f in fields]
    want = batch_cols(batch, inputs, **kw)
    for cut in (0, 5, 37, 260):
        assert_same(run_stream(make, inputs, cut=cut), want)


def test_state_is_plain_values_and_arrays_and_refuses_other_params() -> None:
    st = fs.BollingerState(2, n=10, k=2.0)
    st.update(np.array([1.0, 2.0]))
    snap = st.state()
    assert all(isinstance(v, int | float | tuple | np.ndarray) for v in snap.values())
    snap["ring"][:] = 99.0  # a copy: the state itself is untouched
    assert not (st.ring == 99.0).any()
    with pytest.raises(ValueError, match="n=10"):
        fs.BollingerState(2, n=11).load_state(st.state())
    with pytest.raises(ValueError, match="n_cols"):
        fs.BollingerState(3, n=10).load_state(st.state())


def test_ma_slope_with_scale_equals_batch() -> None:
    data = random_walk(3)
    close, high, low = data["close"], data["high"], data["low"]
    atr = batch_cols(ind.atr, [high, low, close])
    want = np.stack([ind.ma_slope(close[:, j], 20, 5, scale=atr[:, j]) for j in range(N_COLS)], axis=-1)
    got = run_stream(lambda c: fs.MaSlopeState(c, 20, 5), [close], extra=lambda t: {"scale": atr[t]})
    assert_same(got, want)


def test_nan_inputs_follow_the_batch_rules() -> None:
    """A NaN close: SMA is NaN while it is in the window, EMA skips it, as in batch."""
    data = random_walk(4, t=200)
    x = data["close"].copy()
    x[[3, 50, 51, 120], [0, 1, 1, 2]] = np.nan
    for make, fn, kw in ((lambda c: fs.SmaState(c, 10), ind.sma, {"n": 10}),
                         (lambda c: fs.EmaState(c, 10), ind.ema, {"n": 10}),
                         (lambda c: fs.MacdState(c), ind.macd, {}),
                         (lambda c: fs.RollingPercentileState(c, 20), ind.rolling_percentile, {"n": 20}),
                         (lambda c: fs.BollingerState(c), ind.bollinger, {})):
        assert_same(run_stream(make, [x]), batch_cols(fn, [x], **kw))


def test_finite_window_states_cost_is_bounded_by_the_window() -> None:
    """Ring buffers are sized by the window, not by the bars seen."""
    st = fs.SupportResistanceState(2, k=5, n=250)
    for _ in range(600):
        st.update(np.ones(2) * 2, np.ones(2), np.ones(2) * 1.5)
    assert st.rings.shape == (2, 2, 500) and st.count == 600


# ############# One implementation of each indicator ############# #


@pytest.mark.parametrize("window", [1, 2, 5, 20, 50])
def test_strategy_kernels_use_the_features_arithmetic(window: int) -> None:
    """strategies.nb's 2-D SMA/EMA (and the fused crossover kernel) are bit for bit the features'
    ``sma``/``ema`` (one running-sum SMA, one EWM step), NaNs included."""
    from trading_core.strategies.nb import crossed_above, ema_nb, ma_cross_signals_nb, sma_nb

    x = random_walk(9, t=500)["close"]
    x[[10, 11, 200, 333], [0, 1, 1, 2]] = np.nan
    for kernel, fn in ((sma_nb, ind.sma), (ema_nb, ind.ema)):
        assert_same(kernel(x.copy(), window), batch_cols(fn, [x], n=window))
    for is_ema, fn in ((False, ind.sma), (True, ind.ema)):
        fast, slow = batch_cols(fn, [x], n=window), batch_cols(fn, [x], n=window + 7)
        ent, ex = ma_cross_signals_nb(x, np.array([window, window + 7], np.int64), np.array([0], np.int64),
                                      np.array([1], np.int64), is_ema, 64)
        assert np.array_equal(ent, crossed_above(fast, slow)) and np.array_equal(ex, crossed_above(slow, fast))


def test_risk_wilder_atr_is_the_features_atr() -> None:
    from trading_core.risk.trailing import wilder_atr

    d = random_walk(10, t=300, cols=1)
    h, lo, c = (d[f][:, 0] for f in ("high", "low", "close"))
    for n in (1, 3, 14):
        assert_same(wilder_atr(h, lo, c, n), ind.atr(h, lo, c, n))
    assert np.isnan(wilder_atr(h[:5], lo[:5], c[:5], 14)).all()
