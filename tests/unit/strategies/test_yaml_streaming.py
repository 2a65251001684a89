"""YAML rule strategies one bar at a time: ``stream(n)`` equals the batch ``signals`` bit for bit,
on every shipped file and on rules covering every indicator, prev(), crossings, bars_held and
stops; a ``state()`` snapshot restored into a fresh stream continues identically; the per-bar
state stays bounded (no recompute over the growing history)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from trading_core.config import PROJECT_ROOT
from trading_core.strategies import Bars, load_yaml_strategy, parse_yaml_strategy
from trading_core.strategies.streaming import SignalStream, bar_slices, stream_signals
from trading_core.strategies.yaml_builder import _FNS, YamlStrategy

SEEDS = (1, 7, 11)
FILES = sorted((PROJECT_ROOT / "config" / "strategies").glob("*.yaml"))


def _bars(seed: int, n_bars: int = 600, n_symbols: int = 2) -> Bars:
    """Seeded random walk with volatility regimes (squeezes and sharp moves both happen)."""
    rng = np.random.default_rng(seed)
    vol = rng.choice([0.002, 0.006, 0.02], size=(n_bars // 40 + 1, n_symbols))[np.arange(n_bars) // 40]
    c = 100 * np.exp(np.cumsum(rng.normal(0.0015, 1, (n_bars, n_symbols)) * vol, axis=0))
    o = c * np.exp(rng.normal(0, 1, (n_bars, n_symbols)) * vol / 3)
    h = np.maximum(o, c) * (1 + rng.uniform(0, 1, (n_bars, n_symbols)) * vol)
    lo = np.minimum(o, c) * (1 - rng.uniform(0, 1, (n_bars, n_symbols)) * vol)
    v = rng.uniform(1, 100, (n_bars, n_symbols))
    return Bars(ts=np.arange(n_bars, dtype=np.int64) * 3_600_000, open=o, high=h, low=lo, close=c, volume=v,
                symbols=tuple(f"S{i}" for i in range(n_symbols)))


RULES: dict[str, str] = {
    "momentum": """\
name: momentum
indicators:
  s10: {fn: sma, window: 10}
  e20: {fn: ema, window: 20, source: high}
  r7: {fn: rsi, window: 7}
  m_line: {fn: macd, fast: 5, slow: 13, signal: 4, output: line}
  m_sig: {fn: macd, fast: 5, slow: 13, signal: 4, output: signal}
  m_hist: {fn: macd, fast: 5, slow: 13, signal: 4}
entry: "crosses_above(m_line, m_sig) and r7 < 70 or crosses_above(s10, e20)"
exit: "crosses_below(m_hist, 0) or r7 > 80 or bars_held >= 15"
stop_loss_pct: 0.01
take_profit_pct: 0.02
""",
    "bands": """\
name: bands
indicators:
  bm: {fn: bollinger, window: 15, k: 1.5, output: mid}
  bu: {fn: bollinger, window: 15, k: 1.5, output: upper}
  bl: {fn: bollinger, window: 15, k: 1.5, output: lower}
  bp: {fn: bollinger, window: 15, k: 1.5, output: pctb}
  bw: {fn: bollinger, window: 15, k: 1.5, output: width}
  a: {fn: atr, window: 10}
  ad: {fn: adx, window: 7}
  pdi: {fn: adx, window: 7, output: plus_di}
  mdi: {fn: adx, window: 7, output: minus_di}
entry: "(bp < 0.1 or close < bl) and pdi > mdi - 5 and ad > 10 and bw > 0"
exit: >-
  close > bu or close > bm + 0.5 * a
  or bars_held > 4 and bars_held <= 8 and close < prev(close, 3) or bars_held == 12
""",
    "breakout": """\
name: breakout
indicators:
  sl: {fn: ma_slope, window: 20, k: 3}
  rv: {fn: realised_vol, window: 10, periods_per_year: 365}
  pc: {fn: percentile, window: 30, source: volume}
  hi: {fn: highest, window: 20, source: high}
  lo: {fn: lowest, window: 20, source: low}
entry: "close >= prev(hi, 1) and sl > 0 and pc > 0.3 and rv < 2"
exit: "close <= prev(lo, 1) or crosses_below(close, prev(prev(close, 2), 3)) or not sl > -0.0005"
""",
    "levels": """\
