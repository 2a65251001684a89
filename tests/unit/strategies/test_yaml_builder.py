"""YAML rule strategies: equivalence with built-ins on real data, bars_held state, stops, and
errors that point at the line (and column) of the problem, including hostile expressions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from trading_core.config import PROJECT_ROOT
from trading_core.strategies import (
    Bars,
    Strategy,
    YamlStrategyError,
    get_strategy,
    load_yaml_strategy,
    parse_yaml_strategy,
)
from trading_core.strategies.yaml_builder import YamlStrategy


def _load(tmp_path: Path, text: str) -> YamlStrategy:
    p = tmp_path / "s.yaml"
    p.write_text(text)
    return load_yaml_strategy(p)


def _error(text: str) -> YamlStrategyError:
    with pytest.raises(YamlStrategyError) as e:
        parse_yaml_strategy(text, "s.yaml")
    return e.value


RSI_YAML = """\
name: rsi_yaml
indicators:
  rsi_14: {fn: rsi, window: 14}
entry: "rsi_14 < 30"
exit: "rsi_14 > 55 or bars_held >= 20"
"""


# ############# Equivalence with built-in strategies ############# #


def test_yaml_rsi_when_same_rules_as_builtin_then_identical_signals_on_real_sp500(
        tmp_path: Path, sp500: pl.DataFrame) -> None:
    b = Bars.from_frame(sp500)
    y = _load(tmp_path, RSI_YAML)
    assert isinstance(y, Strategy)
    ye, yx = y.signals(b)
    be, bx = get_strategy("rsi_mean_reversion", {"window": 14, "lower": 30, "upper": 55, "max_bars": 20}).signals(b)
    assert ye.sum() > 10
    assert np.array_equal(ye, be) and np.array_equal(yx, bx)


def test_yaml_bollinger_and_macd_when_same_rules_then_identical_to_builtins(
        tmp_path: Path, btc_1h: pl.DataFrame) -> None:
    b = Bars.from_frame(btc_1h)
    boll = _load(tmp_path, """\
name: bb
indicators:
  mid: {fn: bollinger, window: 20, k: 2, output: mid}
  lower: {fn: bollinger, window: 20, k: 2, output: lower}
entry: close < lower
exit: close >= mid
""")
    assert all(np.array_equal(a, c) for a, c in zip(
        boll.signals(b), get_strategy("bollinger_mean_reversion", {}).signals(b), strict=True))
    m = _load(tmp_path, """\
name: m
indicators:
  h: {fn: macd, fast: 12, slow: 26, signal: 9, output: hist}
entry: crosses_above(h, 0)
exit: crosses_below(h, 0)
""")
    # crossings alternate, so the stateful YAML version equals the stateless built-in except for
    # built-in exits signalled while still flat (before the first entry)
    me, mx = m.signals(b)
    be, bx = get_strategy("macd", {}).signals(b)
    first = int(np.flatnonzero(be[:, 0])[0])
    assert np.array_equal(me, be) and np.array_equal(mx[first:], bx[first:]) and not mx[:first].any()


def test_yaml_examples_when_loaded_then_run_on_real_data(sp500: pl.DataFrame, btc_1h: pl.DataFrame) -> None:
    files = sorted((PROJECT_ROOT / "config" / "strategies").glob("*.yaml"))
    assert {f.name for f in files} >= {"rsi_trend_pullback.yaml", "bollinger_squeeze.yaml"}
    for f in files:
        s = load_yaml_strategy(f)
        for frame in (sp500, btc_1h):
            e, x = s.signals(Bars.from_frame(frame))
            assert e.any() and abs(int(e.sum()) - int(x.sum())) <= 1


# ############# bars_held and stops ############# #


def test_yaml_when_bars_held_and_take_profit_then_exit_by_whichever_comes_first(tmp_path: Path) -> None:
    close = np.array([100.0] * 5 + [101, 102, 103, 111, 100, 100, 100, 100, 100, 100, 100, 100, 100])
    c = close[:, None]
    b = Bars(ts=np.arange(len(close), dtype=np.int64) * 86_400_000, open=c, high=c, low=c, close=c,
             volume=np.ones_like(c))
    s = _load(tmp_path, """\
