"""``alerts:`` in ``config/trading.yaml``: the rules, their thresholds, and the delivery channels.

A channel's address is an Apprise URL (``json://host/path``, ``mailto://...``, ``slack://...``)
read from the environment variable the config names -- the file never holds a secret or a
password-bearing URL. A channel whose variable is unset is skipped (``trading health`` says so).
"""

from __future__ import annotations

import os
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["AlertsConfig", "ChannelConfig", "RulesConfig"]

_ENV = re.compile(r"[A-Z_][A-Z0-9_]{0,63}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ChannelConfig(_Strict):
    """One destination. ``log`` needs no URL: Python logging plus the delivery journal."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    kind: Literal["log", "webhook", "email", "apprise"] = "log"
    url_env: str | None = Field(default=None, description="environment variable holding the Apprise URL")
    min_severity: Literal["info", "warning", "error"] = "info"

    @field_validator("url_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        if v is not None and not _ENV.fullmatch(v):
            raise ValueError(f"url_env {v!r}: expected an environment variable name like TRADING_ALERTS_WEBHOOK_URL")
        return v

    @model_validator(mode="after")
    def _url_needed(self) -> ChannelConfig:
        if self.kind != "log" and self.url_env is None:
            raise ValueError(f"channel {self.name}: kind {self.kind} needs url_env (the variable holding its URL)")
        return self

    def url(self) -> str | None:
        """The Apprise URL from the environment (None: unset, the channel is skipped)."""
        return (os.environ.get(self.url_env) or None) if self.url_env else None


class RulesConfig(_Strict):
    drawdown_limit: float | None = Field(default=0.20, gt=0, lt=1,
                                         description="alert when a session's equity falls this far below its peak")
    breaker_tripped: bool = True
    drift_detected: bool = True
    data_quality: bool = True
    session_died: bool = True
    session_resumed: bool = True


class AlertsConfig(_Strict):
    enabled: bool = True
    rules: RulesConfig = RulesConfig()
    channels: list[ChannelConfig] = Field(default_factory=lambda: [ChannelConfig(name="log")])
    timeout_s: float = Field(default=5.0, gt=0, le=120, description="connect/read timeout of one delivery")
    lock_deadline_s: float = Field(default=30.0, gt=0, le=600)

    @model_validator(mode="after")
    def _unique(self) -> AlertsConfig:
        names = [c.name for c in self.channels]
        if len(set(names)) != len(names):
            raise ValueError(f"alerts.channels: names must be unique, got {names}")
        return self