name: levels
indicators:
  poc: {fn: volume_profile, window: 50, bins: 12, output: poc}
  vah: {fn: volume_profile, window: 50, bins: 12, output: vah}
  val: {fn: volume_profile, window: 50, bins: 12, value_area: 0.5, output: val}
  sup: {fn: support_resistance, pivot_k: 3, window: 60, tol: 0.02, output: support}
  res: {fn: support_resistance, pivot_k: 3, window: 60, min_touches: 2, output: resistance}
  fib: {fn: fibonacci, pivot_k: 4, window: 80, ratio: 0.5}
entry: "crosses_above(close, val) or close < fib and close > sup or crosses_above(close, res)"
exit: "close > vah or crosses_below(close, poc) and bars_held >= 2 or bars_held >= 10"
take_profit_pct: 0.015
""",
    "arithmetic": """\
name: arithmetic
indicators:
  hi3: {fn: highest, window: 3, source: open}
entry: >-
  1 < prev(close, 1) / prev(close, 2) < 1.02 and true
  and abs(close - open) >= min(high - low, 0.5) * 0.5 and -close < -(+50) and not false
exit: "max(close, open) > prev(hi3, 1) or false or 0 < bars_held < 3 and close < open - 0.1"
stop_loss_pct: 0.004
""",
    "chained_atoms": """\
