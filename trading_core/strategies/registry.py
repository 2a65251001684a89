"""Strategies by name, built from loosely typed parameters (CLI ``k=v`` strings, YAML, JSON)."""

from __future__ import annotations

import importlib
import typing
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from typing import Any

from pydantic import ValidationError
from pydantic.fields import FieldInfo

from ..errors import InvalidInput
from .base import MAX_WINDOW, Strategy, StrategyParams

# name -> (module, class). A strategy's module is imported the first time it is asked for, so
# checking a name (a CLI typo) costs nothing and importing the registry pulls in no kernels.
_BUILTIN: dict[str, tuple[str, str]] = {
    "buy_and_hold": ("buy_and_hold", "BuyAndHold"),
    "ma_crossover": ("ma_crossover", "MaCrossover"),
    "rsi_mean_reversion": ("rsi_mean_reversion", "RsiMeanReversion"),
    "macd": ("macd", "Macd"),
    "bollinger_mean_reversion": ("bollinger", "BollingerMeanReversion"),
    "bollinger_breakout": ("bollinger", "BollingerBreakout"),
    "support_resistance": ("support_resistance", "SupportResistance"),
    "fibonacci_retracement": ("fibonacci_retracement", "FibonacciRetracement"),
    "volume_profile": ("volume_profile", "VolumeProfile"),
    "seasonality": ("seasonality", "Seasonality"),
    "sentiment_filter": ("sentiment", "SentimentFilter"),
    "yaml": ("yaml_builder", "YamlStrategy"),  # needs file=<path>; the CLI's --strategy-file sets it
    "ensemble": ("ensemble", "Ensemble"),
    "regime_rotation": ("rotation", "RegimeRotation"),
    "ml_signal": ("ml_signal", "MlSignal"),  # trades the registered champion (trading_core.ml)
}


class _Registry(MutableMapping[str, type]):
    """Strategy classes by name, imported on first use; tests may register their own."""

    def __init__(self, builtin: dict[str, tuple[str, str]]) -> None:
        self._where: dict[str, tuple[str, str] | None] = dict(builtin)
        self._loaded: dict[str, type] = {}

    def __getitem__(self, name: str) -> type:
        if name in self._loaded:
            return self._loaded[name]
        where = self._where[name]  # KeyError: not a strategy
        assert where is not None
        cls: type = getattr(importlib.import_module(f"{__package__}.{where[0]}"), where[1])
        self._loaded[name] = cls
        return cls

    def __setitem__(self, name: str, cls: type) -> None:
        self._loaded[name] = cls
        self._where.setdefault(name, None)

    def __delitem__(self, name: str) -> None:
        del self._where[name]
        self._loaded.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, name: object) -> bool:
        return name in self._where


STRATEGIES: MutableMapping[str, type] = _Registry(_BUILTIN)


def check_strategy_name(name: str) -> None:
    """Refuse an unknown strategy name, naming the known ones, without importing any strategy."""
    if name not in STRATEGIES:
        raise InvalidInput(f"unknown strategy {name!r}; expected one of {', '.join(sorted(STRATEGIES))}")


def _allowed(field: FieldInfo) -> str:
    """Human description of the values a parameter accepts, for error messages."""
    ann = field.annotation
    if typing.get_origin(ann) is typing.Literal:
        return "one of " + ", ".join(str(a) for a in typing.get_args(ann))
    bounds = []
    for m in field.metadata:
        for attr, op in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            if getattr(m, attr, None) is not None:
                bounds.append(f"{op} {getattr(m, attr)}")
    if ann not in (int, float, str, bool):
        return field.description or str(ann).replace("typing.", "")
    names: dict[Any, str] = {int: "integer", float: "number", str: "text", bool: "true or false"}
    text = names[ann]
    if ann is int and not any(b.startswith(("<=", "<")) for b in bounds):
        bounds.append(f"<= {MAX_WINDOW}")  # StrategyParams bounds every integer
    if bounds:
        text += " " + " and ".join(bounds)
    if field.description:
        text += f" ({field.description})"
    return text


def strategy_params_help(name: str) -> dict[str, str]:
    """Each parameter of strategy ``name`` with what it accepts and its default."""
    cls = _strategy_class(name)
    params: type[StrategyParams] = cls.Params
    return {k: f"{_allowed(f)}; default {f.default!r}" for k, f in params.model_fields.items()}


def _strategy_class(name: str) -> Any:
    check_strategy_name(name)
    return STRATEGIES[name]


def get_strategy(name: str, params: Mapping[str, str | float | int] | None = None) -> Strategy:
    """Build strategy ``name`` with ``params``; refuse unknown names and bad values by name.

    The message names the strategy, the parameter and what it accepts, in one line.
    """
    cls = _strategy_class(name)
    model: type[StrategyParams] = cls.Params
    given = dict(params or {})
    fields = model.model_fields
    unknown = sorted(k for k in given if k not in fields)
    if unknown:
        allowed = ", ".join(fields) or "none"
        raise InvalidInput(f"strategy {name}: unknown param {unknown[0]!r}; allowed params: {allowed}")
    try:
        p = model.model_validate(given)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            loc = [str(x) for x in err["loc"]]
            msg = err["msg"].removeprefix("Value error, ")
            if loc and loc[0] in fields:
                problems.append(f"param {loc[0]!r}={given.get(loc[0])!r}: {msg} "
                                f"(allowed: {_allowed(fields[loc[0]])})")
            else:
                problems.append(msg)
        raise InvalidInput(f"strategy {name}: " + "; ".join(problems)) from None
    return cls(p)  # type: ignore[no-any-return]


def parse_params(items: Sequence[str]) -> dict[str, str]:
    """``["fast=10", "kind=ema"]`` -> ``{"fast": "10", "kind": "ema"}``; values stay strings."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidInput(f"--param {item!r}: expected key=value")
        if key in out:
            raise InvalidInput(f"--param {key!r} given twice")
        out[key] = value.strip()
    return out
