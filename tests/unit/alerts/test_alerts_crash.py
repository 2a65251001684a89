"""Exactly once across a crash between send and acknowledge: the receiver sees one logical alert."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from pytest_httpserver import HTTPServer

from trading_core.alerts import DeliveryJournal, deliver
from trading_core.alerts.channels import KEY_HEADER, AppriseChannel
from trading_core.alerts.deliver import CRASH_ENV
from trading_core.alerts.model import Alert

CHILD = Path(__file__).with_name("alerts_crash_child.py")
ALERT = Alert(key="ps-000000000002:session_died:1", kind="session_died", severity="error",
              subject="ps-000000000002", text="run worker died")


def test_a_send_without_ack_is_resent_with_the_same_key_and_deduped(tmp_path: Path, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    url = f"json://127.0.0.1:{httpserver.port}/hook"
    journal_path = tmp_path / "alerts" / "deliveries.jsonl"
    env = {**os.environ, CRASH_ENV: "after_send"}
    child = subprocess.run([sys.executable, str(CHILD), url, str(journal_path)], env=env, capture_output=True,
                           text=True, timeout=60)
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert "acknowledged" not in child.stdout
    assert len(httpserver.log) == 1  # the receiver got it ...
    journal = DeliveryJournal(journal_path)
    entry = journal.entries()[(ALERT.key, "webhook")]
    assert entry.attempts == 1 and not entry.acked  # ... but the sender never recorded the ack

    restarted = deliver([ALERT], [AppriseChannel("webhook", url)], journal)  # the restart
    assert restarted.resent == [(ALERT.key, "webhook")]
    again = deliver([ALERT], [AppriseChannel("webhook", url)], journal)
    assert again.sent == [] and again.already == 1

    keys = [req.headers[KEY_HEADER] for req, _ in httpserver.log]
    assert len(keys) == 2  # at-least-once transport ...
    assert len(set(keys)) == 1  # ... one idempotency key: a deduping receiver sees ONE alert
    assert journal.acknowledged()[0]["attempts"] == 2