name: chained_atoms
entry: "crosses_below(prev(close, 1), close) and close > open"
exit: "3 <= bars_held < 5 and close < prev(close, 1) or bars_held > 6 and crosses_above(open, close)"
""",
}


def _strategies() -> list[tuple[str, YamlStrategy]]:
    out = [(f.name, load_yaml_strategy(f)) for f in FILES]
    out += [(k, YamlStrategy(spec=parse_yaml_strategy(text, f"{k}.yaml"))) for k, text in RULES.items()]
    return out


STRATEGIES = _strategies()
IDS = [k for k, _ in STRATEGIES]


def test_rules_when_listed_then_cover_every_indicator_and_file() -> None:
    used = {i.fn for _, s in STRATEGIES for i in s.spec.indicators.values()}
    assert used == set(_FNS)
    outputs = {(i.fn, getattr(i.params, "output", None)) for _, s in STRATEGIES for i in s.spec.indicators.values()}
    for fn, (model, _) in _FNS.items():
        field = model.model_fields.get("output")
        if field is not None:
            assert {o for f, o in outputs if f == fn} == set(field.annotation.__args__)  # type: ignore[union-attr]
    assert {f.name for f in FILES} >= {"rsi_trend_pullback.yaml", "bollinger_squeeze.yaml"}


@pytest.mark.parametrize(("key", "strategy"), STRATEGIES, ids=IDS)
def test_yaml_stream_when_fed_bar_by_bar_then_equals_batch_bit_for_bit(key: str, strategy: YamlStrategy) -> None:
    n_entries = 0
    for seed in SEEDS:
        b = _bars(seed)
        e, x = strategy.signals(b)
        stream = strategy.stream(2)
        assert isinstance(stream, SignalStream) and stream.columns == 2
        se, sx = stream_signals(stream, b)
        assert se.dtype == np.bool_ and sx.dtype == np.bool_
        assert np.array_equal(se, e), f"{key} seed {seed}: entries differ at {np.argwhere(se != e)[:5].tolist()}"
        assert np.array_equal(sx, x), f"{key} seed {seed}: exits differ at {np.argwhere(sx != x)[:5].tolist()}"
        n_entries += int(e.sum())
    assert n_entries >= 3, f"{key}: too few entries to exercise the rules"


@pytest.mark.parametrize(("key", "strategy"), STRATEGIES, ids=IDS)
def test_yaml_stream_when_fed_then_indicator_values_equal_batch(key: str, strategy: YamlStrategy) -> None:
    b = _bars(SEEDS[0])
    batch = strategy.indicator_values(b)
    stream = strategy.stream(2)
    for t, bar in enumerate(bar_slices(b)):
        stream.update(bar)
        for name, v in stream.values.items():  # type: ignore[attr-defined]
            assert np.array_equal(v, batch[name][t], equal_nan=True), f"{key}: {name} differs at bar {t}"


def _plain(v: Any) -> bool:
    if isinstance(v, np.ndarray):
        return v.dtype != object
    if isinstance(v, dict):
        return all(isinstance(k, str) and _plain(x) for k, x in v.items())
    if isinstance(v, list | tuple):
        return all(_plain(x) for x in v)
    return v is None or isinstance(v, bool | int | float | str | np.integer | np.floating | np.bool_)


@pytest.mark.parametrize(("key", "strategy"), STRATEGIES, ids=IDS)
def test_yaml_stream_when_state_restored_into_fresh_stream_then_identical_rest(
        key: str, strategy: YamlStrategy) -> None:
    b = _bars(SEEDS[1])
    e, x = strategy.signals(b)
    slices = bar_slices(b)
    cuts = sorted(np.random.default_rng(42).choice(np.arange(1, b.n_bars - 1), size=4, replace=False).tolist())
    for cut in [0, *cuts]:
        first = strategy.stream(2)
        for bar in slices[:cut]:
            first.update(bar)
        snap = first.state()
        assert _plain(snap), f"{key}: state holds non-plain values"
        frozen = copy.deepcopy(snap)
        fresh = strategy.stream(2)
        fresh.load_state(snap)
        for t in range(cut, b.n_bars):
            fe, fx = fresh.update(slices[t])
            oe, ox = first.update(slices[t])
            assert np.array_equal(fe, e[t]) and np.array_equal(fx, x[t]), f"{key}: cut {cut}, bar {t}"
            assert np.array_equal(oe, e[t]) and np.array_equal(ox, x[t])
        # continuing both streams did not write through into the snapshot
        assert snap.keys() == frozen.keys()
        for k, v in snap.items():
            assert np.array_equal(np.asarray(v), np.asarray(frozen[k]), equal_nan=True), k


@pytest.mark.parametrize(("key", "strategy"), STRATEGIES, ids=IDS)
def test_yaml_stream_when_history_grows_then_state_size_stays_bounded(key: str, strategy: YamlStrategy) -> None:
    b = _bars(SEEDS[2], n_bars=900)
    slices = bar_slices(b)
    stream = strategy.stream(2)
    sizes = []
    for t, bar in enumerate(slices):
        stream.update(bar)
        if t + 1 in (450, 900):
            sizes.append({k: np.asarray(v).shape for k, v in stream.state().items()})
    assert sizes[0] == sizes[1], f"{key}: state grows with the history"


def test_yaml_stream_when_wrong_width_or_state_then_refused() -> None:
    s = STRATEGIES[0][1]
    stream = s.stream(2)
    bar = bar_slices(_bars(1, n_symbols=3))[0]
    with pytest.raises(ValueError, match="3"):
        stream.update(bar)
    with pytest.raises(ValueError, match="column"):
        s.stream(3).load_state(stream.state())


def test_yaml_stream_when_prev_reaches_past_the_history_then_nan_like_batch(tmp_path: Path) -> None:
    p = tmp_path / "s.yaml"
    p.write_text("name: far\nentry: close > prev(close, 1000) or close > prev(close, 10000000000)\n"
                 "exit: close < prev(close, 1)\n")
    s = load_yaml_strategy(p)
    b = _bars(3, n_bars=50)
    e, x = s.signals(b)
    se, sx = stream_signals(s.stream(2), b)
    assert not e.any() and np.array_equal(se, e) and np.array_equal(sx, x)


# ############# highest / lowest ############# #


@pytest.mark.parametrize("n_bars", [5, 12, 200])
def test_yaml_highest_lowest_when_batch_uses_shared_window_kernel_then_equal_to_numpy_rolling(
        n_bars: int) -> None:
    """highest/lowest moved onto the shared ``rolling_max``/``rolling_min`` kernels (the ones the
    streams step): the same values as NumPy's max/min over a sliding window, warm-up NaN."""
    b = _bars(4, n_bars=n_bars)
    s = YamlStrategy(spec=parse_yaml_strategy(
        "name: hl\nindicators:\n  hi: {fn: highest, window: 12, source: high}\n"
        "  lo: {fn: lowest, window: 12, source: low}\nentry: close > hi\nexit: close < lo\n", "hl.yaml"))
    got = s.indicator_values(b)
    for name, x, fn in (("hi", b.high, np.max), ("lo", b.low, np.min)):
        want = np.full(x.shape, np.nan)
        if n_bars >= 12:
            want[11:] = fn(np.lib.stride_tricks.sliding_window_view(x, 12, axis=0), axis=-1)
        assert np.array_equal(got[name], want, equal_nan=True)


