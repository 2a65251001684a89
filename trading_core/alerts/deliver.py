"""Deliver alerts through channels, once per (alert key, channel): see ``journal`` for the rule."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .channels import DeliveryFailed, accepts
from .journal import DeliveryJournal
from .model import Alert, idempotency_key

__all__ = ["CRASH_ENV", "DeliveryReport", "deliver"]

CRASH_ENV = "TRADING_ALERTS_CRASH"  # "after_send": SIGKILL between a send and its ack (crash tests)


@dataclass
class DeliveryReport:
    sent: list[tuple[str, str]] = field(default_factory=list)  # (alert key, channel) acknowledged now
    resent: list[tuple[str, str]] = field(default_factory=list)  # of those, re-sends of an unacked intent
    already: int = 0  # acknowledged before: not sent again
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # (alert key, channel, why)

    def to_dict(self) -> dict[str, Any]:
        return {"sent": len(self.sent), "resent": len(self.resent), "already_delivered": self.already,
                "failed": [{"alert_key": k, "channel": c, "error": e} for k, c, e in self.failed]}


def _crash_from_env() -> Callable[[str], None]:
    point = os.environ.get(CRASH_ENV)

    def crash(name: str) -> None:
        if point and name == point:
            os.kill(os.getpid(), signal.SIGKILL)

    return crash


def deliver(alerts: Sequence[Alert], channels: Sequence[Any], journal: DeliveryJournal, *,
            crash: Callable[[str], None] | None = None) -> DeliveryReport:
    """Send each alert to each channel that takes its severity, unless acknowledged before.

    Intent (fsynced) -> send -> ack (fsynced). A channel that fails gets an ``error`` line and is
    tried again on the next pass; the others go on."""
    hook = crash or _crash_from_env()
    out = DeliveryReport()
    with journal.locked():
        entries = journal.entries()
        for alert in alerts:
            for ch in channels:
                if not accepts(ch, alert):
                    continue
                entry = entries.get((alert.key, ch.name))
                if entry is not None and entry.acked:
                    out.already += 1
                    continue
                attempt = (entry.attempts if entry else 0) + 1
                ikey = idempotency_key(alert.key, ch.name)
                journal.record("intent", alert, ch.name, ikey, attempt)
                try:
                    ch.send(alert, ikey, attempt)
                except DeliveryFailed as e:
                    journal.record("error", alert, ch.name, ikey, attempt, str(e))
                    out.failed.append((alert.key, ch.name, str(e)))
                    continue
                hook("after_send")
                journal.record("ack", alert, ch.name, ikey, attempt)
                out.sent.append((alert.key, ch.name))
                if entry is not None and entry.attempts:
                    out.resent.append((alert.key, ch.name))
    return out
