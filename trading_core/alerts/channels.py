"""Delivery channels: the log, and anything Apprise speaks (webhooks, email, chat services).

No hand-written SMTP or HTTP client: a webhook is an Apprise ``json://`` (or ``jsons://``) URL, an
email a ``mailto://`` / ``mailtos://`` URL. Each send carries the alert's idempotency key as the
header ``X-Trading-Alert-Key`` (Apprise's ``+Header=value`` URL syntax, honoured by its JSON, form,
XML and email plugins) and in the body, so a receiver can drop a repeat.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import TradingError
from .config import AlertsConfig, ChannelConfig
from .model import Alert, severity_rank

__all__ = ["AppriseChannel", "Channel", "DeliveryFailed", "LogChannel", "build_channels", "KEY_HEADER"]

KEY_HEADER = "X-Trading-Alert-Key"
log = logging.getLogger("trading.alerts")


class DeliveryFailed(TradingError):
    """The channel did not accept the alert (unreachable, refused); it is retried on the next pass."""


class Channel(Protocol):
    name: str
    min_severity: str

    def send(self, alert: Alert, idempotency_key: str, attempt: int) -> None: ...


def body_text(alert: Alert, idempotency_key: str) -> str:
    extra = json.dumps(alert.payload, sort_keys=True, default=str) if alert.payload else ""
    return (f"{alert.text}\n\nkind: {alert.kind}\nseverity: {alert.severity}\nsubject: {alert.subject}\n"
            f"alert key: {alert.key}\nidempotency key: {idempotency_key}" + (f"\ndetail: {extra}" if extra else ""))


class LogChannel:
    """Python logging (JSON lines when ``TRADING_LOG_FORMAT=json``); the journal is its record."""

    def __init__(self, name: str = "log", min_severity: str = "info") -> None:
        self.name, self.min_severity = name, min_severity

    def send(self, alert: Alert, idempotency_key: str, attempt: int) -> None:
        level = {"error": logging.ERROR, "warning": logging.WARNING}.get(alert.severity, logging.INFO)
        log.log(level, "%s %s", alert.title, alert.text,
                extra={"alert_key": alert.key, "idempotency_key": idempotency_key, "attempt": attempt})


def with_header(url: str, name: str, value: str, defaults: dict[str, str] | None = None) -> str:
    """``url`` with the query parameter ``+name=value`` (Apprise: an extra header) and ``defaults``
    for parameters the URL does not set already."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != f"+{name}"]
    have = {k for k, _ in query}
    query += [(k, v) for k, v in (defaults or {}).items() if k not in have]
    query.append((f"+{name}", value))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query, safe=":/@"), parts.fragment))


class AppriseChannel:
    """One Apprise URL. A fresh ``Apprise`` object per send carries that alert's header."""

    def __init__(self, name: str, url: str, *, min_severity: str = "info", timeout_s: float = 5.0) -> None:
        self.name, self.url, self.min_severity, self.timeout_s = name, url, min_severity, timeout_s

    def send(self, alert: Alert, idempotency_key: str, attempt: int) -> None:
        import apprise

        t = f"{self.timeout_s:g}"
        ap = apprise.Apprise()
        if not ap.add(with_header(self.url, KEY_HEADER, idempotency_key, {"cto": t, "rto": t})):
            raise DeliveryFailed(f"channel {self.name}: Apprise does not understand its URL (scheme "
                                 f"{urlsplit(self.url).scheme!r})")
        notify_type = {"error": apprise.NotifyType.FAILURE, "warning": apprise.NotifyType.WARNING}.get(
            alert.severity, apprise.NotifyType.INFO)
        if not ap.notify(title=alert.title, body=body_text(alert, idempotency_key), notify_type=notify_type):
            raise DeliveryFailed(f"channel {self.name}: delivery of {alert.key} failed (attempt {attempt})")


def build_channels(config: AlertsConfig) -> tuple[list[Any], list[str]]:
    """The configured channels that can deliver, and one line per channel skipped (its URL variable
    is unset)."""
    out: list[Any] = []
    skipped: list[str] = []
    for c in config.channels:
        ch = channel_from_config(c, timeout_s=config.timeout_s)
        if ch is None:
            skipped.append(f"channel {c.name}: ${c.url_env} is not set")
        else:
            out.append(ch)
    return out, skipped


def channel_from_config(c: ChannelConfig, *, timeout_s: float) -> Any:
    if c.kind == "log":
        return LogChannel(c.name, c.min_severity)
    url = c.url()
    return None if url is None else AppriseChannel(c.name, url, min_severity=c.min_severity, timeout_s=timeout_s)


def accepts(channel: Any, alert: Alert) -> bool:
    return severity_rank(alert.severity) >= severity_rank(channel.min_severity)
