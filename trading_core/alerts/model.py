"""An alert: what happened, how bad, and the key that makes its delivery happen once.

The key names the fact, not the moment it was noticed (``drawdown:<session>:<peak bar>``,
``data_quality:<batch>``, a paper outbox message id), so evaluating the rules again finds the
same alerts with the same keys and the delivery journal sends none of them twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = ["SEVERITIES", "Alert", "Severity", "idempotency_key", "severity_rank"]

Severity = Literal["info", "warning", "error"]
SEVERITIES: tuple[str, ...] = ("info", "warning", "error")


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else 0


def idempotency_key(alert_key: str, channel: str) -> str:
    """The id a receiver dedupes on: the same for every attempt to deliver this alert there."""
    return hashlib.sha256(f"{alert_key}|{channel}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Alert:
    key: str
    kind: str  # drawdown_limit | breaker_tripped | drift_detected | data_quality | session_died | session_resumed
    severity: str
    subject: str  # what it is about: a session id, a series, a model
    text: str
    payload: dict[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return f"[{self.severity}] {self.kind}: {self.subject}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
