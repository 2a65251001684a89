"""The streaming contract for every registered strategy (YAML rules: test_yaml_streaming.py).

Fed one bar at a time, ``strategy.stream(S)`` gives at each bar exactly row t of the batch
``strategy.signals(bars)`` on the same history (seeded random-walk OHLCV, 2 symbols, 600 bars,
default and non-default/grid parameters); ``state()`` -> ``load_state`` into a fresh stream at a
few seeded bars continues identically; the state is plain values and arrays and does not grow
with the bars fed (no recomputation over a growing history).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl
import pytest

from trading_core.strategies import STRATEGIES, Bars, get_strategy
from trading_core.strategies.sentiment import SentimentFilter, SentimentFilterParams
from trading_core.strategies.streaming import SignalStream, bar_slices, stream_signals

SKIP = {"yaml", "ml_signal"}  # covered by test_yaml_streaming.py and tests/integration/test_models_registry.py

MEMBERS = ('[{"name": "rsi_mean_reversion", "params": {"window": 7, "lower": 40, "upper": 60}}, '
           '{"name": "bollinger_breakout", "params": {"window": 10, "k": 1}}, '
           '{"name": "macd", "params": {"fast": 5, "slow": 13, "signal": 4}}]')
MAPPING = ('{"trending_up": ["ma_crossover", {"name": "macd", "params": {"fast": 5, "slow": 13, "signal": 4}}], '
           '"trending_down": [{"name": "rsi_mean_reversion", "params": {"window": 5, "lower": 40, "upper": 55}}], '
           '"ranging": [{"name": "bollinger_mean_reversion", "params": {"window": 10}}, '
           '{"name": "volume_profile", "params": {"window": 30}}], "high_vol_stress": ["buy_and_hold"]}')

# At least one non-default parameter set per built-in strategy; a new strategy gets {} only
# (and a test below asks for more).
PARAMS: dict[str, list[dict[str, Any]]] = {
    "buy_and_hold": [{}],
    "ma_crossover": [{}, {"grid": "3:8,5:20,8:20,20:60"}, {"kind": "ema", "grid": "3:8,5:20,12:26"},
                     {"kind": "ema"}],
    "rsi_mean_reversion": [{}, {"grid": "7:40:60,14:35:65,7:30:70", "max_bars": "6"}, {"window": 3, "max_bars": 1}],
    "macd": [{}, {"grid": "12:26:9,5:13:4", "threshold": "0.002"}],
    "bollinger_mean_reversion": [{}, {"grid": "10:1,20:2.5,5:0.5"}],
    "bollinger_breakout": [{}, {"grid": "10:1,20:1.5"}],
    "support_resistance": [{}, {"mode": "breakout", "pivot_k": 2, "lookback": 40, "tolerance": 0.0},
                           {"pivot_k": 2, "lookback": 60, "min_touches": 2, "cluster_tol": 0.02}],
    "fibonacci_retracement": [{}, {"level": 0.5, "pivot_k": 2, "lookback": 40, "confirm_bullish": "false"},
                              {"level": 0.382, "pivot_k": 3, "lookback": 30}],
    "volume_profile": [{}, {"window": 20, "bins": 8, "value_area": 0.5, "stop_pct": 0.01}],
    "seasonality": [{}, {"days": "mon-wed,fri", "hours": "6-17"}, {"days": "tue,thu", "anticipate": "true"},
                    {"months": "feb-mar", "hours": "0,12", "anticipate": "true"}],
    "sentiment_filter": [{}, {"inner": "macd", "inner_params": "fast=5;slow=13;signal=4", "min_score": 0.3,
                              "exit_on_risk_off": "true"},
                         {"inner": "ma_crossover", "inner_params": "grid=3:8,5:20"}],
    "ensemble": [{}, {"members": MEMBERS, "lookback": 20, "scheme": "positive", "floor": 0.1, "cap": 0.8,
                      "entry_threshold": 0.4, "exit_threshold": 0.2},
                 {"members": MEMBERS, "lookback": 10, "temperature": 0.05}],
    "regime_rotation": [{}, {"mapping": MAPPING, "exit_on_switch": "false"}, {"mapping": MAPPING}],
}

CASES = [(name, i, p) for name in STRATEGIES if name not in SKIP for i, p in enumerate(PARAMS.get(name, [{}]))]
IDS = [f"{n}-{i}" for n, i, _ in CASES]

T, S = 600, 2
T0 = datetime(2020, 1, 6, tzinfo=UTC)  # a Monday


def random_bars(seed: int, t: int = T, s: int = S) -> Bars:
    """Random-walk OHLCV with trends, flat stretches and zero volumes; 6-hourly bars with gaps."""
    g = np.random.default_rng(seed)
    drift = np.repeat(g.normal(0, 0.004, (t // 100 + 1, s)), 100, axis=0)[:t]
    close = 100.0 * np.exp(np.cumsum(drift + g.normal(0.0, 0.012, (t, s)), axis=0))
    flat = g.random((t, s)) < 0.04
    for i in range(1, t):
        close[i, flat[i]] = close[i - 1, flat[i]]
    spread = np.abs(g.normal(0.0, 0.008, (t, s))) * close
    high = close + spread * g.random((t, s))
    low = close - spread * g.random((t, s))
    opn = low + (high - low) * g.random((t, s))
    vol = g.lognormal(10, 1, (t, s))
    vol[g.random((t, s)) < 0.03] = 0.0
    step = np.where(g.random(t) < 0.05, 86_400_000 * g.integers(1, 3, t), 6 * 3_600_000)
    ts = int(T0.timestamp() * 1000) + np.concatenate([[0], np.cumsum(step[1:])]).astype(np.int64)
    return Bars(ts=ts, open=opn, high=high, low=low, close=close, volume=vol, symbols=("A", "B"))


class FakeSentiment:
    """A sentiment index published every 19 hours (so its stamps fall inside bars), seeded."""

    def __init__(self, seed: int = 5) -> None:
        g = np.random.default_rng(seed)
        start = int(datetime(2019, 6, 1, tzinfo=UTC).timestamp() * 1000)
        self.ts = start + np.arange(900, dtype=np.int64) * 19 * 3_600_000
        self.value = np.sin(np.arange(900) / 9.0) + g.normal(0, 0.3, 900)  # the gate opens and closes
        self.calls: list[tuple[datetime, datetime]] = []

    def series(self, start: datetime, end: datetime) -> pl.DataFrame:
        self.calls.append((start, end))
        df = pl.DataFrame({"ts": self.ts, "value": self.value}).with_columns(
            pl.col("ts").cast(pl.Datetime("ms", "UTC")))
        return df.filter((pl.col("ts") >= start) & (pl.col("ts") < end))


def build(name: str, params: dict[str, Any]) -> Any:
    if name == "sentiment_filter":
        p = get_strategy(name, params).params
        assert isinstance(p, SentimentFilterParams)
        return SentimentFilter(p, provider=FakeSentiment())
    return get_strategy(name, params)


def assert_equal_signals(got: tuple[np.ndarray, np.ndarray], want: tuple[np.ndarray, np.ndarray], what: str) -> None:
    for g, w, kind in zip(got, want, ("entries", "exits"), strict=True):
        assert g.shape == w.shape and g.dtype == np.bool_
        bad = np.argwhere(g != w)
        assert bad.size == 0, f"{what}: {kind} differ first at (bar, column) {tuple(bad[0])}"


def test_every_builtin_strategy_has_a_non_default_case() -> None:
    for name in STRATEGIES:
        if name not in SKIP and name != "buy_and_hold":
            assert len(PARAMS.get(name, [])) >= 2, f"{name}: add a non-default parameter set to PARAMS"


@pytest.mark.parametrize(("name", "i", "params"), CASES, ids=IDS)
def test_stream_equals_batch_signals(name: str, i: int, params: dict[str, Any]) -> None:
    s = build(name, params)
    bars = random_bars(11 + i)
    want = s.signals(bars)
    stream = s.stream(S)
    assert isinstance(stream, SignalStream)
    assert stream.columns == want[0].shape[1] == len(s.variants()) * S
    got = stream_signals(stream, bars)
    assert_equal_signals(got, want, f"{name} {params}")
    assert want[0].any(), f"{name} {params}: no entries at all, a weak test"


@pytest.mark.parametrize(("name", "i", "params"), CASES, ids=IDS)
def test_state_round_trip_continues_identically(name: str, i: int, params: dict[str, Any]) -> None:
    s = build(name, params)
    bars = random_bars(23 + i)
    want = s.signals(bars)
    cuts = sorted(np.random.default_rng(i).choice(np.arange(1, T - 1), 3, replace=False).tolist())
    stream = s.stream(S)
    ent = np.zeros_like(want[0])
    ex = np.zeros_like(want[1])
    for t, bar in enumerate(bar_slices(bars)):
        ent[t], ex[t] = stream.update(bar)
        if t in cuts:
            snap = stream.state()
            assert_plain(snap)
            stream = build(name, params).stream(S)  # a fresh strategy, as after a restart
            stream.load_state(snap)
    assert_equal_signals((ent, ex), want, f"{name} {params} (restored at {cuts})")


def assert_plain(v: Any) -> None:
    if isinstance(v, dict):
        for k, x in v.items():
            assert isinstance(k, str)
            assert_plain(x)
    elif isinstance(v, list | tuple):
        for x in v:
            assert_plain(x)
    else:
        assert v is None or isinstance(v, bool | int | float | str | np.ndarray | np.generic), type(v)


def _nbytes(state: dict[str, Any]) -> int:
    return sum(np.asarray(v).nbytes for v in state.values())


@pytest.mark.parametrize(("name", "i", "params"), [c for c in CASES if c[1] == 0], ids=[
    i for c, i in zip(CASES, IDS, strict=True) if c[1] == 0])
def test_state_does_not_grow_with_the_bars_fed(name: str, i: int, params: dict[str, Any]) -> None:
    bars = random_bars(3)
    stream = build(name, params).stream(S)
    sizes = {}
    for t, bar in enumerate(bar_slices(bars)):
        stream.update(bar)
        if t + 1 in (300, 600):
            sizes[t + 1] = _nbytes(stream.state())
    if name == "sentiment_filter":  # holds the values fetched ahead (a bounded chunk)
        assert sizes[600] < 4 * sizes[300] + 100_000
    else:
        assert sizes[600] == sizes[300], sizes


def test_stream_of_the_first_bars_equals_batch_on_a_short_history() -> None:
    """Before any warm-up is over (fewer bars than the windows) streams and batch agree too."""
    bars = random_bars(8, t=12)
    for name, _, params in CASES:
        s = build(name, params)
        assert_equal_signals(stream_signals(s.stream(S), bars), s.signals(bars), f"{name} {params} short")
