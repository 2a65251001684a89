"""Alerts leave the outbox exactly once per message id, even across a crash mid-delivery."""

from __future__ import annotations

from pathlib import Path

from trading_core.paper.alerts import AlertSink


def test_a_message_is_delivered_once_per_id_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    sink = AlertSink(path)
    assert sink.send("s:1", "s", "BreakerTripped", "warning", {"text": "halt"})
    assert not sink.send("s:1", "s", "BreakerTripped", "warning", {"text": "halt"})
    # a restarted process (the outbox row was never marked delivered) sends nothing twice
    again = AlertSink(path)
    assert not again.send("s:1", "s", "BreakerTripped", "warning", {"text": "halt"})
    assert again.send("s:2", "s", "session_resumed", "info", {"text": "ok"})
    assert [a["message_id"] for a in again.delivered()] == ["s:1", "s:2"]


def test_a_line_cut_by_a_crash_is_dropped_and_resent(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    AlertSink(path).send("s:1", "s", "k", "info", {"text": "a"})
    with path.open("a") as f:
        f.write('{"message_id": "s:2", "sess')  # the process died mid-write
    sink = AlertSink(path)
    assert sink.send("s:2", "s", "k", "info", {"text": "b"})
    assert [a["message_id"] for a in sink.delivered()] == ["s:1", "s:2"]
