"""Session templates: named YAML start options in ``config/sessions/`` (``trading paper templates``).

A template is a flat mapping of the options ``trading paper start`` takes (strategy, params,
symbol, venue, timeframe, feed, speed ...). Unknown keys are refused with the allowed ones
listed, so a typo never silently falls back to a default. One optional block is not a start
option: ``auto_start`` (:class:`AutoStart`) opts the template into a session per champion version
of a registered model (``trading_core.paper.auto_start``).

This module is the one reader of templates: the CLI, the Streamlit app and the champion
auto-start use it. ``TRADING_SESSION_TEMPLATES`` names another folder (tests, a deployment that
keeps its templates outside the checkout).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import InvalidInput

__all__ = ["TEMPLATE_KEYS", "AutoStart", "auto_start_of", "list_templates", "load_template", "templates_dir"]

TEMPLATE_KEYS = frozenset({"description", "strategy", "strategy_file", "params", "symbol", "venue", "timeframe",
                           "start", "end", "cash", "fee_bps", "slippage", "fill", "sizing", "size", "short",
                           "warmup_bars", "feed", "speed", "name", "risk_config", "poll_s", "auto_start"})
ENV_DIR = "TRADING_SESSION_TEMPLATES"


class AutoStart(BaseModel):
    """``auto_start:`` of a template: start a session pinned to each new champion of ``on_champion``.

    ``keep_previous``: leave the session of the previous champion running (default: stop it).
    ``enabled``: false keeps the block documented but inert (the shipped ``spx-ml-auto`` is so,
    so a fresh ``make run`` starts no session nobody asked for)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    on_champion: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.\-]+$",
                             description="registered model whose champion alias the template follows")
    keep_previous: bool = False
    enabled: bool = True


def templates_dir() -> Path:
    """``$TRADING_SESSION_TEMPLATES`` or the project's ``config/sessions``."""
    from ..config import PROJECT_ROOT

    raw = os.environ.get(ENV_DIR)
    return Path(raw) if raw else PROJECT_ROOT / "config" / "sessions"


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name or not name.replace("-", "").replace("_", "").isalnum() \
            or len(name) > 64:
        raise InvalidInput(f"--template {str(name)[:40]!r}: a template name is letters, digits, '-' and '_'")
    return name


def list_templates(directory: Path | None = None) -> list[str]:
    """The template names in ``directory`` (default :func:`templates_dir`), sorted."""
    d = directory or templates_dir()
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []


def load_template(name: str, directory: Path | None = None) -> dict[str, Any]:
    """The validated mapping of template ``name``; ``InvalidInput`` names the file and the problem."""
    from ..yaml_io import load_yaml_file

    _check_name(name)
    d = directory or templates_dir()
    path = d / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(list_templates(d)) or "none"
        raise InvalidInput(f"--template {name}: no such template (known: {known})")
    doc, _ = load_yaml_file(path)
    if not isinstance(doc, dict):
        raise InvalidInput(f"{path}: a template is a mapping of start options")
    unknown = sorted(set(doc) - TEMPLATE_KEYS)
    if unknown:
        raise InvalidInput(f"{path}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(TEMPLATE_KEYS))})")
    if "auto_start" in doc:
        _auto_start(path, doc)
    return doc


def _auto_start(path: Path, doc: dict[str, Any]) -> AutoStart:
    try:
        spec = AutoStart.model_validate(doc["auto_start"])
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise InvalidInput(f"{path}: auto_start{'.' + where if where else ''}: {first['msg']} "
                           "(expected auto_start: {on_champion: MODEL, keep_previous: false, enabled: true})") from None
    if doc.get("strategy") != "ml_signal":
        raise InvalidInput(f"{path}: auto_start needs strategy: ml_signal (the session trades the champion's "
                           f"version), not {doc.get('strategy')!r}")
    model = (doc.get("params") or {}).get("model") if isinstance(doc.get("params"), dict) else None
    if model and model != spec.on_champion:
        raise InvalidInput(f"{path}: params.model {model!r} differs from auto_start.on_champion {spec.on_champion!r}")
    return spec


def auto_start_of(doc: dict[str, Any], name: str = "?") -> AutoStart | None:
    """The template's ``auto_start`` block (validated), None when it has none."""
    if "auto_start" not in doc:
        return None
    return _auto_start(Path(f"{name}.yaml"), doc)
