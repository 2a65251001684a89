"""The control plane of paper sessions: configurations, requests and published status, as files.

Why files and not the ledger: ``data/paper.duckdb`` is written by the paper job only and a
process holding it open blocks every other from even reading it. The CLI and the app must write
start/stop/pause/resume *requests* at any time, and the sensors and the app must read a
session's status while it trades at full speed. So under ``<data>/paper/sessions/<id>/``:

- ``session.json``: the ``SessionConfig``, written once;
- ``requests/<seq>.json``: the append-only request log (each file created exclusively,
  written to a temporary name and renamed in, so a reader never sees half a request); the
  session's desired state is the fold of that log;
- ``status.json``: what the running job publishes after each commit (state, stage, progress,
  bars processed, last bar, heartbeat, equity, positions), swapped in atomically.

No process holds session state in memory between runs: a run reads these and the ledger.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidInput
from .config import SessionConfig, check_session_id, new_session_id

__all__ = ["ACTIONS", "Request", "SessionStore", "desired_state", "write_json_atomic"]

ACTIONS = ("start", "stop", "pause", "resume")
_DESIRED = {"start": "running", "resume": "running", "pause": "paused", "stop": "stopped"}


@dataclass(frozen=True)
class Request:
    request_id: str  # "<session id>-r<seq>": a Dagster run key
    session_id: str
    seq: int
    action: str
    source: str  # cli | app | champion | watchdog
    requested_at: float  # epoch seconds (wall clock: requests are operations, not ledger facts)
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def desired_state(requests: list[Request]) -> str:
    """running | paused | stopped (``new`` before any request): the last request decides, and a
    stop is final."""
    state = "new"
    for r in requests:
        if state != "stopped":
            state = _DESIRED[r.action]
    return state


def write_json_atomic(path: Path, doc: dict[str, Any]) -> None:
    """Write ``doc`` to a temporary file and rename it over ``path``: readers see old or new, whole."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, sort_keys=True, default=str), encoding="utf-8")
    os.replace(tmp, path)


class SessionStore:
    """Sessions under ``root`` (``<data_dir>/paper``). Cheap to construct; holds nothing open."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.sessions_dir = self.root / "sessions"

    def _dir(self, session_id: str) -> Path:
        return self.sessions_dir / check_session_id(session_id)

    def requests_dir(self, session_id: str) -> Path:
        return self._dir(session_id) / "requests"

    # ---- sessions -------------------------------------------------------------------------------
    def create(self, config: SessionConfig, *, session_id: str | None = None, source: str = "cli") -> tuple[str, Request]:
        """A new session and its start request; the session id is fresh unless given."""
        sid = check_session_id(session_id) if session_id else new_session_id()
        d = self._dir(sid)
        try:
            (d / "requests").mkdir(parents=True, exist_ok=False)
        except FileExistsError:
            raise InvalidInput(f"session {sid} already exists") from None
        write_json_atomic(d / "session.json", {"session_id": sid, "created_at": time.time(),
                                                "config": json.loads(config.to_json())})
        return sid, self.request(sid, "start", source=source)

    def exists(self, session_id: str) -> bool:
        return (self._dir(session_id) / "session.json").is_file()

    def load(self, session_id: str) -> SessionConfig:
        path = self._dir(session_id) / "session.json"
        if not path.is_file():
            raise InvalidInput(f"no paper session {session_id} (trading paper list shows them)")
        doc = json.loads(path.read_text(encoding="utf-8"))
        return SessionConfig.model_validate(doc["config"])

    def created_at(self, session_id: str) -> float:
        return float(json.loads((self._dir(session_id) / "session.json").read_text(encoding="utf-8"))["created_at"])

    def session_ids(self) -> list[str]:
        """Every session, oldest first."""
        if not self.sessions_dir.is_dir():
            return []
        out = []
        for d in self.sessions_dir.iterdir():
            try:
                check_session_id(d.name)
            except InvalidInput:
                continue
            if (d / "session.json").is_file():
                out.append(d.name)
        return sorted(out, key=self.created_at)

    # ---- requests -------------------------------------------------------------------------------
    def request(self, session_id: str, action: str, *, source: str = "cli", reason: str = "") -> Request:
        """Append ``action`` to the session's request log (never edits an earlier request)."""
        if action not in ACTIONS:
            raise InvalidInput(f"request {action!r}: expected one of {', '.join(ACTIONS)}")
        rd = self.requests_dir(session_id)
        if not rd.is_dir():
            raise InvalidInput(f"no paper session {session_id} (trading paper list shows them)")
        current = self.requests(session_id)
        if action != "start" and current and desired_state(current) == "stopped":
            raise InvalidInput(f"session {session_id} is stopped; clone it to trade the configuration again")
        if action == "start" and current:
            raise InvalidInput(f"session {session_id} was already started; resume it or clone it")
        seq = len(current) + 1
        while True:
            req = Request(f"{session_id}-r{seq:06d}", session_id, seq, action, source, time.time(), reason)
            final = rd / f"{seq:06d}.json"  # the sequence number alone is the exclusive name
            tmp = rd / f".{seq:06d}.{os.getpid()}.tmp"
            tmp.write_text(json.dumps(req.to_dict(), sort_keys=True), encoding="utf-8")
            try:
                os.link(tmp, final)  # fails if another writer took this seq: take the next one
            except FileExistsError:
                seq += 1
                continue
            finally:
                tmp.unlink(missing_ok=True)
            return req

    def requests(self, session_id: str) -> list[Request]:
        rd = self.requests_dir(session_id)
        out = []
        for p in sorted(rd.glob("[0-9]*.json")) if rd.is_dir() else []:
            d = json.loads(p.read_text(encoding="utf-8"))
            out.append(Request(**d))
        return out

    def desired(self, session_id: str) -> str:
        return desired_state(self.requests(session_id))

    # ---- status (published by the running job) -------------------------------------------------
    def write_status(self, session_id: str, status: dict[str, Any]) -> None:
        write_json_atomic(self._dir(session_id) / "status.json", status)

    def status(self, session_id: str) -> dict[str, Any] | None:
        path = self._dir(session_id) / "status.json"
        try:
            return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]
        except FileNotFoundError:
            return None
