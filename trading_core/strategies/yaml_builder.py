"""Strategies written in YAML as rules over indicators -- no Python, no ``eval``.

A file declares named indicators and two rule expressions::

    name: rsi_trend_pullback
    indicators:
      rsi_14: {fn: rsi, window: 14}
      sma_200: {fn: sma, window: 200}
    entry: "rsi_14 < 30 and close > sma_200"
    exit: "rsi_14 > 55 or bars_held >= 20"
    stop_loss_pct: 0.05      # optional
    take_profit_pct: 0.10    # optional

Expressions are parsed with ``ast`` and checked against a strict whitelist BEFORE anything is
evaluated: names (declared indicators, open/high/low/close/volume, bars_held), numeric literals,
comparisons, and/or/not, + - * /, unary minus, and the calls crosses_above(a, b),
crosses_below(a, b), prev(x, n), abs(x), min(a, b), max(a, b). Everything else (attributes,
subscripts, lambdas, other calls, strings, ...) is refused with the line and column in the file.
The checked tree is then evaluated vectorised over (bars x symbols) NumPy arrays.

``bars_held`` (bars since the entry signal) needs position state: each comparison
``bars_held <op> number`` is an *atom*; the exit rule is evaluated vectorised once per truth
assignment of the atoms (at most 4, so at most 16 passes) and the shared numba position loop picks
the right one at each bar. ``stop_loss_pct``/``take_profit_pct`` become exits when the CLOSE
crosses entry close x (1 -/+ pct), decided at the close like every other signal; they are also
exposed as ``strategy.stops`` for a runner that can place real intrabar stop orders.

Limits (refused with the line and column, like any other rule error): nesting deeper than
``MAX_DEPTH``, numbers that are not finite floats (``1e999``, a 400-digit integer), a constant
operation Python cannot compute (``1 / (2 - 2)``; dividing a series by 0 gives inf as in NumPy).

``strategy.stream(n_symbols)`` decides one bar at a time (``strategies.streaming``): each rule is
compiled once into closures over this bar's (n_symbols,) values performing the same operations as
the batch evaluator, ``prev(x, n)`` reads a ring of the last n values, crossings the previous
bar's operands, the indicators are ``features.streaming`` states (the same compiled steps as the
batch functions) and the position loop advances with ``_common.hold_step``, the step of
``hold_nb``. So the stream equals ``signals`` bit for bit, at O(1) (recursive indicators) or
O(window) per bar, and ``state()``/``load_state`` continue it exactly.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import yaml
from numba import njit
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import InvalidInput
from ..features import indicators as ind
from ..features import levels as lv
from ..features import streaming as fst
from ..yaml_io import YamlInputError, YamlSyntaxError, decode_yaml_bytes, load_yaml_text, read_yaml_bytes
from . import _common as cm
from .base import Bars, BoolArray, StrategyParams, as_bars
from .position_rules import PositionRules
from .streaming import BarSlice, SignalStream

__all__ = ["RuleSpec", "YamlStrategy", "YamlStrategyError", "YamlStrategyParams", "load_yaml_strategy",
           "parse_yaml_strategy"]

PRICE_NAMES = ("open", "high", "low", "close", "volume")
STATE_NAMES = ("bars_held",)
BOOL_NAMES = {"true": True, "false": False}  # YAML spelling; Python's True/False are literals
FUNCTIONS = {"crosses_above": 2, "crosses_below": 2, "prev": 2, "abs": 1, "min": 2, "max": 2}
MAX_ATOMS = 4
MAX_EXPR_CHARS = 2000
MAX_DEPTH = 100  # nesting of an expression tree (deeper ones would exhaust Python's stack)
# The default keeps ``get_strategy("yaml", {})`` valid like every other registered strategy.
DEFAULT_FILE = Path(__file__).resolve().parents[2] / "config" / "strategies" / "rsi_trend_pullback.yaml"
TOP_KEYS = ("name", "description", "indicators", "entry", "exit", "stop_loss_pct", "take_profit_pct", "position")


class YamlStrategyError(YamlInputError):
    """A problem in a YAML strategy, located at ``line``/``column`` (1-based) of ``source``."""


# ############# Indicator functions ############# #


class _P(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    source: Literal["open", "high", "low", "close", "volume"] = "close"

    @field_validator("*", mode="after")
    @classmethod
    def _bounded_ints(cls, v: Any) -> Any:  # the bound every strategy parameter has
        return StrategyParams._bounded_ints(v)

    def warmup(self) -> int:
        return int(getattr(self, "window", 1))


class _Window(_P):
    window: int = Field(ge=1)


class _Rsi(_P):
    window: int = Field(default=14, ge=2)


class _Macd(_P):
    fast: int = Field(default=12, ge=1)
    slow: int = Field(default=26, ge=2)
    signal: int = Field(default=9, ge=1)
    output: Literal["line", "signal", "hist"] = "hist"

    def warmup(self) -> int:
        return self.slow + self.signal


class _Boll(_P):
    window: int = Field(default=20, ge=2)
    k: float = Field(default=2.0, gt=0)
    output: Literal["mid", "upper", "lower", "pctb", "width"] = "mid"


class _Atr(_P):
    window: int = Field(default=14, ge=1)


class _Adx(_P):
    window: int = Field(default=14, ge=2)
    output: Literal["adx", "plus_di", "minus_di"] = "adx"

    def warmup(self) -> int:
        return 2 * self.window


class _Slope(_P):
    window: int = Field(default=50, ge=1)
    k: int = Field(default=5, ge=1)

    def warmup(self) -> int:
        return self.window + self.k


class _Vol(_P):
    window: int = Field(default=20, ge=2)
    periods_per_year: float = Field(default=252.0, gt=0)


class _Pct(_P):
    window: int = Field(default=252, ge=2)


class _Vp(_P):
    window: int = Field(default=100, ge=5)
    bins: int = Field(default=24, ge=4, le=500)
    value_area: float = Field(default=0.7, gt=0, le=1)
    output: Literal["poc", "vah", "val"] = "poc"


class _Sr(_P):
    pivot_k: int = Field(default=5, ge=1)
    window: int = Field(default=250, ge=10)
    tol: float = Field(default=0.01, gt=0, lt=0.5)
    min_touches: int = Field(default=1, ge=1)
    output: Literal["support", "resistance"] = "support"

    def warmup(self) -> int:
        return 2 * self.pivot_k + 1


class _Fib(_P):
    pivot_k: int = Field(default=5, ge=1)
    window: int = Field(default=250, ge=10)
    ratio: float = Field(default=0.618, ge=0, le=1)

    def warmup(self) -> int:
        return 2 * self.pivot_k + 1


def _src(b: Bars, p: _P) -> np.ndarray:
    return getattr(b, p.source)  # type: ignore[no-any-return]


_FNS: dict[str, tuple[type[_P], Callable[[Bars, Any], np.ndarray]]] = {
    "sma": (_Window, lambda b, p: cm.per_column(ind.sma, _src(b, p), n=p.window)),
    "ema": (_Window, lambda b, p: cm.per_column(ind.ema, _src(b, p), n=p.window)),
    "rsi": (_Rsi, lambda b, p: cm.per_column(ind.rsi, _src(b, p), n=p.window)),
    "macd": (_Macd, lambda b, p: cm.per_column(ind.macd, _src(b, p), fast=p.fast, slow=p.slow, signal=p.signal)[
        ("line", "signal", "hist").index(p.output)]),
    "bollinger": (_Boll, lambda b, p: cm.per_column(ind.bollinger, _src(b, p), n=p.window, k=p.k)[
        ("mid", "upper", "lower", "pctb", "width").index(p.output)]),
    "atr": (_Atr, lambda b, p: cm.per_column(ind.atr, b.high, b.low, b.close, n=p.window)),
    "adx": (_Adx, lambda b, p: cm.per_column(ind.adx, b.high, b.low, b.close, n=p.window)[
        ("adx", "plus_di", "minus_di").index(p.output)]),
    "ma_slope": (_Slope, lambda b, p: cm.per_column(ind.ma_slope, _src(b, p), n=p.window, k=p.k)),
    "realised_vol": (_Vol, lambda b, p: cm.per_column(ind.realised_vol, _src(b, p), n=p.window,
                                                      periods_per_year=p.periods_per_year)),
    "percentile": (_Pct, lambda b, p: cm.per_column(ind.rolling_percentile, _src(b, p), n=p.window)),
    "highest": (_Window, lambda b, p: cm.per_column(ind.rolling_max, _src(b, p), n=p.window)),
    "lowest": (_Window, lambda b, p: cm.per_column(ind.rolling_min, _src(b, p), n=p.window)),
    "volume_profile": (_Vp, lambda b, p: cm.per_column(lv.volume_profile, b.high, b.low, b.close, b.volume,
                                                       n=p.window, bins=p.bins, value_area=p.value_area)[
        ("poc", "vah", "val").index(p.output)]),
    "support_resistance": (_Sr, lambda b, p: cm.per_column(
        lv.support_resistance, b.high, b.low, b.close, k=p.pivot_k, n=p.window, tol=p.tol,
        min_touches=p.min_touches)[("support", "resistance").index(p.output)]),
    "fibonacci": (_Fib, lambda b, p: cm.per_column(lambda h, lo: lv.fibonacci(
        h, lo, k=p.pivot_k, n=p.window, ratios=(p.ratio,))[:, 0], b.high, b.low)),
}


# ############# Expressions ############# #


_CMP: dict[type[ast.cmpop], tuple[Callable[[Any, Any], Any], int, int]] = {
    # op class -> (numpy op, code with bars_held on the left, code with bars_held on the right)
    ast.Lt: (operator.lt, cm.OP_LT, cm.OP_GT), ast.LtE: (operator.le, cm.OP_LE, cm.OP_GE),
    ast.Gt: (operator.gt, cm.OP_GT, cm.OP_LT), ast.GtE: (operator.ge, cm.OP_GE, cm.OP_LE),
    ast.Eq: (operator.eq, cm.OP_EQ, cm.OP_EQ), ast.NotEq: (operator.ne, cm.OP_NE, cm.OP_NE),
}
_BIN: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
}
_FORBIDDEN = {
    ast.Attribute: "attribute access", ast.Subscript: "subscripts", ast.Lambda: "lambdas",
    ast.ListComp: "comprehensions", ast.GeneratorExp: "comprehensions", ast.DictComp: "comprehensions",
    ast.SetComp: "comprehensions", ast.IfExp: "if/else expressions", ast.NamedExpr: ":= assignments",
    ast.Starred: "* unpacking", ast.List: "lists", ast.Tuple: "tuples", ast.Dict: "dicts",
    ast.Set: "sets", ast.JoinedStr: "strings", ast.Await: "await", ast.Yield: "yield",
}


def _number(node: ast.AST) -> float | None:
    """A numeric literal, possibly negated, else None (booleans are not numbers here)."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        v = _number(node.operand)
        return None if v is None else (-v if isinstance(node.op, ast.USub) else v)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
        return float(node.value)
    return None


