"""TRADING_LOG_FORMAT=json: one JSON object per log line, extra fields kept."""

from __future__ import annotations

import json
import logging

import pytest

from trading_core.logging_setup import configure_logging


def test_json_logs_are_one_object_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("json", "INFO")
    try:
        logging.getLogger("trading.alerts").warning("breaker %s", "halted", extra={"alert_key": "k1"})
        line = capsys.readouterr().err.strip().splitlines()[-1]
    finally:
        root = logging.getLogger()
        for h in [h for h in root.handlers if getattr(h, "_trading", False)]:
            root.removeHandler(h)
    doc = json.loads(line)
    assert doc["level"] == "warning" and doc["logger"] == "trading.alerts"
    assert doc["message"] == "breaker halted" and doc["alert_key"] == "k1"
