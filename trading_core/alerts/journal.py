"""The delivery journal: an intent before each send, an acknowledgement after it.

``<data>/alerts/deliveries.jsonl`` holds, per (alert key, channel), an ``intent`` line written
(and fsynced) before the channel is called and an ``ack`` line after it answered; a failure
writes ``error``. Deliverers hold an exclusive ``flock`` on ``deliveries.lock`` for a whole
pass, so two processes (the Dagster sensor, a CLI) never send the same alert at once.

What it guarantees: an acknowledged delivery is never repeated. A crash between send and ack
leaves an intent without an ack; the next pass sends again with the SAME idempotency key
(``X-Trading-Alert-Key`` on webhooks and emails, and in the text). The transport is therefore
at-least-once, and a receiver that dedupes on that key sees each alert exactly once.
"""

from __future__ import annotations

import contextlib
import fcntl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import TradingError
from .jsonl import JsonLines
from .model import Alert

__all__ = ["DeliveryJournal", "JournalBusy", "JournalEntry"]


class JournalBusy(TradingError):
    """Another process held the alert journal's lock past the deadline."""


@dataclass
class JournalEntry:
    attempts: int = 0
    acked: bool = False
    last_error: str | None = None
    acked_at: float | None = None
    record: dict[str, Any] | None = None


class DeliveryJournal:
    def __init__(self, path: str | Path, *, lock_deadline_s: float = 30.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_suffix(".lock")
        self.lock_deadline_s = lock_deadline_s
        self.clock = clock
        self._log = JsonLines(self.path)

    @contextlib.contextmanager
    def locked(self) -> Iterator[DeliveryJournal]:
        """Exclusive for one delivery pass (released by the OS if the process dies)."""
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        with self.lock_path.open("a") as f:
            start = time.monotonic()
            while True:
                try:
                    fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() - start > self.lock_deadline_s:
                        raise JournalBusy(f"{self.lock_path} stayed locked for {self.lock_deadline_s:.0f}s: "
                                          "another process is delivering alerts") from None
                    time.sleep(0.05)
            try:
                self._log.read(repair=True)  # cut a line a crashed writer left half-written
                yield self
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    def entries(self) -> dict[tuple[str, str], JournalEntry]:
        """The state of every (alert key, channel) the journal has seen."""
        out: dict[tuple[str, str], JournalEntry] = {}
        for r in self._log.read():
            e = out.setdefault((r["alert_key"], r["channel"]), JournalEntry())
            if r["state"] == "intent":
                e.attempts += 1
            elif r["state"] == "ack":
                e.acked, e.acked_at, e.record = True, float(r["at"]), r
            elif r["state"] == "error":
                e.last_error = r.get("error")
        return out

    def record(self, state: str, alert: Alert, channel: str, idempotency_key: str, attempt: int,
               error: str | None = None) -> None:
        doc: dict[str, Any] = {"state": state, "alert_key": alert.key, "channel": channel, "kind": alert.kind,
                               "severity": alert.severity, "subject": alert.subject,
                               "idempotency_key": idempotency_key, "attempt": attempt, "at": self.clock()}
        if error is not None:
            doc["error"] = error[:500]
        self._log.append(doc)

    def acknowledged(self) -> list[dict[str, Any]]:
        """One row per acknowledged delivery (for ``ops.alert_deliveries``), with its attempt count."""
        rows = []
        for (key, channel), e in self.entries().items():
            if e.acked and e.record is not None:
                r = e.record
                rows.append({"alert_key": key, "channel": channel, "kind": r["kind"], "severity": r["severity"],
                             "subject": r.get("subject"), "idempotency_key": r["idempotency_key"],
                             "attempts": max(e.attempts, 1), "acked_at": e.acked_at})
        return rows