def _fold(node: ast.AST) -> float | None:
    """The value of a subtree made of numeric literals, unary -/+ and + - * / only (the part the
    evaluator computes with Python floats rather than arrays), else None. An operation Python
    refuses (``1 / 0``) is a ``_Bad`` at that operator."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        v = _fold(node.operand)
        return None if v is None else (-v if isinstance(node.op, ast.USub) else v)
    if isinstance(node, ast.BinOp) and type(node.op) in _BIN:
        a, b = _fold(node.left), _fold(node.right)
        if a is None or b is None:
            return None
        try:
            return float(_BIN[type(node.op)](a, b))
        except ArithmeticError as e:
            msg = "division by zero" if isinstance(e, ZeroDivisionError) else str(e)
            raise _Bad(node, f"{msg} in the constant {ast.unparse(node)!r}") from None
    return _number(node)


def _precheck(tree: ast.AST, text: str) -> None:
    """Before the (recursive) checker: bound the nesting depth and refuse numbers that are not
    finite floats, both without recursion (``ast.walk`` is iterative)."""
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _Bad(node, f"expression nested more than {MAX_DEPTH} levels deep")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and \
                not isinstance(node.value, bool):
            try:
                ok = math.isfinite(float(node.value))
            except OverflowError:
                ok = False
            if not ok:
                shown = ast.get_source_segment(text, node) or "literal"
                shown = shown if len(shown) <= 16 else f"{shown[:12]}..."
                raise _Bad(node, f"number {shown} is too large (numbers must be finite floats)")


@dataclass
class Rule:
    """A checked expression: the tree, its bars_held atoms, and the names it reads."""

    text: str
    tree: ast.Expression
    atoms: list[tuple[int, float]] = field(default_factory=list)  # (op code, value)
    atom_of: dict[tuple[int, int], int] = field(default_factory=dict)  # (id(Compare), pair) -> atom
    names: set[str] = field(default_factory=set)


class _Bad(Exception):
    def __init__(self, node: ast.AST | None, msg: str) -> None:
        super().__init__(msg)
        self.node, self.msg = node, msg


class _Checker:
    """Whitelist walk: returns each node's kind ('num' or 'bool') or raises ``_Bad``."""

    def __init__(self, rule: Rule, names: set[str], allow_state: bool) -> None:
        self.rule, self.names, self.allow_state = rule, names, allow_state

    def kind(self, node: ast.AST) -> str:  # noqa: C901 - one branch per allowed construct
        if isinstance(node, ast.Expression):
            return self.kind(node.body)
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool):
                return "bool"
            if isinstance(node.value, int | float):
                return "num"
            raise _Bad(node, f"only numbers are allowed as literals, not {type(node.value).__name__} "
                             f"{node.value!r}")
        if isinstance(node, ast.Name):
            if node.id in BOOL_NAMES:
                return "bool"
            if node.id in STATE_NAMES:
                raise _Bad(node, "bars_held can only be compared with a number (e.g. bars_held >= 20)"
                           if self.allow_state else
                           "bars_held is only defined while a position is open: use it in exit, not entry")
            if node.id in self.names:
                self.rule.names.add(node.id)
                return "num"
            if node.id in FUNCTIONS:
                raise _Bad(node, f"{node.id} is a function: call it as {node.id}(...)")
            pool = sorted(self.names | set(STATE_NAMES) | set(FUNCTIONS))
            close = difflib.get_close_matches(node.id, pool, n=3, cutoff=0.6)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else \
                f"; known names: {', '.join(sorted(self.names))}"
            raise _Bad(node, f"unknown name {node.id!r}{hint}")
        if isinstance(node, ast.BoolOp):
            for v in node.values:
                self._want(v, "bool", "and/or operand")
            return "bool"
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.Not):
                self._want(node.operand, "bool", "not operand")
                return "bool"
            if isinstance(node.op, ast.USub | ast.UAdd):
                self._want(node.operand, "num", "unary minus operand")
                return "num"
            raise _Bad(node, "operator ~ is not allowed; use not")
        if isinstance(node, ast.BinOp):
            if type(node.op) not in _BIN:
                raise _Bad(node, f"operator {type(node.op).__name__} is not allowed; use + - * /")
            self._want(node.left, "num", "arithmetic operand")
            self._want(node.right, "num", "arithmetic operand")
            _fold(node)  # a constant operation that Python cannot compute (1 / 0) is refused here
            return "num"
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            for i, op in enumerate(node.ops):
                if type(op) not in _CMP:
                    raise _Bad(node, "only < <= > >= == != comparisons are allowed")
                a, b = sides[i], sides[i + 1]
                held_a = isinstance(a, ast.Name) and a.id in STATE_NAMES
                held_b = isinstance(b, ast.Name) and b.id in STATE_NAMES
                if held_a or held_b:
                    other = b if held_a else a
                    value = _number(other)
                    if not self.allow_state:
                        raise _Bad(a if held_a else b, "bars_held is only defined while a position is open: "
                                                       "use it in exit, not entry")
                    if value is None:
                        raise _Bad(other, "bars_held can only be compared with a number (e.g. bars_held >= 20)")
                    if len(self.rule.atoms) >= MAX_ATOMS:
                        raise _Bad(node, f"at most {MAX_ATOMS} bars_held comparisons per rule")
                    _, left_code, right_code = _CMP[type(op)]
                    self.rule.atom_of[(id(node), i)] = len(self.rule.atoms)
                    self.rule.atoms.append((left_code if held_a else right_code, value))
                    continue
                self._want(a, "num", "comparison operand")
                self._want(b, "num", "comparison operand")
            return "bool"
        if isinstance(node, ast.Call):
            fn = node.func.id if isinstance(node.func, ast.Name) else None
            if fn not in FUNCTIONS:
                shown = fn or ast.unparse(node.func)
                raise _Bad(node, f"call of {shown!r} is not allowed; allowed functions: {', '.join(FUNCTIONS)}")
            if node.keywords or len(node.args) != FUNCTIONS[fn]:
                raise _Bad(node, f"{fn} takes exactly {FUNCTIONS[fn]} positional argument(s)")
            if fn == "prev":
                n = _number(node.args[1])
                if n is None or not math.isfinite(n) or n != int(n) or n < 1:
                    raise _Bad(node.args[1], "prev(x, n) needs a whole number n >= 1")
                self._want(node.args[0], "num", "prev argument")
                return "num"
            for a in node.args:
                self._want(a, "num", f"{fn} argument")
            return "bool" if fn.startswith("crosses_") else "num"
        what = _FORBIDDEN.get(type(node), type(node).__name__)
        raise _Bad(node, f"{what} not allowed in a rule")

    def _want(self, node: ast.AST, kind: str, role: str) -> None:
        got = self.kind(node)
        if got != kind:
            word = {"num": "a number", "bool": "a condition (true/false)"}
            raise _Bad(node, f"{role} must be {word[kind]}, got {word[got]}: {ast.unparse(node)!r}")


