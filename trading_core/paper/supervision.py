"""Who runs a paper session, and when a run is dead: the decisions of the orchestrator, Dagster-free.

The Dagster sensors (``pipelines/defs/trading/sensors.py``) are thin: they read the control files
(``control.SessionStore``) and the runs Dagster knows, map the runs to :class:`RunInfo`, and
carry out what :func:`supervise` / :func:`pending_request` decide. Keeping the rules here makes
them testable without an instance and keeps the pipelines free of domain logic.

Two owners, never both for the same moment:

- a **request** (``start``/``resume``) gets exactly one run, keyed by its ``request_id``, when no
  run of the session is in progress (:func:`pending_request`);
- afterwards the **supervisor** owns recovery: it chains a run that handed over (its budget was
  spent), replaces a run that died (stale heartbeat, or a run that never published), and gives
  up after ``max_failed_runs`` failures in a row for the same request, or when a user terminated
  the run in the Dagster UI (a deliberate act the watchdog must not undo).

Liveness is the heartbeat the running job publishes in ``status.json`` after every commit (the
cheap read: no DuckDB). A heartbeat older than the session's ``stale_after_s`` means dead. A run
that has not yet published (its status still names the previous run) gets ``start_grace_s`` from
its start. Run keys are deterministic (``<sid>:g<generation>``) so a sensor tick repeated after a
crash never launches twice; a retry of a generation that never took the lease gets ``:a<n>``,
because Dagster dedupes a run key forever.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from ..errors import InvalidInput
from .config import SessionConfig, check_session_id
from .control import Request, SessionStore, desired_state

__all__ = ["FINISHED", "RUN_ACTIONS", "Decision", "RunInfo", "SupervisionPolicy", "heartbeat_age", "is_finished",
           "is_stale", "latest_run_request", "next_run_key", "parse_ts", "pending_request", "request_stamps",
           "VenueRouter", "session_universe", "supervise"]

# Status states after which nothing runs until a new request (``failed``: an error a retry would
# repeat -- a refused pre-flight, a ledger mismatch -- so a human resumes it after a fix).
FINISHED = frozenset({"completed", "stopped", "failed", "cancelled", "refused"})
RUN_ACTIONS = ("start", "resume")  # the requests that ask for a run
Phase = Literal["pending", "started", "canceling", "succeeded", "failed", "canceled"]
ACTIVE_PHASES = frozenset({"pending", "started", "canceling"})


def parse_ts(value: Any) -> float | None:
    """Epoch seconds of an ISO-8601 timestamp (or a number), None when absent or unreadable."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        dt = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return dt.timestamp() if dt.tzinfo is not None else None  # a naive stamp is not trusted


def heartbeat_age(status: dict[str, Any] | None, now: float) -> float | None:
    """Seconds since the status' heartbeat, None without a readable one."""
    beat = parse_ts((status or {}).get("heartbeat_ts"))
    return None if beat is None else now - beat


def is_stale(status: dict[str, Any] | None, stale_after_s: float, now: float) -> bool:
    """No heartbeat at all, or one older than ``stale_after_s``."""
    age = heartbeat_age(status, now)
    return age is None or age > stale_after_s


def latest_run_request(requests: Sequence[Request]) -> Request | None:
    """The newest ``start``/``resume`` request (the one a run now serves)."""
    return next((r for r in reversed(requests) if r.action in RUN_ACTIONS), None)


def is_finished(status: dict[str, Any] | None, since: float | None = None) -> bool:
    """The status is terminal and was published after ``since`` (the request it answers): a
    'failed' left by an earlier run does not make a fresh resume look finished."""
    if not status or status.get("state") not in FINISHED:
        return False
    if since is None:
        return True
    beat = parse_ts(status.get("heartbeat_ts"))
    return beat is not None and beat >= since


def pending_request(requests: Sequence[Request]) -> Request | None:
    """The request a new run must serve: the newest start/resume while the desired state is
    'running' (the caller checks that no run carries its id and none of the session is active)."""
    if desired_state(list(requests)) != "running":
        return None
    return latest_run_request(requests)


