"""Alerts reach a real local SMTP server and HTTP server through Apprise, once per key."""

from __future__ import annotations

from pathlib import Path

import pytest
from alert_receivers import Inbox
from pytest_httpserver import HTTPServer

from trading_core.alerts import DeliveryJournal, deliver
from trading_core.alerts.channels import KEY_HEADER, AppriseChannel, LogChannel, build_channels
from trading_core.alerts.config import AlertsConfig, ChannelConfig
from trading_core.alerts.model import Alert, idempotency_key

ALERT = Alert(key="ps-000000000001:BreakerTripped:7", kind="breaker_tripped", severity="warning",
              subject="ps-000000000001", text="portfolio breaker global: active -> halted (drawdown)")


def test_an_email_arrives_at_a_local_smtp_server_with_its_key(tmp_path: Path, smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    ch = AppriseChannel("email", f"mailto://127.0.0.1:{port}?from=alerts@example.com&to=ops@example.com"
                                 "&mode=insecure")
    report = deliver([ALERT], [ch], DeliveryJournal(tmp_path / "j.jsonl"))
    assert report.sent == [(ALERT.key, "email")]
    assert len(inbox.messages) == 1
    msg = inbox.messages[0]
    assert msg[KEY_HEADER] == idempotency_key(ALERT.key, "email")
    assert "breaker_tripped" in str(msg["Subject"]) and msg["To"] == "ops@example.com"
    # a second pass sends nothing: the journal holds the ack
    again = deliver([ALERT], [ch], DeliveryJournal(tmp_path / "j.jsonl"))
    assert again.sent == [] and again.already == 1 and len(inbox.messages) == 1


def test_a_webhook_receives_json_with_the_idempotency_header(tmp_path: Path, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    ch = AppriseChannel("webhook", f"json://127.0.0.1:{httpserver.port}/hook")
    report = deliver([ALERT], [ch], DeliveryJournal(tmp_path / "j.jsonl"))
    assert report.sent == [(ALERT.key, "webhook")]
    (req, _), = httpserver.log
    assert req.headers[KEY_HEADER] == idempotency_key(ALERT.key, "webhook")
    body = req.get_json()
    assert body["title"] == ALERT.title and ALERT.key in body["message"]


def test_a_refusing_receiver_is_retried_on_the_next_pass(tmp_path: Path, httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request("/hook").respond_with_data("down", status=503)
    httpserver.expect_request("/hook").respond_with_data("ok")
    ch = AppriseChannel("webhook", f"json://127.0.0.1:{httpserver.port}/hook")
    journal = DeliveryJournal(tmp_path / "j.jsonl")
    first = deliver([ALERT], [ch], journal)
    assert first.sent == [] and first.failed and first.failed[0][1] == "webhook"
    second = deliver([ALERT], [ch], journal)
    assert second.sent == [(ALERT.key, "webhook")]
    keys = [r.headers[KEY_HEADER] for r, _ in httpserver.log]
    assert len(keys) == 2 and len(set(keys)) == 1  # the same key both times: the receiver can dedupe
    assert journal.acknowledged()[0]["attempts"] == 2


def test_channels_filter_by_severity_and_skip_unset_urls(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv("TRADING_TEST_HOOK", raising=False)
    cfg = AlertsConfig(channels=[ChannelConfig(name="log", min_severity="warning"),
                                 ChannelConfig(name="hook", kind="webhook", url_env="TRADING_TEST_HOOK")])
    channels, skipped = build_channels(cfg)
    assert [c.name for c in channels] == ["log"] and skipped == ["channel hook: $TRADING_TEST_HOOK is not set"]
    info = Alert(key="k-info", kind="session_resumed", severity="info", subject="s", text="resumed")
    with caplog.at_level("INFO", logger="trading.alerts"):
        report = deliver([info, ALERT], channels, DeliveryJournal(tmp_path / "j.jsonl"))
    assert report.sent == [(ALERT.key, "log")]
    assert [r.getMessage() for r in caplog.records if r.name == "trading.alerts"] == [f"{ALERT.title} {ALERT.text}"]
    assert isinstance(channels[0], LogChannel)


def test_config_refuses_a_channel_without_its_url_variable() -> None:
    with pytest.raises(ValueError, match="needs url_env"):
        ChannelConfig(name="hook", kind="webhook")
    with pytest.raises(ValueError, match="environment variable name"):
        ChannelConfig(name="hook", kind="webhook", url_env="json://secret@host")