def _fold_bool(op: ast.boolop, vals: list[Any]) -> Any:
    """``a and b and ...`` / ``a or b or ...`` over arrays, left to right (batch and stream alike)."""
    combine = np.logical_and if isinstance(op, ast.And) else np.logical_or
    out = vals[0]
    for v in vals[1:]:
        out = combine(out, v)
    return out


def _evaluate(rule: Rule, env: dict[str, np.ndarray], bits: tuple[bool, ...], shape: tuple[int, ...]) -> Any:
    def ev(node: ast.AST) -> Any:  # noqa: C901
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool):
                return np.full(shape, node.value, dtype=np.bool_)
            return float(node.value)  # type: ignore[arg-type]  # the checker admitted numbers only
        if isinstance(node, ast.Name):
            if node.id in BOOL_NAMES:
                return np.full(shape, BOOL_NAMES[node.id], dtype=np.bool_)
            return env[node.id]
        if isinstance(node, ast.BoolOp):
            return _fold_bool(node.op, [np.broadcast_to(ev(v), shape) for v in node.values])
        if isinstance(node, ast.UnaryOp):
            v = ev(node.operand)
            return np.logical_not(v) if isinstance(node.op, ast.Not) else (-v if isinstance(node.op, ast.USub) else v)
        if isinstance(node, ast.BinOp):
            return _BIN[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            out = np.ones(shape, dtype=np.bool_)
            for i, op in enumerate(node.ops):
                atom = rule.atom_of.get((id(node), i))
                if atom is not None:
                    out = out & bits[atom]
                else:
                    out = out & np.broadcast_to(_CMP[type(op)][0](ev(sides[i]), ev(sides[i + 1])), shape)
            return out
        assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        fn = node.func.id
        if fn == "prev":
            return cm.prev(np.broadcast_to(np.asarray(ev(node.args[0]), dtype=np.float64), shape).copy(),
                           int(_number(node.args[1]) or 1))
        args = [np.broadcast_to(np.asarray(ev(a), dtype=np.float64), shape) for a in node.args]
        if fn == "crosses_above":
            return cm.crosses_above(args[0], args[1])
        if fn == "crosses_below":
            return cm.crosses_above(args[1], args[0])
        if fn == "abs":
            return np.abs(args[0])
        return np.minimum(args[0], args[1]) if fn == "min" else np.maximum(args[0], args[1])

    with np.errstate(all="ignore"):
        return np.broadcast_to(ev(rule.tree), shape).astype(np.bool_)


# ############# The spec and its loader ############# #


@dataclass(frozen=True)
class IndicatorSpec:
    name: str
    fn: str
    params: _P


@dataclass
class RuleSpec:
    """A validated YAML strategy."""

    name: str
    description: str
    indicators: dict[str, IndicatorSpec]
    entry: Rule
    exit: Rule
    stop_loss_pct: float | None
    take_profit_pct: float | None
    source: str
    position: PositionRules | None = None


def _mapping_get(node: yaml.Node, key: str) -> tuple[yaml.Node | None, yaml.Node | None]:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if getattr(k, "value", None) == key:
                return k, v
    return None, None


def _pos(node: yaml.Node | None) -> tuple[int | None, int | None]:
    if node is None:
        return None, None
    return node.start_mark.line + 1, node.start_mark.column + 1


def _check_keys(src: str, node: yaml.Node, allowed: tuple[str, ...], what: str) -> None:
    """Unknown or duplicated keys of a mapping, with the line of the offending key."""
    seen: set[str] = set()
    for k, _ in node.value:
        key = str(k.value)
        if key in seen:
            raise YamlStrategyError(src, *_pos(k), f"{what}: key {key!r} given twice")
        seen.add(key)
        if allowed and key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; allowed: {', '.join(allowed)}"
            raise YamlStrategyError(src, *_pos(k), f"{what}: unknown key {key!r}{hint}")


def _compile_rule(src: str, text: Any, node: yaml.Node, key: str, names: set[str], allow_state: bool) -> Rule:
    line, col = _pos(node)
    if not isinstance(text, str) or not text.strip():
        raise YamlStrategyError(src, line, col, f"{key} must be a non-empty expression string")
    if len(text) > MAX_EXPR_CHARS:
        raise YamlStrategyError(src, line, col, f"{key} is longer than {MAX_EXPR_CHARS} characters")
    style = getattr(node, "style", None)
    block = style in ("|", ">")
    shift = 1 if style in ("'", '"') else 0

    def where(lineno: int | None, offset0: int | None) -> tuple[int | None, int | None]:
        """File position of an expression position (block scalars: the first content line)."""
        if line is None or col is None:
            return line, col
        if block:
            return line + 1, None
        ln = lineno or 1
        return line + ln - 1, None if offset0 is None else (col + shift + offset0 if ln == 1 else offset0 + 1)

    # Block scalars may span lines; they are joined into one line (so columns are not reported).
    expr = " ".join(x.strip() for x in text.splitlines()).strip() if block else text.strip()
    lead = 0 if block else len(text) - len(text.lstrip())
    shift += lead
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as e:
        ln, c = where(e.lineno, None if e.offset is None else e.offset - 1)
        raise YamlStrategyError(src, ln, c, f"{key}: syntax error: {e.msg}") from None
    except (RecursionError, MemoryError):
        raise YamlStrategyError(src, *where(1, 0), f"{key}: expression nested too deeply") from None
    rule = Rule(text=expr, tree=tree)
    try:
        _precheck(tree.body, expr)
        _Checker(rule, names, allow_state)._want(tree.body, "bool", key)
    except _Bad as e:
        n = e.node
        ln, c = where(getattr(n, "lineno", None), getattr(n, "col_offset", None))
        raise YamlStrategyError(src, ln, c, f"{key}: {e.msg}") from None
    return rule


def parse_yaml_strategy(text: str, source: str = "<yaml>") -> RuleSpec:
    """Validate a YAML strategy; raise ``YamlStrategyError`` at the first problem, with its line."""
    try:
        data, root = load_yaml_text(text, source)
    except YamlSyntaxError as e:
        raise YamlStrategyError(source, e.line, e.column,
                                "YAML syntax: " + e.detail.removeprefix("invalid YAML: ")) from None
    except YamlInputError as e:
        raise YamlStrategyError(source, e.line, e.column, e.detail) from None
    if not isinstance(data, dict) or root is None:
        raise YamlStrategyError(source, 1, None, "a strategy file must be a mapping with name, indicators, "
                                                 "entry and exit")
    _check_keys(source, root, TOP_KEYS, "strategy")
    for key in ("name", "entry", "exit"):
        if key not in data:
            raise YamlStrategyError(source, 1, None, f"missing required key {key!r}")
    name = data["name"]
    if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum() or len(name) > 64:
        shown = repr(name) if len(repr(name)) <= 80 else repr(name)[:60] + "..."
        raise YamlStrategyError(source, *_pos(_mapping_get(root, "name")[1]),
                                f"name {shown} must be 1-64 letters, digits, '_' or '-'")

    indicators: dict[str, IndicatorSpec] = {}
    ind_node = _mapping_get(root, "indicators")[1]
    raw_inds = data.get("indicators") or {}
    if not isinstance(raw_inds, dict) or (ind_node is not None and raw_inds and
                                          not isinstance(ind_node, yaml.MappingNode)):
        raise YamlStrategyError(source, *_pos(ind_node), "indicators must be a mapping name -> {fn: ..., ...}")
    if ind_node is not None and isinstance(ind_node, yaml.MappingNode):
        _check_keys(source, ind_node, (), "indicators")
    reserved = set(PRICE_NAMES) | set(STATE_NAMES) | set(FUNCTIONS) | set(BOOL_NAMES)
    for ind_name, spec in raw_inds.items():
        key_node, val_node = _mapping_get(ind_node, str(ind_name)) if ind_node is not None else (None, None)
        if not isinstance(ind_name, str) or not ind_name.isidentifier() or ind_name.startswith("_"):
            raise YamlStrategyError(source, *_pos(key_node), f"indicator name {ind_name!r} must be an identifier "
                                                             "(letters, digits, '_', not starting with '_')")
        if ind_name in reserved:
            raise YamlStrategyError(source, *_pos(key_node), f"indicator name {ind_name!r} is reserved")
        if not isinstance(spec, dict) or "fn" not in spec:
            raise YamlStrategyError(source, *_pos(val_node), f"indicator {ind_name}: expected {{fn: ..., params}}")
        fn = spec["fn"]
        fn_node = _mapping_get(val_node, "fn")[1] if val_node is not None else None
        if fn not in _FNS:
            close = difflib.get_close_matches(str(fn), list(_FNS), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise YamlStrategyError(source, *_pos(fn_node), f"indicator {ind_name}: unknown fn {fn!r}{hint} "
                                                            f"(known: {', '.join(_FNS)})")
        model = _FNS[fn][0]
        given = {k: v for k, v in spec.items() if k != "fn"}
        try:
            params = model.model_validate(given)
        except ValidationError as e:
            # An unknown (misspelt) key explains a "missing" one, so it is reported first.
            err = sorted(e.errors(), key=lambda x: x["type"] != "extra_forbidden")[0]
            pname = str(err["loc"][0]) if err["loc"] else ""
            pnode = _mapping_get(val_node, pname)[1 if err["type"] != "extra_forbidden" else 0] \
                if val_node is not None else None
            allowed = ", ".join(model.model_fields)
            if err["type"] == "extra_forbidden":
                close = difflib.get_close_matches(pname, list(model.model_fields), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                msg = f"indicator {ind_name} ({fn}): unknown param {pname!r}{hint} (allowed: {allowed})"
            else:
                msg = f"indicator {ind_name} ({fn}): param {pname!r}: {err['msg']}"
            raise YamlStrategyError(source, *_pos(pnode or val_node), msg) from None
        indicators[ind_name] = IndicatorSpec(ind_name, fn, params)

    names = set(PRICE_NAMES) | set(indicators)
    entry = _compile_rule(source, data["entry"], _mapping_get(root, "entry")[1], "entry", names, False)
    exit_ = _compile_rule(source, data["exit"], _mapping_get(root, "exit")[1], "exit", names, True)
    pcts: dict[str, float | None] = {}
    for key in ("stop_loss_pct", "take_profit_pct"):
        v = data.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v < 1):
            raise YamlStrategyError(source, *_pos(_mapping_get(root, key)[1]),
                                    f"{key} must be a fraction between 0 and 1 (e.g. 0.05 for 5%), got {v!r}")
        pcts[key] = None if v is None else float(v)
    desc = data.get("description") or ""
    position = None
    if data.get("position") is not None:
        pos_node = _mapping_get(root, "position")[1]
        if not isinstance(data["position"], dict):
            raise YamlStrategyError(source, *_pos(pos_node), "position must be a mapping of position rules")
        try:
            position = PositionRules.model_validate(data["position"])
        except ValidationError as e:
            err = e.errors()[0]
            key = str(err["loc"][0]) if err["loc"] else ""
            at = (_mapping_get(pos_node, key)[0 if err["type"] == "extra_forbidden" else 1]
                  if pos_node is not None and key else pos_node)
            raise YamlStrategyError(source, *_pos(at or pos_node),
                                    f"position.{key}: {err['msg']} (allowed: {', '.join(PositionRules.model_fields)})"
                                    ) from None
    return RuleSpec(name=name, description=str(desc), indicators=indicators, entry=entry, exit=exit_,
                    stop_loss_pct=pcts["stop_loss_pct"], take_profit_pct=pcts["take_profit_pct"], source=source,
                    position=position)


# ############# The strategy ############# #


class YamlStrategyParams(StrategyParams):
    """Where the rules live; ``sha256`` (optional) pins the file's content."""

    file: str = Field(default=str(DEFAULT_FILE), min_length=1,
                      description="path of the YAML strategy file (default: the shipped rsi_trend_pullback)")
    sha256: str = Field(default="", description="expected sha256 of the file (empty: not checked)")


def file_sha256(path: str | Path) -> str:
    """sha256 of a strategy file, read through ``yaml_io`` (a FIFO or oversize file is refused)."""
    try:
        raw = read_yaml_bytes(path)
    except YamlInputError as e:
        raise YamlStrategyError(str(path), e.line, e.column, e.detail) from None
    return hashlib.sha256(raw).hexdigest()


class YamlStrategy:
    """A ``Strategy`` whose rules come from a YAML file (see the module docstring for the grammar)."""

    name: ClassVar[str] = "yaml"
    Params: ClassVar[type[StrategyParams]] = YamlStrategyParams

    def __init__(self, params: YamlStrategyParams | None = None, *, spec: RuleSpec | None = None) -> None:
        if params is None and spec is None:
            raise InvalidInput("yaml strategy: give params with a file or a parsed spec")
        self.params: YamlStrategyParams = params or YamlStrategyParams(file=spec.source)  # type: ignore[union-attr]
        if spec is None:
            path = Path(self.params.file)
            try:
                raw = read_yaml_bytes(path)
            except OSError as e:
                raise InvalidInput(f"strategy file {path}: {e.strerror or e}") from None
            except YamlInputError as e:
                raise YamlStrategyError(str(path), e.line, e.column, e.detail) from None
            if self.params.sha256 and hashlib.sha256(raw).hexdigest() != self.params.sha256:
                raise InvalidInput(f"strategy file {path} changed since it was validated (sha256 differs)")
            try:
                text = decode_yaml_bytes(raw, str(path))
            except YamlInputError as e:
                raise YamlStrategyError(str(path), e.line, e.column, e.detail) from None
            spec = parse_yaml_strategy(text, str(path))
        self.spec: RuleSpec = spec

    @property
    def rule_name(self) -> str:
        return self.spec.name

    @property
    def position(self) -> PositionRules | None:
        """Scale in/out, cost averaging and ADV caps the strategy declares (the Trader applies them)."""
        return self.spec.position

    @property
    def stops(self) -> dict[str, float | None]:
        """Stop-loss / take-profit fractions, for a runner able to place intrabar stop orders."""
        return {"stop_loss_pct": self.spec.stop_loss_pct, "take_profit_pct": self.spec.take_profit_pct}

    def variants(self) -> list[dict[str, Any]]:
        return [{"rules": self.spec.name}]

    def warmup_bars(self) -> int:
        return max([i.params.warmup() for i in self.spec.indicators.values()] or [1])

    def indicator_values(self, bars: Any) -> dict[str, np.ndarray]:
        """Every declared indicator and price field, (T, S) float64."""
        b = as_bars(bars)
        env = {n: np.asarray(getattr(b, n), dtype=np.float64) for n in PRICE_NAMES}
        for ispec in self.spec.indicators.values():
            env[ispec.name] = np.asarray(_FNS[ispec.fn][1](b, ispec.params), dtype=np.float64)
        return env

    def signals(self, bars: Any) -> tuple[BoolArray, BoolArray]:
        b = as_bars(bars)
        env = self.indicator_values(b)
        shape = b.close.shape
        entry = _evaluate(self.spec.entry, env, (), shape)
        k = len(self.spec.exit.atoms)
        table = np.stack([
            _evaluate(self.spec.exit, env, tuple(bool(m >> i & 1) for i in range(k)), shape)
            for m in range(2 ** k)])
        ops = np.array([a[0] for a in self.spec.exit.atoms], dtype=np.int64)
        vals = np.array([a[1] for a in self.spec.exit.atoms], dtype=np.float64)
        sl, tp = self.spec.stop_loss_pct, self.spec.take_profit_pct
        nan = np.full(shape, np.nan)
        stop = b.close * (1 - sl) if sl else nan
        target = b.close * (1 + tp) if tp else nan
        return cm.hold_nb(np.ascontiguousarray(entry), np.ascontiguousarray(table), ops, vals,
                          np.ascontiguousarray(b.close), np.ascontiguousarray(stop), np.ascontiguousarray(target))

    def stream(self, n_symbols: int) -> SignalStream:
        """The rules one bar at a time on ``n_symbols`` symbols; equal to ``signals`` bit for bit."""
        return YamlSignalStream(self.spec, n_symbols)


def load_yaml_strategy(path: str | Path) -> YamlStrategy:
    """Read, validate and build the strategy in ``path`` (errors name the file, line and column)."""
    return YamlStrategy(YamlStrategyParams(file=str(path)))


# ############# Streaming: one bar at a time ############# #


# The output order of the multi-output indicators (as the batch functions return them).
_OUTPUTS = {"macd": ("line", "signal", "hist"), "bollinger": ("mid", "upper", "lower", "pctb", "width"),
            "adx": ("adx", "plus_di", "minus_di"), "volume_profile": ("poc", "vah", "val"),
            "support_resistance": ("support", "resistance")}


class _IndicatorStream:
    """One declared indicator, per bar: a ``features.streaming`` state fed this bar's inputs (the
    same compiled steps and window kernels as the batch function, so equal bit for bit), and the
    declared output picked from its result."""

    def __init__(self, ispec: IndicatorSpec, n_cols: int) -> None:
        p: Any = ispec.params
        src, hlc = (p.source,), ("high", "low", "close")
        made: dict[str, tuple[Callable[[], Any], tuple[str, ...]]] = {
            "sma": (lambda: fst.SmaState(n_cols, n=p.window), src),
            "ema": (lambda: fst.EmaState(n_cols, n=p.window), src),
            "rsi": (lambda: fst.RsiState(n_cols, n=p.window), src),
            "macd": (lambda: fst.MacdState(n_cols, fast=p.fast, slow=p.slow, signal=p.signal), src),
            "bollinger": (lambda: fst.BollingerState(n_cols, n=p.window, k=p.k), src),
            "atr": (lambda: fst.AtrState(n_cols, n=p.window), hlc),
            "adx": (lambda: fst.AdxState(n_cols, n=p.window), hlc),
            "ma_slope": (lambda: fst.MaSlopeState(n_cols, n=p.window, k=p.k), src),
            "realised_vol": (lambda: fst.RealisedVolState(n_cols, n=p.window, periods_per_year=p.periods_per_year),
                             src),
            "percentile": (lambda: fst.RollingPercentileState(n_cols, n=p.window), src),
            "highest": (lambda: fst.RollingMaxState(n_cols, n=p.window), src),
            "lowest": (lambda: fst.RollingMinState(n_cols, n=p.window), src),
            "volume_profile": (lambda: fst.VolumeProfileState(n_cols, n=p.window, bins=p.bins,
                                                              value_area=p.value_area), (*hlc, "volume")),
            "support_resistance": (lambda: fst.SupportResistanceState(n_cols, k=p.pivot_k, n=p.window, tol=p.tol,
                                                                      min_touches=p.min_touches), hlc),
            # (n_cols, 1): the one declared ratio
            "fibonacci": (lambda: fst.FibonacciState(n_cols, k=p.pivot_k, n=p.window, ratios=(p.ratio,)),
                          ("high", "low")),
        }
        factory, self.inputs = made[ispec.fn]
        out = getattr(p, "output", None)
        self.pick = _OUTPUTS[ispec.fn].index(out) if out is not None else None
        self.ind = factory()
        self.fib = ispec.fn == "fibonacci"

    def update(self, bar: BarSlice) -> np.ndarray:
        v = self.ind.update(*(getattr(bar, name) for name in self.inputs))
        if self.pick is not None:
            v = v[self.pick]
        elif self.fib:
            v = v[:, 0]
        return np.ascontiguousarray(v, dtype=np.float64)

    def state(self) -> dict[str, Any]:
        return dict(self.ind.state())

    def load_state(self, state: dict[str, Any]) -> None:
        self.ind.load_state(state)


class _Prev:
    """``prev(x, n)``: the last n values of x in a ring (grown to n as the history grows)."""

    def __init__(self, n: int, n_cols: int) -> None:
        self.n = n
        self.buf = np.full((min(n, 16), n_cols), np.nan)

    def step(self, x: np.ndarray, t: int) -> np.ndarray:
        i = t % self.n
        out = self.buf[i].copy() if t >= self.n else np.full(x.shape, np.nan)
        if i >= self.buf.shape[0]:  # only while t < n
            grown = np.full((min(self.n, max(2 * self.buf.shape[0], i + 1)), x.shape[0]), np.nan)
            grown[:self.buf.shape[0]] = self.buf
            self.buf = grown
        self.buf[i] = x
        return out

    def state(self) -> dict[str, Any]:
        return {"buf": self.buf.copy()}

    def load_state(self, state: dict[str, Any]) -> None:
        self.buf = np.array(state["buf"], dtype=np.float64)


class _Cross:
    """``crosses_above(a, b)``: the previous bar's a and b (NaN before the first bar: False)."""

    def __init__(self, n_cols: int) -> None:
        self.a = np.full(n_cols, np.nan)
        self.b = np.full(n_cols, np.nan)

    def step(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        out = (a > b) & (self.a <= self.b)
        self.a, self.b = a.copy(), b.copy()
        return out

    def state(self) -> dict[str, Any]:
        return {"a": self.a.copy(), "b": self.b.copy()}

    def load_state(self, state: dict[str, Any]) -> None:
        self.a, self.b = np.array(state["a"], dtype=np.float64), np.array(state["b"], dtype=np.float64)


def _has_atom(rule: Rule) -> set[int]:
    """ids of the nodes whose subtree holds a bars_held atom (their value depends on the position)."""
    out: set[int] = set()

    def walk(node: ast.AST) -> bool:
        found = any([walk(c) for c in ast.iter_child_nodes(node)])
        if isinstance(node, ast.Compare):
            found = found or any((id(node), i) in rule.atom_of for i in range(len(node.ops)))
        if found:
            out.add(id(node))
        return found

    walk(rule.tree.body)
    return out


def _bc(v: Any, shape: tuple[int, ...]) -> Any:
    """``np.broadcast_to`` without its cost when ``v`` already has the shape (the same values)."""
    if isinstance(v, np.ndarray) and v.shape == shape:
        return v
    return np.broadcast_to(v, shape)


class _RuleStream:
    """A checked rule compiled once into closures over this bar's (n_cols,) values.

    The same operations as ``_evaluate`` on the same element values, so the results are equal
    bit for bit; ``prev`` and crossings keep the history they need (``_Prev``, ``_Cross``). The
    subtrees free of bars_held atoms are computed once per bar (each stateful node steps exactly
    once); only the and/or/not/compare nodes above atoms are re-evaluated per truth assignment.
    """

    def __init__(self, rule: Rule, n_cols: int) -> None:
        self.rule, self.shape = rule, (n_cols,)
        self.env: dict[str, np.ndarray] = {}
        self.t = 0
        self.nodes: list[_Prev | _Cross] = []
        self._slots: list[Callable[[], Any]] = []
        self._vals: list[Any] = []
        self._atomic = _has_atom(rule)
        self._root = self._bits_fn(rule.tree.body)
        self.n_atoms = len(rule.atoms)

    def step(self, env: dict[str, np.ndarray], t: int) -> np.ndarray:
        """This bar's rule, (2**K, n_cols) bool: row m for the atom truth assignment m."""
        self.env.clear()
        self.env.update(env)
        self.t = t
        k = self.n_atoms
        out = np.empty((2 ** k, self.shape[0]), dtype=np.bool_)
        with np.errstate(all="ignore"):
            self._vals[:] = [s() for s in self._slots]
            for m in range(2 ** k):
                out[m] = self._root(tuple(bool(m >> i & 1) for i in range(k)))
        return out

    def state(self) -> dict[str, Any]:
        return {f"{i}.{key}": v for i, node in enumerate(self.nodes) for key, v in node.state().items()}

    def load_state(self, state: dict[str, Any]) -> None:
        for i, node in enumerate(self.nodes):
            node.load_state({key.split(".", 1)[1]: v for key, v in state.items() if key.split(".", 1)[0] == str(i)})

    # -- compilation --

    def _slot(self, node: ast.AST) -> Callable[[tuple[bool, ...]], Any]:
        i = len(self._slots)
        self._slots.append(self._fn(node))
        vals = self._vals
        return lambda bits: vals[i]

    def _bits_fn(self, node: ast.AST) -> Callable[[tuple[bool, ...]], Any]:
        """Nodes above atoms: and/or, not, and comparisons holding an atom."""
        if id(node) not in self._atomic:
            return self._slot(node)
        shape = self.shape
        if isinstance(node, ast.BoolOp):
            fs = [self._bits_fn(v) for v in node.values]
            bop = node.op

            def boolop(bits: tuple[bool, ...]) -> Any:
                return _fold_bool(bop, [_bc(f(bits), shape) for f in fs])
            return boolop
        if isinstance(node, ast.UnaryOp):
            f = self._bits_fn(node.operand)
            return lambda bits: np.logical_not(f(bits))
        assert isinstance(node, ast.Compare)
        sides = [node.left, *node.comparators]
        pairs: list[tuple[int, Any, int, int]] = []
        side_fn: dict[int, Callable[[tuple[bool, ...]], Any]] = {}
        for i, op in enumerate(node.ops):
            atom = self.rule.atom_of.get((id(node), i))
            if atom is None:
                for s in (i, i + 1):
                    if s not in side_fn:
                        side_fn[s] = self._slot(sides[s])
            pairs.append((-1 if atom is None else atom, _CMP[type(op)][0], i, i + 1))

        def compare(bits: tuple[bool, ...]) -> Any:
            out = np.ones(shape, dtype=np.bool_)
            for atom, cmp, a, b in pairs:
                if atom >= 0:
                    out = out & bits[atom]
                else:
                    out = out & _bc(cmp(side_fn[a](bits), side_fn[b](bits)), shape)
            return out
        return compare

    def _fn(self, node: ast.AST) -> Callable[[], Any]:  # noqa: C901 - one branch per construct
        """An atom-free subtree: evaluated once per bar, in the same operations as ``_evaluate``."""
        shape, env = self.shape, self.env
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool):
                const_b = np.full(shape, node.value, dtype=np.bool_)
                return lambda: const_b
            const_f = float(node.value)  # type: ignore[arg-type]  # the checker admitted numbers only
            return lambda: const_f
        if isinstance(node, ast.Name):
            if node.id in BOOL_NAMES:
                name_b = np.full(shape, BOOL_NAMES[node.id], dtype=np.bool_)
                return lambda: name_b
            name = node.id
            return lambda: env[name]
        if isinstance(node, ast.BoolOp):
            fs = [self._fn(v) for v in node.values]
            bop_ = node.op

            def boolop() -> Any:
                return _fold_bool(bop_, [_bc(f(), shape) for f in fs])
            return boolop
        if isinstance(node, ast.UnaryOp):
            f = self._fn(node.operand)
            if isinstance(node.op, ast.Not):
                return lambda: np.logical_not(f())
            if isinstance(node.op, ast.USub):
                return lambda: -f()
            return f
        if isinstance(node, ast.BinOp):
            op, lf, rf = _BIN[type(node.op)], self._fn(node.left), self._fn(node.right)
            return lambda: op(lf(), rf())
        if isinstance(node, ast.Compare):
            # each side once per bar (a chained middle side is read by two comparisons)
            side_fns = [self._fn(s) for s in (node.left, *node.comparators)]
            cmps = [_CMP[type(op)][0] for op in node.ops]

            def compare() -> Any:
                vals = [f() for f in side_fns]
                out = np.ones(shape, dtype=np.bool_)
                for i, cmp in enumerate(cmps):
                    out = out & _bc(cmp(vals[i], vals[i + 1]), shape)
                return out
            return compare
        assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        fn = node.func.id
        args = [self._fn(a) for a in node.args[:1 if fn == "prev" else None]]

        def floats(f: Callable[[], Any]) -> np.ndarray:
            return _bc(np.asarray(f(), dtype=np.float64), shape)
        if fn == "prev":
            prev = _Prev(int(_number(node.args[1]) or 1), shape[0])
            self.nodes.append(prev)
            return lambda: prev.step(floats(args[0]), self.t)
        if fn in ("crosses_above", "crosses_below"):
            cross = _Cross(shape[0])
            self.nodes.append(cross)
            if fn == "crosses_above":
                return lambda: cross.step(floats(args[0]), floats(args[1]))
            return lambda: cross.step(floats(args[1]), floats(args[0]))
        if fn == "abs":
            return lambda: np.abs(floats(args[0]))
        if fn == "min":
            return lambda: np.minimum(floats(args[0]), floats(args[1]))
        return lambda: np.maximum(floats(args[0]), floats(args[1]))


@njit(cache=True)
def _hold_bar_nb(long: np.ndarray, t0: np.ndarray, stop: np.ndarray, target: np.ndarray, t: int,
                 entry: np.ndarray, exit_table: np.ndarray, atom_ops: np.ndarray, atom_vals: np.ndarray,
                 close: np.ndarray, stop_px: np.ndarray, target_px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bar t of ``hold_nb`` for every column (the same ``hold_step``); updates the state in place."""
    n = entry.shape[0]
    entries = np.zeros(n, dtype=np.bool_)
    exits = np.zeros(n, dtype=np.bool_)
    for j in range(n):
        r = cm.hold_step(long[j], t0[j], stop[j], target[j], t, entry[j], exit_table[:, j], atom_ops, atom_vals,
                         close[j], stop_px[j], target_px[j])
        long[j] = r[0]
        t0[j] = r[1]
        stop[j] = r[2]
        target[j] = r[3]
        entries[j] = r[4]
        exits[j] = r[5]
    return entries, exits


class YamlSignalStream:
    """``SignalStream`` of a YAML strategy: per bar, the indicators step once, the rules are
    evaluated on this bar's values and the position state machine (``cm.hold_step``, the step
    of the batch ``hold_nb``) advances one bar. Equal bit for bit to ``YamlStrategy.signals``."""

    def __init__(self, spec: RuleSpec, n_symbols: int) -> None:
        if n_symbols < 1:
            raise ValueError("n_symbols must be >= 1")
        self.spec, self.columns = spec, int(n_symbols)
        n = self.columns
        self._inds = {name: _IndicatorStream(ispec, n) for name, ispec in spec.indicators.items()}
        self._entry = _RuleStream(spec.entry, n)
        self._exit = _RuleStream(spec.exit, n)
        self._ops = np.array([a[0] for a in spec.exit.atoms], dtype=np.int64)
        self._atom_vals = np.array([a[1] for a in spec.exit.atoms], dtype=np.float64)
        self.t = 0
        self.long = np.zeros(n, dtype=np.bool_)
        self.t0 = np.zeros(n, dtype=np.int64)
        self.stop = np.full(n, np.nan)
        self.target = np.full(n, np.nan)
        self.values: dict[str, np.ndarray] = {}  # the last bar's prices and indicators, (n_symbols,)

    def update(self, bar: BarSlice) -> tuple[BoolArray, BoolArray]:
        env = {name: np.asarray(getattr(bar, name), dtype=np.float64) for name in PRICE_NAMES}
        if any(v.shape != (self.columns,) for v in env.values()):
            raise ValueError(f"bar has {env['close'].shape} prices, this stream runs {self.columns} symbols")
        for name, istream in self._inds.items():
            env[name] = istream.update(bar)
        self.values = env
        t = self.t
        entry = self._entry.step(env, t)[0]
        table = self._exit.step(env, t)
        close = env["close"]
        sl, tp = self.spec.stop_loss_pct, self.spec.take_profit_pct
        nan = np.full(close.shape, np.nan)
        stop = close * (1 - sl) if sl else nan
        target = close * (1 + tp) if tp else nan
        ent, ex = _hold_bar_nb(self.long, self.t0, self.stop, self.target, t, entry, table, self._ops,
                               self._atom_vals, close, stop, target)
        self.t = t + 1
        return ent, ex

    def state(self) -> dict[str, Any]:
        out: dict[str, Any] = {"columns": self.columns, "t": self.t, "long": self.long.copy(),
                               "t0": self.t0.copy(), "stop": self.stop.copy(), "target": self.target.copy()}
        for name, istream in self._inds.items():
            out.update({f"ind:{name}:{k}": _copy(v) for k, v in istream.state().items()})
        out.update({f"entry:{k}": v for k, v in self._entry.state().items()})
        out.update({f"exit:{k}": v for k, v in self._exit.state().items()})
        return out

    def load_state(self, state: dict[str, Any]) -> None:
        if int(state["columns"]) != self.columns:
            raise ValueError(f"state of a {state['columns']}-column stream, this one has {self.columns}")
        self.t = int(state["t"])
        self.long = np.array(state["long"], dtype=np.bool_)
        self.t0 = np.array(state["t0"], dtype=np.int64)
        self.stop = np.array(state["stop"], dtype=np.float64)
        self.target = np.array(state["target"], dtype=np.float64)

        def part(prefix: str) -> dict[str, Any]:
            return {k[len(prefix):]: _copy(v) for k, v in state.items() if k.startswith(prefix)}
        for name, istream in self._inds.items():
            istream.load_state(part(f"ind:{name}:"))
        self._entry.load_state(part("entry:"))
        self._exit.load_state(part("exit:"))


def _copy(v: Any) -> Any:
    return v.copy() if isinstance(v, np.ndarray) else v