def next_run_key(session_id: str, generation: int, attempt: int = 0) -> str:
    """``<sid>:g<generation>``; the n-th retry of a generation that never took the lease: ``:a<n>``."""
    return f"{session_id}:g{generation}" if attempt <= 0 else f"{session_id}:g{generation}:a{attempt + 1}"


def request_stamps(store: SessionStore) -> dict[str, int]:
    """Each session's request-log stamp (changes with every new request), without reading JSON:
    the sensors skip sessions whose log did not change since they last settled them."""
    out: dict[str, int] = {}
    if not store.sessions_dir.is_dir():
        return out
    for d in store.sessions_dir.iterdir():
        try:
            check_session_id(d.name)
            out[d.name] = os.stat(d / "requests").st_mtime_ns
        except (InvalidInput, OSError):
            continue
    return dict(sorted(out.items()))


@dataclass(frozen=True)
class RunInfo:
    """What the supervisor needs of one orchestrator run of a session."""

    run_id: str
    phase: Phase
    created_at: float
    start_time: float | None = None
    end_time: float | None = None
    request_id: str | None = None
    generation: int | None = None  # the generation the run was launched for (None: a request run)
    outcome: str | None = None  # RunOutcome.state, as the job recorded it
    cancelled_by_supervisor: bool = False

    @property
    def active(self) -> bool:
        return self.phase in ACTIVE_PHASES


@dataclass(frozen=True)
class SupervisionPolicy:
    """Thresholds; ``stale_after_s`` is the session's own (``SessionConfig.stale_after_s``)."""

    stale_after_s: float
    start_grace_s: float = 120.0
    max_failed_runs: int = 3
    restart_terminated: bool = False

    def __post_init__(self) -> None:
        if self.stale_after_s <= 0 or self.start_grace_s <= 0 or self.max_failed_runs < 1:
            raise InvalidInput("supervision: stale_after_s and start_grace_s must be > 0, max_failed_runs >= 1")


@dataclass(frozen=True)
class Decision:
    """``launch``: start the next run with ``run_key`` for ``generation``; ``cancel``: runs to mark
    cancelled first (zombies); ``reason`` says why, for the sensor's skip message and the logs."""

    launch: bool
    reason: str
    cancel: tuple[str, ...] = ()
    generation: int = 0
    run_key: str | None = None
    request_id: str | None = None
    gave_up: bool = False
    settled: bool = False  # nothing changes for this session until a new request arrives
    details: dict[str, Any] = field(default_factory=dict)


