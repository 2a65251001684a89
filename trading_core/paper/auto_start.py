"""Sessions that follow a champion: one pinned paper session per champion version, started once.

A template with ``auto_start: {on_champion: MODEL}`` (``templates.AutoStart``) asks for a
session trading ``MODEL``'s champion version, pinned (``params.version``, ``reload`` off), each
time the ``champion`` alias moves -- a promotion by rule, ``trading models promote``, the weekly
or drift retrain. The decisions live here, Dagster-free; the sensor
(``pipelines/defs/trading/auto_start.py``) and ``trading paper auto-start`` read the champion
versions from the registry and call :func:`auto_start`.

Exactly once, without a database: the session id is derived from (template, model, version)
(:func:`auto_session_id`) and ``SessionStore.create`` makes the session folder exclusively, so a
repeated tick, a daemon restart, two processes racing or the same version promoted twice find the
session already there and start nothing. Once the champion's session exists, the template's
earlier auto-started sessions (first request ``source: champion``, created before it) that still
want to run get a stop request, honoured by their runs within a bar -- unless the template says
``keep_previous: true``. A rollback to a version whose session already exists starts nothing and
stops nothing (its session was the older one).

A start the pre-flight refuses writes nothing and stops nothing: the next tick tries again (the
data may be fresh by then), so a refusal never leaves the template without its running session.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidInput, TradingError
from .config import SessionConfig, new_session_id
from .control import SessionStore, desired_state
from .templates import AutoStart, auto_start_of, list_templates, load_template

__all__ = ["SOURCE", "AutoSession", "Follower", "Outcome", "Plan", "auto_session_id", "auto_sessions",
           "auto_start", "champions", "describe", "followers", "pinned_template", "plan", "preflight_check",
           "session_builder"]

SOURCE = "champion"  # the start/stop requests' source: what tells an auto-started session apart
_WANTS_TO_RUN = ("running", "paused")


@dataclass(frozen=True)
class Follower:
    """An opted-in template: its name, its ``auto_start`` block and its mapping."""

    template: str
    spec: AutoStart
    doc: dict[str, Any]


@dataclass(frozen=True)
class AutoSession:
    """A session an earlier auto-start created (what the plan needs to know of it)."""

    session_id: str
    template: str
    created_at: float
    desired: str  # desired_state of its request log: new | running | paused | stopped
    version: int | None


@dataclass(frozen=True)
class Plan:
    """What one template needs for the current champion: start ``session_id`` or not, stop these."""

    template: str
    model: str
    version: int | None
    session_id: str | None
    start: bool
    stop: tuple[str, ...] = ()
    note: str = ""


@dataclass
class Outcome:
    """What :func:`auto_start` did for one template (``action``: started | already_started |
    no_champion | refused | failed | planned)."""

    template: str
    model: str
    version: int | None
    action: str
    session_id: str | None = None
    stopped: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def auto_session_id(template: str, model: str, version: int) -> str:
    """The one session id of (template, model, version): the idempotency key of a start."""
    return new_session_id(seed=f"auto-start:{template}:{model}:v{int(version)}")


def followers(directory: Path | None = None) -> tuple[list[Follower], list[str]]:
    """The enabled opted-in templates, and one line per template that does not load (skipped)."""
    out, broken = [], []
    for name in list_templates(directory):
        try:
            doc = load_template(name, directory)
            spec = auto_start_of(doc, name)
        except InvalidInput as e:
            broken.append(str(e))
            continue
        if spec is not None and spec.enabled:
            out.append(Follower(name, spec, doc))
    return out, broken


def auto_sessions(store: SessionStore, templates: set[str]) -> list[AutoSession]:
    """The auto-started sessions (first request from ``SOURCE``) of ``templates``, oldest first."""
    out = []
    for sid in store.session_ids():
        reqs = store.requests(sid)
        if not reqs or reqs[0].source != SOURCE:
            continue
        config = store.load(sid)
        if config.template not in templates:
            continue
        raw = config.request.params.get("version")
        out.append(AutoSession(sid, config.template, store.created_at(sid), desired_state(reqs),
                               int(raw) if isinstance(raw, int | float | str) and str(raw).isdigit() else None))
    return out


def plan(follow: Sequence[Follower], champion_of: Mapping[str, int | None],
         sessions: Sequence[AutoSession]) -> list[Plan]:
    """Pure: per template, whether the champion's session must be started and which earlier
    auto-started sessions of the template must be stopped."""
    plans = []
    for f in follow:
        model = f.spec.on_champion
        version = champion_of.get(model)
        if version is None:
            plans.append(Plan(f.template, model, None, None, False, note=f"model {model} has no champion yet"))
            continue
        sid = auto_session_id(f.template, model, version)
        mine = [s for s in sessions if s.template == f.template]
        target = next((s for s in mine if s.session_id == sid), None)
        start = target is None or target.desired == "new"  # "new": created, start request not written
        stop: tuple[str, ...] = ()
        if not f.spec.keep_previous:
            stop = tuple(s.session_id for s in mine if s.session_id != sid and s.desired in _WANTS_TO_RUN
                         and (target is None or s.created_at < target.created_at))
        plans.append(Plan(f.template, model, version, sid, start, stop,
                          note="" if start else f"already started for version {version} ({sid})"))
    return plans


def champions(models: set[str], read_alias: Callable[[str], int | None]) -> dict[str, int | None]:
    """``{model: champion version or None}`` through ``read_alias`` (the registry's alias lookup)."""
    return {m: read_alias(m) for m in sorted(models)}


BuildConfig = Callable[[Follower, int], SessionConfig]
Check = Callable[[SessionConfig], list[str]]


def auto_start(store: SessionStore, champion_of: Mapping[str, int | None], *, build: BuildConfig,
               check: Check | None = None, directory: Path | None = None, dry_run: bool = False) -> list[Outcome]:
    """Carry out :func:`plan` for every opted-in template: create the champion's session (its
    start request has ``source: champion``) after ``check`` (the pre-flight's failing reasons)
    passes, then stop the template's earlier auto-started sessions. ``build`` turns a template
    and a version into the pinned ``SessionConfig``. ``dry_run`` writes nothing."""
    follow, broken = followers(directory)
    if not follow:
        return []
    by_name = {f.template: f for f in follow}
    sessions = auto_sessions(store, set(by_name))
    versions = {s.session_id: s.version for s in sessions}
    out = []
    for p in plan(follow, champion_of, sessions):
        o = Outcome(p.template, p.model, p.version, "planned" if dry_run else "already_started", p.session_id)
        if p.version is None or p.session_id is None:
            o.action, o.reasons = "no_champion", [p.note]
            out.append(o)
            continue
        if dry_run:
            o.reasons = [("start" if p.start else p.note)] + [f"stop {s}" for s in p.stop]
            out.append(o)
            continue
        if p.start:
            try:
                _start(store, by_name[p.template], p, build, check, o)
            except TradingError as e:
                o.action, o.reasons = "failed", [str(e)]
            if o.action not in ("started", "already_started"):
                out.append(o)
                continue
        else:
            o.reasons = [p.note]
        for sid in p.stop:
            try:
                store.request(sid, "stop", source=SOURCE,
                              reason=f"champion {p.model} moved to v{p.version}: {p.session_id} trades it")
            except InvalidInput:  # stopped meanwhile (a user, another tick): nothing to do
                continue
            o.stopped.append(sid)
            if versions.get(sid) is not None:
                o.reasons.append(f"stopped {sid} (v{versions[sid]})")
        out.append(o)
    for line in broken:
        out.append(Outcome("?", "?", None, "failed", reasons=[f"template skipped: {line}"]))
    return out


def _start(store: SessionStore, f: Follower, p: Plan, build: BuildConfig, check: Check | None, o: Outcome) -> None:
    assert p.session_id is not None and p.version is not None
    sid = p.session_id
    if store.exists(sid):  # created by an earlier tick that died before its start request
        if not store.requests(sid):
            store.request(sid, "start", source=SOURCE, reason=f"champion {p.model} v{p.version}")
        o.action, o.reasons = "started", [f"started {sid} for {p.model} v{p.version} (start request completed)"]
        return
    config = build(f, p.version)
    bad = check(config) if check is not None else []
    if bad:
        o.action, o.reasons = "refused", [f"pre-flight: {b}" for b in bad]
        return
    try:
        store.create(config, session_id=sid, source=SOURCE)
    except InvalidInput:  # another process created it between our look and our mkdir
        if store.exists(sid):
            o.action, o.reasons = "already_started", [f"already started for version {p.version} ({sid})"]
            return
        raise InvalidInput(f"auto-start {f.template}: {store.sessions_dir / sid} exists without session.json "
                           "(a crash while it was created): remove that folder") from None
    o.action, o.reasons = "started", [f"started {sid} for {p.model} v{p.version}"]


def pinned_template(doc: dict[str, Any], model: str, version: int) -> dict[str, Any]:
    """The template with its model pinned: ``params.model``/``version`` set, ``reload`` off (the
    next champion gets a session of its own rather than a switch inside this one)."""
    params = {k: v for k, v in dict(doc.get("params") or {}).items() if k not in ("model", "version", "reload")}
    return {**doc, "params": {**params, "model": model, "version": int(version), "reload": "false"}}


def session_name(f: Follower, version: int) -> str:
    base = str(f.doc.get("name") or f.template)[:56]
    return f"{base}-v{int(version)}"


def session_builder(cfg: Any, warehouse: Any, config_path: str | None = None) -> BuildConfig:
    """``build`` for :func:`auto_start`: the template's options through the same validation as
    ``trading paper start --template`` (``cli.paper.session_config``), with the version pinned."""
    from ..cli.paper import session_config, start_args

    def build(f: Follower, version: int) -> SessionConfig:
        args = start_args(template=f.template, name=session_name(f, version), config=config_path)
        config: SessionConfig = session_config(args, cfg, warehouse,
                                               template_doc=pinned_template(f.doc, f.spec.on_champion, version))
        return config

    return build


def preflight_check(cfg: Any, warehouse: Any) -> Check:
    """``check`` for :func:`auto_start`: the pre-flight's failing reasons, without compiling the
    engine (a sensor tick stays short; the job's first stage runs the full pre-flight)."""
    from .preflight import failing, preflight

    def check(config: SessionConfig) -> list[str]:
        return failing(preflight(config, warehouse, data_dir=Path(cfg.data_dir),
                                 stale_bars=cfg.market_data.validation.stale_bars, compile_engine=False))

    return check


def describe(o: Outcome) -> str:
    """One line for the CLI and the sensor's log."""
    head = f"{o.template}: "
    if o.action == "started":
        text = f"started {o.session_id} for {o.model} version {o.version}"
    elif o.action == "already_started":
        text = f"nothing to do: already started for version {o.version} ({o.session_id})"
    elif o.action == "no_champion":
        text = f"nothing to do: {o.model} has no champion yet"
    elif o.action == "refused":
        text = f"{o.model} version {o.version} refused: " + "; ".join(o.reasons)
    elif o.action == "planned":
        text = f"would do for {o.model} version {o.version}: " + "; ".join(o.reasons)
    else:
        text = "failed: " + "; ".join(o.reasons)
    if o.stopped:
        text += f"; stopped {', '.join(o.stopped)}"
    return head + text
