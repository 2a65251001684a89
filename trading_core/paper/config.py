"""What a paper session is: a backtest request (the one description of a strategy, its symbols,
money, costs, fills, sizing, filters and risk) plus how it is fed and supervised.

Reusing ``BacktestRequest`` is deliberate: a replay session and ``trading backtest --risk`` with
the same request build the same Trader (``backtest.stepped.build_trader``) and give the same fills.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..backtest.request import BacktestRequest

__all__ = ["SessionConfig", "SESSION_ID", "check_session_id", "new_session_id", "STAGES"]

SESSION_ID = re.compile(r"ps-[0-9a-f]{12}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# the staged start, in order (each shown in `trading paper status` with its progress)
STAGES = ("data_sync", "warm_up", "analysis", "activation")


def check_session_id(value: str) -> str:
    """A session id as ``new_session_id`` makes them (it names a folder and binds into SQL)."""
    from ..errors import InvalidInput

    if not isinstance(value, str) or not SESSION_ID.fullmatch(value):
        raise InvalidInput(f"session id {str(value)[:40]!r}: expected ps-<12 hex digits> (see trading paper list)")
    return value


def new_session_id(seed: str | None = None) -> str:
    """``ps-`` + 12 hex digits: random, or derived from ``seed`` (tests pin ids this way)."""
    import secrets

    raw = hashlib.sha256(seed.encode()).hexdigest() if seed is not None else secrets.token_hex(16)
    return f"ps-{raw[:12]}"


class SessionConfig(BaseModel):
    """One paper session. ``request.start``/``end`` bound a replay (for a live feed ``start`` is
    the activation instant and ``end`` open); the risk layer is armed unless ``request.risk`` is
    None, which the pre-flight refuses."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "session"
    request: BacktestRequest
    feed: Literal["replay", "live"] = "replay"
    speed: float | None = Field(default=None, gt=0, le=1e6, allow_inf_nan=False)  # bars/s; None = max
    poll_s: float = Field(default=30.0, gt=0, le=3600)  # live: how often the provider is asked
    snapshot_every: int = Field(default=500, ge=1, le=1_000_000)  # bars between Trader snapshots
    group_commit_ms: float = Field(default=100.0, ge=0, le=5000)  # max speed: bars per transaction by time
    heartbeat_s: float = Field(default=5.0, gt=0, le=600)
    stale_after_s: float = Field(default=30.0, gt=0, le=86_400)  # a heartbeat older than this = dead run
    run_budget_s: float = Field(default=8 * 3600 - 300, gt=0)  # a run hands over to the next after this
    template: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.fullmatch(v):
            raise ValueError("name: 1-64 letters, digits, '_', '.', '-' (starting with a letter or digit)")
        return v

    @model_validator(mode="after")
    def _checks(self) -> SessionConfig:
        if self.stale_after_s < 2 * self.heartbeat_s:
            raise ValueError(f"stale_after_s {self.stale_after_s} must be at least 2 x heartbeat_s "
                             f"({self.heartbeat_s}): a live run would look dead between heartbeats")
        return self

    @property
    def symbols(self) -> tuple[str, ...]:
        return self.request.universe

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def config_hash(self) -> str:
        """What makes two sessions trade alike: the request and the feed (not name or supervision)."""
        core = {"request": self.request.model_dump(mode="json"), "feed": self.feed}
        return hashlib.sha256(json.dumps(core, sort_keys=True).encode()).hexdigest()

    @classmethod
    def from_json(cls, text: str) -> SessionConfig:
        return cls.model_validate(json.loads(text))

    def summary(self) -> dict[str, Any]:
        r = self.request
        return {"name": self.name, "strategy": r.strategy, "params": dict(r.params), "venue": r.venue,
                "venues": [r.venue_of(x) for x in r.universe], "symbols": list(r.universe), "timeframe": r.timeframe, "feed": self.feed,
                "speed": self.speed or "max", "cash": r.cash, "risk_armed": r.risk is not None}
