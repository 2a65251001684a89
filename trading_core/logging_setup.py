"""Logging for the ``trading`` command: plain text by default, one JSON object per line as an option.

``TRADING_LOG_FORMAT=json`` switches to structured logs (time, level, logger, message, and any
``extra=`` fields such as ``alert_key``), the format log shippers (Loki, CloudWatch, ELK) parse
without rules. ``TRADING_LOG_LEVEL`` sets the level (default INFO).
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime

__all__ = ["JsonFormatter", "configure_logging"]

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {"ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
               "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        doc.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def configure_logging(fmt: str | None = None, level: str | None = None) -> None:
    """Install one stderr handler on the root logger (idempotent: replaces the one it installed)."""
    fmt = (fmt or os.environ.get("TRADING_LOG_FORMAT") or "text").lower()
    level = (level or os.environ.get("TRADING_LOG_LEVEL") or "INFO").upper()
    root = logging.getLogger()
    for h in [h for h in root.handlers if getattr(h, "_trading", False)]:
        root.removeHandler(h)
    handler = logging.StreamHandler()
    handler._trading = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if fmt == "json" else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(getattr(logging, level, logging.INFO))
