"""Alerts from the outbox, delivered exactly once per message id.

A session's alerts (breaker tripped or reset, session died, resumed, completed) are written to
``paper.outbox`` in the bar's own transaction, so a crash after the commit never re-runs a bar
to notify. Delivery happens after the commit: each undelivered message goes to the sink, then is
marked delivered. The sink itself is keyed -- ``alerts.jsonl`` holds one line per message id and
a message already in it is not written again -- so a crash between delivering and marking
delivers nothing twice. The file is a ``trading_core.alerts.jsonl.JsonLines``; the alerts package
(``trading_core.alerts``) forwards these alerts to webhook and email channels with the same keys.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from ..alerts.jsonl import JsonLines

__all__ = ["AlertSink", "deliver_outbox"]

log = logging.getLogger("trading.paper.alerts")


class AlertSink:
    """The log channel: ``logging`` plus an append-only JSON-lines file keyed by message id."""

    channel = "log"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._log = JsonLines(self.path)
        self._seen: set[str] | None = None

    def seen(self) -> set[str]:
        if self._seen is None:  # a line cut by a crash is dropped by the read: it is re-sent
            self._seen = {r["message_id"] for r in self._log.read(repair=True)}
        return self._seen

    def send(self, message_id: str, session_id: str, kind: str, severity: str, payload: dict[str, Any]) -> bool:
        """Deliver once; False when this id was delivered before."""
        seen = self.seen()
        if message_id in seen:
            return False
        self._log.append({"message_id": message_id, "session_id": session_id, "kind": kind,
                          "severity": severity, "delivered_at": time.time(), **payload})
        seen.add(message_id)
        level = {"error": logging.ERROR, "warning": logging.WARNING}.get(severity, logging.INFO)
        log.log(level, "[%s] %s %s: %s", session_id, severity, kind, payload.get("text", ""))
        return True

    def delivered(self) -> list[dict[str, Any]]:
        """Every delivered alert, oldest first (the app's alert panel, `trading paper status`)."""
        return self._log.read()


def deliver_outbox(con: Any, ledger: Any, sink: AlertSink) -> int:
    """Send what the outbox holds undelivered; mark it. Returns the messages newly sent."""
    pending = ledger.undelivered(con)
    if not pending:
        return 0
    sent = 0
    for mid, sid, kind, severity, payload in pending:
        sent += bool(sink.send(mid, sid, kind, severity, json.loads(payload)))
    ledger.mark_delivered(con, [p[0] for p in pending], sink.channel)
    return sent
