"""Strategies by name, built from loosely typed parameters (CLI ``k=v`` strings, YAML, JSON)."""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError
from pydantic.fields import FieldInfo

from ..errors import InvalidInput
from .base import MAX_WINDOW, Strategy, StrategyParams
from .bollinger import BollingerBreakout, BollingerMeanReversion
from .buy_and_hold import BuyAndHold
from .fibonacci_retracement import FibonacciRetracement
from .ma_crossover import MaCrossover
from .macd import Macd
from .rsi_mean_reversion import RsiMeanReversion
from .seasonality import Seasonality
from .sentiment import SentimentFilter
from .support_resistance import SupportResistance
from .volume_profile import VolumeProfile
from .yaml_builder import YamlStrategy

STRATEGIES: dict[str, type] = {
    BuyAndHold.name: BuyAndHold,
    MaCrossover.name: MaCrossover,
    RsiMeanReversion.name: RsiMeanReversion,
    Macd.name: Macd,
    BollingerMeanReversion.name: BollingerMeanReversion,
    BollingerBreakout.name: BollingerBreakout,
    SupportResistance.name: SupportResistance,
    FibonacciRetracement.name: FibonacciRetracement,
    VolumeProfile.name: VolumeProfile,
    Seasonality.name: Seasonality,
    SentimentFilter.name: SentimentFilter,
    YamlStrategy.name: YamlStrategy,  # needs file=<path>; the CLI's --strategy-file sets it
}

# Composite strategies: their members are built through this registry, hence registered after it.
from .ensemble import Ensemble  # noqa: E402
from .rotation import RegimeRotation  # noqa: E402

STRATEGIES[Ensemble.name] = Ensemble
STRATEGIES[RegimeRotation.name] = RegimeRotation


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
    try:
        return STRATEGIES[name]
    except KeyError:
        raise InvalidInput(
            f"unknown strategy {name!r}; expected one of {', '.join(sorted(STRATEGIES))}"
        ) from None


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
