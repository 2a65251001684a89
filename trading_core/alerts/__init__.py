"""Alerts: rules evaluated from stored data, delivered once per key through log, webhook and email.

``evaluate`` (rules) finds what the stored data calls for, ``deliver`` sends each alert through
the configured channels (Apprise) with an intent/ack journal; ``run_alerts`` does both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .deliver import DeliveryReport, deliver
from .journal import DeliveryJournal
from .model import Alert

__all__ = ["Alert", "DeliveryJournal", "DeliveryReport", "deliver", "journal_for", "run_alerts"]


def journal_for(cfg: Any) -> DeliveryJournal:
    """``<data_dir>/alerts/deliveries.jsonl``."""
    return DeliveryJournal(Path(cfg.data_dir) / "alerts" / "deliveries.jsonl",
                           lock_deadline_s=cfg.alerts.lock_deadline_s)


def run_alerts(cfg: Any, *, now: float | None = None) -> dict[str, Any]:
    """Evaluate the rules and deliver what is new; a summary for logs, the sensor and health."""
    from .channels import build_channels
    from .rules import evaluate

    if not cfg.alerts.enabled:
        return {"enabled": False}
    alerts, notes = evaluate(cfg, now=now)
    channels, skipped = build_channels(cfg.alerts)
    report = deliver(alerts, channels, journal_for(cfg))
    return {"enabled": True, "alerts": len(alerts), "channels": [c.name for c in channels], "skipped": skipped,
            "notes": notes, **report.to_dict()}