name: t
entry: close >= 100
exit: bars_held >= 3 and bars_held < 4
take_profit_pct: 0.10
""")
    e, x = s.signals(b)
    # bars_held == 3 exits first each time (the +10% take profit at bar 8 is an entry bar)
    assert np.flatnonzero(e[:, 0]).tolist() == [0, 4, 8, 12, 16]
    assert np.flatnonzero(x[:, 0]).tolist() == [3, 7, 11, 15]
    s2 = _load(tmp_path, "name: t2\nentry: close > 100.5\nexit: 'false'\ntake_profit_pct: 0.08\n"
                         "stop_loss_pct: 0.05\n")
    e2, x2 = s2.signals(b)
    assert np.flatnonzero(e2[:, 0]).tolist() == [5] and np.flatnonzero(x2[:, 0]).tolist() == [8]  # 111 >= 109.08
    assert s2.stops == {"stop_loss_pct": 0.05, "take_profit_pct": 0.08}


def test_yaml_when_arithmetic_and_functions_then_vectorised_values(tmp_path: Path) -> None:
    close = np.arange(1.0, 11.0)[:, None]
    b = Bars(ts=np.arange(10, dtype=np.int64), open=close, high=close + 1, low=close - 1, close=close,
             volume=np.ones_like(close))
    s = _load(tmp_path, "name: a\nindicators:\n  hi3: {fn: highest, window: 3, source: high}\n"
                        "entry: (high - low) / 2 == 1 and close - prev(close, 2) == 2 and not close > 8\n"
                        "exit: abs(-close) >= max(hi3 - 1, 9) or min(close, 1) < 0\n")
    e, x = s.signals(b)
    assert np.flatnonzero(e[:, 0]).tolist() == [2]  # prev(close, 2) is NaN before bar 2
    assert np.flatnonzero(x[:, 0]).tolist() == [8]  # hi3 - 1 = close, so close >= 9 decides


# ############# Errors that point at the line ############# #


def test_yaml_error_when_unknown_fn_then_line_and_suggestion() -> None:
    err = _error("name: x\nindicators:\n  a: {fn: sma, window: 5}\n  b: {fn: rsii, window: 5}\n"
                 "entry: a > b\nexit: a < b\n")
    assert err.line == 4 and "unknown fn 'rsii'" in str(err) and "did you mean 'rsi'" in str(err)
    assert str(err).startswith("s.yaml, line 4")


def test_yaml_error_when_bad_or_unknown_param_then_line_of_that_param() -> None:
    err = _error("name: x\nindicators:\n  a:\n    fn: sma\n    window: -3\nentry: a > 1\nexit: a < 1\n")
    assert err.line == 5 and "param 'window'" in str(err) and "greater than or equal to 1" in str(err)
    err = _error("name: x\nindicators:\n  a:\n    fn: sma\n    windw: 3\nentry: a > 1\nexit: a < 1\n")
    assert err.line == 5 and "unknown param 'windw'" in str(err) and "did you mean 'window'" in str(err)
    err = _error("name: x\nindicators:\n  a: {fn: bollinger, output: top}\nentry: a > 1\nexit: a < 1\n")
    assert err.line == 3 and "param 'output'" in str(err)


def test_yaml_error_when_unknown_name_then_line_column_and_close_match() -> None:
    err = _error(RSI_YAML.replace('entry: "rsi_14 < 30"', 'entry: "close > 1 and rsi14 < 30"'))
    assert (err.line, err.column) == (4, 23)  # 'entry: "' is 8 chars, then 'close > 1 and ' 14
    assert "unknown name 'rsi14'" in str(err) and "did you mean 'rsi_14'" in str(err)


def test_yaml_error_when_syntax_error_then_line_of_the_rule() -> None:
    err = _error(RSI_YAML.replace("rsi_14 > 55 or", "rsi_14 > > 55 or"))
    assert err.line == 5 and "exit: syntax error" in str(err)
    err = _error("name: x\nentry: close > 1\n  exit: [\n")
    assert err.line is not None and err.line >= 2 and "YAML syntax" in str(err)


@pytest.mark.parametrize(("expr", "what"), [
    ("__import__('os').system('true')", "not allowed"),
    ("close.__class__ > 1", "attribute access"),
    ("(lambda: 1)() > 0", "not allowed"),
    ("lambda x: x", "lambdas"),
    ("close[0] > 1", "subscripts"),
    ("open('/etc/passwd') > 0", "not allowed"),
    ("eval('1') > 0", "call of 'eval' is not allowed"),
    ("'a' < 'b'", "only numbers"),
    ("[c for c in close]", "comprehensions"),
    ("close ** 2 > 1", "operator Pow is not allowed"),
])
def test_yaml_error_when_hostile_or_forbidden_expression_then_refused_before_evaluation(expr: str, what: str) -> None:
    # a folded block scalar carries any characters verbatim; its content starts on line 3
    err = _error("name: x\nentry: >-\n  " + expr + "\nexit: close < 1\n")
    assert what in str(err) and err.line == 3


def test_yaml_error_when_bars_held_misused_then_explained() -> None:
    err = _error("name: x\nentry: bars_held > 3\nexit: close < 1\n")
    assert err.line == 2 and "use it in exit, not entry" in str(err)
    err = _error("name: x\nentry: close > 1\nexit: bars_held * 2 > 3\n")
    assert err.line == 3 and "compared with a number" in str(err)
    err = _error("name: x\nentry: close > 1\nexit: bars_held > close\n")
    assert "compared with a number" in str(err)


def test_yaml_error_when_structure_is_wrong_then_line_and_hint() -> None:
    err = _error("name: x\nentry: close > 1\nexits: close < 1\n")
    assert err.line == 3 and "unknown key 'exits'" in str(err) and "did you mean 'exit'" in str(err)
    assert "missing required key 'exit'" in str(_error("name: x\nentry: close > 1\n"))
    err = _error("name: x\nentry: close + 1\nexit: close < 1\n")
    assert err.line == 2 and "must be a condition" in str(err)
    err = _error("name: x\nindicators:\n  close: {fn: sma, window: 3}\nentry: close > 1\nexit: close < 1\n")
    assert err.line == 3 and "reserved" in str(err)
    err = _error("name: x\nentry: close > 1\nexit: close < 1\nstop_loss_pct: 5\n")
    assert err.line == 4 and "fraction" in str(err)
    err = _error("name: x\nindicators:\n  a: {fn: sma, window: 3}\n  a: {fn: ema, window: 3}\n"
                 "entry: a > 1\nexit: a < 1\n")
    assert err.line == 4 and "given twice" in str(err)


def test_yaml_strategy_when_file_missing_or_changed_then_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="strategy file"):
        get_strategy("yaml", {"file": str(tmp_path / "none.yaml")})
    p = tmp_path / "s.yaml"
    p.write_text(RSI_YAML)
    with pytest.raises(Exception, match="changed since"):
        get_strategy("yaml", {"file": str(p), "sha256": "0" * 64})
