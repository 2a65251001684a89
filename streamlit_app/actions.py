"""What the app writes: session requests, and nothing else.

A start goes through exactly what ``trading paper start`` does -- the same validation
(``cli.paper.session_config``: templates, strategy, symbols against the allowlist, capital,
replay window), the same pre-flight, then ``SessionStore.create`` (the session file and its one
start request); the Dagster sensor launches the job. Stop, pause and resume append a request.
Every refusal is an ``InvalidInput`` with a message for the user.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trading_core.errors import InvalidInput
from trading_core.paper.control import SessionStore
from trading_core.paper.preflight import Check

SOURCE = "app"
_MAX_TEXT = 200  # no field of the form is longer; anything longer is refused before parsing


@dataclass(frozen=True)
class StartForm:
    """The start form's fields as typed (text, unparsed): validated only by ``session_config``."""

    template: str | None = None
    name: str = ""
    strategy: str | None = None
    params: str = ""  # "fast=10, slow=30"
    symbols: str = ""  # "BTC/USD" or "BTC/USD,ETH/USD"
    venue: str = ""
    timeframe: str = ""
    capital: float | None = None
    speed: str = ""  # "max" or bars per second
    feed: str | None = None
    start: str = ""
    end: str = ""
    risk_config: str | None = None


@dataclass
class StartOutcome:
    checks: list[Check] = field(default_factory=list)
    session_id: str | None = None
    request_id: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def refused(self) -> list[str]:
        return [f"{c.name}: {c.detail}" for c in self.checks if not c.ok]


def templates_dir() -> Path:
    from trading_core.paper.templates import templates_dir as _templates_dir

    return _templates_dir()


def templates() -> dict[str, dict[str, Any]]:
    """Named session templates (``config/sessions/*.yaml``) that load; a broken one is left out."""
    from trading_core.paper.templates import list_templates, load_template

    out = {}
    for name in list_templates(templates_dir()):
        try:
            out[name] = load_template(name, templates_dir())
        except InvalidInput:
            continue
    return out


def _text(label: str, value: str | None) -> str | None:
    if value is None:
        return None
    value = str(value).strip()
    if len(value) > _MAX_TEXT:
        raise InvalidInput(f"{label}: at most {_MAX_TEXT} characters")
    if any(ord(c) < 32 for c in value):
        raise InvalidInput(f"{label}: control characters are not allowed")
    return value or None


def _symbols(raw: str | None) -> str | None:
    """Each symbol checked against the allowlist here, so the message names the bad one."""
    from trading_core.symbols import check_symbol

    if raw is None:
        return None
    return ",".join(check_symbol(s.strip()) for s in raw.split(",") if s.strip()) or None


def _venue(raw: str | None) -> str | None:
    from trading_core.symbols import check_venue

    return None if raw is None else check_venue(raw)


def _params(raw: str | None) -> list[str]:
    if not raw:
        return []
    out = []
    for item in raw.replace(";", ",").split(","):
        item = item.strip()
        if not item:
            continue
        k, sep, v = item.partition("=")
        if not sep or not k.strip().isidentifier() or not v.strip():
            raise InvalidInput(f"parameters: {item[:40]!r} is not NAME=VALUE (e.g. fast=10, slow=30)")
        out.append(f"{k.strip()}={v.strip()}")
    return out


def build_config(form: StartForm, config_file: str | None = None) -> tuple[Any, Any]:
    """The validated ``SessionConfig`` of the form and the loaded ``TradingConfig``."""
    from trading_core.cli.paper import session_config
    from trading_core.config import load_config
    from trading_core.warehouse import Warehouse

    cfg = load_config(config_file)
    template = _text("template", form.template)
    tpl: dict[str, Any] = {}
    if template is not None:
        known = templates()
        if template not in known:
            raise InvalidInput(f"template {template[:40]!r}: no such template in {templates_dir()}")
        tpl = known[template]
    cash = None
    if form.capital is not None:
        cash = float(form.capital)
        if not 0 < cash <= 1e12 or cash != cash:
            raise InvalidInput(f"capital {form.capital}: expected a positive amount up to 1e12")

    def extra(key: str) -> str | None:  # a template setting the form does not show
        return None if tpl.get(key) is None else str(tpl[key])

    # The form was filled from the template and is the whole truth (its parameters replace the
    # template's, they do not add to them), so the template's remaining settings are passed as
    # flags and the template's name is recorded on the session.
    args = argparse.Namespace(
        template=None, name=_text("name", form.name), strategy=_text("strategy", form.strategy),
        strategy_file=extra("strategy_file"), symbol=_symbols(_text("symbols", form.symbols)),
        venue=_venue(_text("venue", form.venue)), timeframe=_text("timeframe", form.timeframe),
        start=_text("start", form.start), end=_text("end", form.end),
        cash=None if cash is None else repr(cash), fee_bps=extra("fee_bps"), slippage=extra("slippage"),
        fill=extra("fill"), sizing=extra("sizing"), size=extra("size"), warmup_bars=extra("warmup_bars"),
        risk_config=_text("risk config", form.risk_config) or extra("risk_config"),
        param=_params(_text("parameters", form.params)), short=bool(tpl.get("short", False)),
        feed=_text("feed", form.feed), speed=_text("speed", form.speed), config=config_file)
    wh = Warehouse(cfg.warehouse.path, deadline_s=5.0)
    config = session_config(args, cfg, wh)
    if template is not None:
        update: dict[str, Any] = {"template": template}
        if tpl.get("poll_s") is not None:
            update["poll_s"] = float(tpl["poll_s"])
        config = type(config).model_validate({**config.model_dump(), **update})
    return config, cfg


def start_session(form: StartForm, config_file: str | None = None, *, dry_run: bool = False) -> StartOutcome:
    """Validate, pre-flight and (unless ``dry_run`` or a check fails) create the session with its
    one start request. A refused start writes nothing."""
    from trading_core.paper.preflight import preflight
    from trading_core.warehouse import Warehouse

    config, cfg = build_config(form, config_file)
    wh = Warehouse(cfg.warehouse.path, deadline_s=5.0)
    checks = preflight(config, wh, data_dir=Path(cfg.data_dir), stale_bars=cfg.market_data.validation.stale_bars)
    out = StartOutcome(checks=checks, summary=config.summary())
    if out.refused or dry_run:
        return out
    sid, req = SessionStore(Path(cfg.data_dir) / "paper").create(config, source=SOURCE)
    out.session_id, out.request_id = sid, req.request_id
    return out


def request(store: SessionStore, session_id: str, action: str) -> str:
    """Append stop/pause/resume for the session; returns the request id."""
    from trading_core.paper.config import check_session_id

    if action not in ("stop", "pause", "resume"):
        raise InvalidInput(f"action {action[:20]!r}: expected stop, pause or resume")
    sid = check_session_id(session_id)
    if not store.exists(sid):
        raise InvalidInput(f"no paper session {sid}")
    return store.request(sid, action, source=SOURCE).request_id
