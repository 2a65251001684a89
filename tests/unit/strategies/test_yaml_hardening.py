"""YAML rule expressions that used to crash Python instead of failing as a rule error: deep
nesting (RecursionError), huge literals (OverflowError), constant division by zero
(ZeroDivisionError) and ``prev(x, inf)`` are refused with the line and column like any other."""

from __future__ import annotations

import numpy as np
import pytest

from trading_core.strategies import Bars, YamlStrategyError, parse_yaml_strategy
from trading_core.strategies.yaml_builder import MAX_DEPTH, YamlStrategy


def _error(entry: str, exit_: str = "close < 1") -> YamlStrategyError:
    with pytest.raises(YamlStrategyError) as e:
        parse_yaml_strategy(f"name: x\nentry: '{entry}'\nexit: '{exit_}'\n", "s.yaml")
    return e.value


@pytest.mark.parametrize("prefix", ["-", "+", "- +"])
def test_yaml_error_when_hundreds_of_unary_signs_then_depth_error_not_recursion(prefix: str) -> None:
    err = _error(f"close > {prefix * 500}1")
    assert err.line == 2 and err.column is not None
    assert f"nested more than {MAX_DEPTH} levels" in str(err)


def test_yaml_error_when_hundreds_of_nots_then_depth_error_not_recursion() -> None:
    err = _error("not " * 450 + "close > 1")
    assert err.line == 2 and "nested more than" in str(err)
    err = _error("close > 1", "not " * 450 + "bars_held > 2")
    assert err.line == 3 and "exit: expression nested more than" in str(err)


def test_yaml_when_nesting_within_the_bound_then_accepted_and_evaluated() -> None:
    spec = parse_yaml_strategy("name: x\nentry: 'close > " + "-" * 40 + "1'\nexit: '" + "not " * 40
                               + "close < 1'\n", "s.yaml")
    c = np.linspace(1.0, 3.0, 10)[:, None]
    b = Bars(ts=np.arange(10, dtype=np.int64), open=c, high=c, low=c, close=c, volume=c)
    e, x = YamlStrategy(spec=spec).signals(b)
    # 40 minus signs give +1 and 40 nots cancel: enter at the first close above 1, never exit
    assert np.flatnonzero(e[:, 0]).tolist() == [1] and not x.any()


def test_yaml_error_when_integer_literal_too_large_for_a_float_then_refused_at_its_column() -> None:
    err = _error("close > 1" + "0" * 400)
    assert (err.line, err.column) == (2, 17) and "too large" in str(err)  # 'entry: ' 7 + quote 1 + 8
    err = _error("close > 1", "bars_held >= 9" + "9" * 400)
    assert err.line == 3 and "too large" in str(err)
    err = _error("close > -1e999")
    assert "too large" in str(err) and "1e999" in str(err)


@pytest.mark.parametrize("expr", ["close > 1 / 0", "close > 2 * (3 / (1 - 1))", "close < -(1 / (2 - 2))",
                                  "prev(close, 1) > 0 / 0"])
def test_yaml_error_when_constant_division_by_zero_then_refused(expr: str) -> None:
    err = _error(expr)
    assert err.line == 2 and err.column is not None and "division by zero" in str(err)


def test_yaml_when_division_by_a_zero_series_or_call_then_allowed_as_inf() -> None:
    # not constants: NumPy divides (inf / nan), as before
    spec = parse_yaml_strategy("name: x\nentry: close / 0 > 1 and 1 / abs(0) > 1\nexit: close < 1\n", "s.yaml")
    c = np.full((3, 1), 2.0)
    b = Bars(ts=np.arange(3, dtype=np.int64), open=c, high=c, low=c, close=c, volume=c)
    e, _ = YamlStrategy(spec=spec).signals(b)
    assert e[0, 0]


@pytest.mark.parametrize("n", ["1e999", "-1e999", "1" + "0" * 400])
def test_yaml_error_when_prev_n_not_finite_then_refused(n: str) -> None:
    err = _error(f"prev(close, {n}) > 1")
    assert err.line == 2 and err.column is not None
    assert "too large" in str(err) or "whole number" in str(err)