# ############# Random rules ############# #


_FUZZ_NUMS = ("close", "open", "high", "low", "s5", "r", "a", "hi", "1", "0.5", "100", "0")


def _fuzz_num(rng: np.random.Generator, d: int) -> str:
    k = int(rng.integers(8)) if d > 0 else 7
    if k == 0:
        return f"({_fuzz_num(rng, d - 1)} {rng.choice(list('+-*/'))} {_fuzz_num(rng, d - 1)})"
    if k == 1:
        return f"-{_fuzz_num(rng, d - 1)}"
    if k == 2:
        return f"prev({_fuzz_num(rng, d - 1)}, {int(rng.integers(1, 5))})"
    if k == 3:
        return f"abs({_fuzz_num(rng, d - 1)})"
    if k == 4:
        return f"{rng.choice(['min', 'max'])}({_fuzz_num(rng, d - 1)}, {_fuzz_num(rng, d - 1)})"
    return str(rng.choice(_FUZZ_NUMS))


def _fuzz_cond(rng: np.random.Generator, d: int, atoms: list[int]) -> str:
    k = int(rng.integers(7)) if d > 0 else 0
    cmp = str(rng.choice(["<", "<=", ">", ">=", "==", "!="]))
    if k == 1:
        return f"({_fuzz_cond(rng, d - 1, atoms)} {rng.choice(['and', 'or'])} {_fuzz_cond(rng, d - 1, atoms)})"
    if k == 2:
        return f"not {_fuzz_cond(rng, d - 1, atoms)}"
    if k == 3:
        return f"{rng.choice(['crosses_above', 'crosses_below'])}({_fuzz_num(rng, 1)}, {_fuzz_num(rng, 1)})"
    if k == 4 and atoms[0] > 0:
        atoms[0] -= 1
        return f"bars_held {cmp} {int(rng.integers(0, 7))}"
    if k == 5:
        return f"{_fuzz_num(rng, 0)} < {_fuzz_num(rng, 1)} <= {_fuzz_num(rng, 1)}"
    if k == 6:
        return str(rng.choice(["true", "false"]))
    return f"{_fuzz_num(rng, 1)} {cmp} {_fuzz_num(rng, 1)}"


def test_yaml_stream_when_random_rules_then_equals_batch_and_restores() -> None:
    """Seeded random rules over the whole grammar (arithmetic, prev, crossings, chained and
    bars_held comparisons, and/or/not, stops): stream == batch, and a mid-way snapshot continues."""
    rng = np.random.default_rng(2024)
    b = _bars(3, n_bars=250)
    slices = bar_slices(b)
    head = "name: f\nindicators:\n  s5: {fn: sma, window: 5}\n  r: {fn: rsi, window: 6}\n" \
           "  a: {fn: atr, window: 5}\n  hi: {fn: highest, window: 7}\n"
    n_exits = 0
    for i in range(30):
        stops = ["", "stop_loss_pct: 0.01\n", "take_profit_pct: 0.01\nstop_loss_pct: 0.02\n"][i % 3]
        text = f'{head}entry: "{_fuzz_cond(rng, 3, [0])}"\nexit: "{_fuzz_cond(rng, 3, [4])}"\n{stops}'
        s = YamlStrategy(spec=parse_yaml_strategy(text, "f.yaml"))
        e, x = s.signals(b)
        se, sx = stream_signals(s.stream(2), b)
        assert np.array_equal(se, e) and np.array_equal(sx, x), text
        first = s.stream(2)
        for bar in slices[:120]:
            first.update(bar)
        fresh = s.stream(2)
        fresh.load_state(first.state())
        for t in range(120, b.n_bars):
            fe, fx = fresh.update(slices[t])
            assert np.array_equal(fe, e[t]) and np.array_equal(fx, x[t]), text
        n_exits += bool(x.any())
    assert n_exits >= 5