def supervise(session_id: str, *, requests: Sequence[Request], status: dict[str, Any] | None,
              runs: Iterable[RunInfo], policy: SupervisionPolicy, now: float) -> Decision:
    """What to do for one session now. ``runs``: its orchestrator runs, any order."""
    runs = sorted(runs, key=lambda r: r.created_at, reverse=True)
    owner = (status or {}).get("run_id")
    age = heartbeat_age(status, now)
    # zombies first, whatever the desired state: a dead STARTED run holds the trading/loop slot
    zombies: list[tuple[RunInfo, str]] = []
    for r in runs:
        if r.phase != "started":
            continue
        if r.run_id == owner:
            if is_stale(status, policy.stale_after_s, now):
                zombies.append((r, f"run {r.run_id} heartbeat is {_age(age)} old (stale after "
                                   f"{policy.stale_after_s:g}s)"))
        else:
            since = now - (r.start_time or r.created_at)
            if since > policy.start_grace_s:
                zombies.append((r, f"run {r.run_id} published nothing in {since:.0f}s (grace "
                                   f"{policy.start_grace_s:g}s)"))
    cancel = tuple(r.run_id for r, _ in zombies)
    live = [r for r in runs if r.active and r.run_id not in cancel]
    dead = "; ".join(w for _, w in zombies)
    desired = desired_state(list(requests))
    req = latest_run_request(requests)
    quiet = not live  # settled only once no run of the session is in progress
    if desired != "running" or req is None:
        return Decision(False, f"desired state is {desired}" + (f"; {dead}" if dead else ""), cancel=cancel,
                        settled=quiet)
    if is_finished(status, since=req.requested_at):
        return Decision(False, f"finished: {status['state'] if status else '?'}" + (f"; {dead}" if dead else ""),
                        cancel=cancel, settled=quiet)
    if live:
        r = live[0]
        why = {"pending": "queued or launching", "canceling": "being cancelled", "started": "healthy"}[r.phase]
        return Decision(False, f"run {r.run_id} is {why}" + (f"; cancelling: {dead}" if dead else ""),
                        cancel=cancel)
    mine = [r for r in runs if r.request_id == req.request_id]
    if not mine:
        return Decision(False, f"request {req.request_id} has no run yet (the requests sensor launches it)",
                        cancel=cancel)
    last = mine[0]
    if zombies:
        reason = dead
    elif last.phase == "canceled" and not last.cancelled_by_supervisor and not policy.restart_terminated:
        return Decision(False, f"run {last.run_id} was terminated by a user; resume the session to continue "
                               "or stop it", gave_up=True, settled=True)
    elif last.outcome == "chained":
        reason = f"run {last.run_id} spent its budget and handed over"
    elif is_stale(status, policy.stale_after_s, now):
        reason = (f"run {last.run_id} ended {last.phase} ({last.outcome or 'no outcome'}); heartbeat "
                  f"{_age(age)} old")
    else:
        return Decision(False, f"run {last.run_id} ended {last.phase}; waiting for its heartbeat "
                               f"({_age(age)} old) to pass {policy.stale_after_s:g}s")
    failures = len(cancel)  # a zombie cancelled now is a failed run of this request too
    for r in mine:  # newest first: the failures since the last run that ended well
        if r.run_id in cancel:
            continue
        if r.phase not in ("failed", "canceled"):
            break
        failures += 1
    if failures >= policy.max_failed_runs:
        return Decision(False, f"{failures} runs of request {req.request_id} failed in a row; not restarting "
                               f"({reason}); resume the session once the cause is fixed", cancel=cancel,
                        gave_up=True, settled=True)
    generation = int((status or {}).get("generation") or 0) + 1
    attempt = sum(1 for r in runs if r.generation == generation)
    return Decision(True, reason, cancel=cancel, generation=generation,
                    run_key=next_run_key(session_id, generation, attempt), request_id=req.request_id,
                    details={"failures": failures, "attempt": attempt + 1})


def _age(age: float | None) -> str:
    return "missing" if age is None else f"{age:.0f}s"


def session_universe(config: SessionConfig, md: Any, venue: str | None = None) -> Any:
    """The ``UniverseConfig`` a live session's provider is built for on ``venue`` (default: the
    session's first venue; a mixed-venue session has one per venue): the configured universe on
    that venue and the session's timeframe that lists all the session's symbols there (its
    provider order), else one made for the session (providers of a universe on the same venue,
    else the venue's kind)."""
    from ..config import UniverseConfig

    req = config.request
    venue = venue or req.venue
    symbols = [s for s in req.universe if req.venue_of(s) == venue]
    same = [u for u in md.universes if u.venue == venue and u.timeframe == req.timeframe]
    for u in same:
        if set(symbols) <= set(u.symbols):
            return u.model_copy(update={"symbols": symbols})
    venue_u = next((u for u in md.universes if u.venue == venue), None)
    equity = req.calendar_of(symbols[0]) == "equity"
    providers: list[Any] = list(venue_u.providers) if venue_u else (["yfinance"] if equity else ["ccxt"])
    return UniverseConfig(name="paper_session", asset_class="equity" if equity else "crypto", venue=venue,
                          timeframe=req.timeframe, symbols=symbols, providers=providers, start=req.start.date())


class VenueRouter:
    """A live session's provider across venues: each ``fetch_ohlcv`` goes to the provider built
    for that venue's universe (one venue: the router is never built)."""

    def __init__(self, providers: dict[str, Any]) -> None:
        self.providers = providers

    def fetch_ohlcv(self, venue: str, symbol: str, timeframe: str, start: Any, end: Any) -> Any:
        return self.providers[venue].fetch_ohlcv(venue, symbol, timeframe, start, end)
