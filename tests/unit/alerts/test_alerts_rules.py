"""Rules find the same alerts, with the same keys, every time they read the same stored data."""

from __future__ import annotations

import numpy as np

from trading_core.alerts.config import RulesConfig
from trading_core.alerts.rules import drawdown_alerts, paper_log_alerts, quality_alerts, stale_alerts


def test_one_drawdown_alert_per_episode_keyed_by_its_peak() -> None:
    ts = np.arange(8, dtype=np.int64) * 3_600_000
    eq = np.array([100, 110, 95, 85, 88, 112, 80, 79], dtype=float)  # two episodes past 20 %
    first = drawdown_alerts("ps-1", "s", ts, eq, 0.20)
    assert [a.key for a in first] == [f"drawdown:ps-1:{ts[1]}", f"drawdown:ps-1:{ts[5]}"]
    assert first == drawdown_alerts("ps-1", "s", ts, eq, 0.20)  # same data, same keys
    assert drawdown_alerts("ps-1", "s", ts, eq, 0.30) == []


def test_paper_alerts_are_forwarded_with_their_outbox_ids() -> None:
    log = [{"message_id": "ps-1:e1", "session_id": "ps-1", "kind": "BreakerTripped", "severity": "warning",
            "text": "halt"},
           {"message_id": "ps-1:resumed:g2", "session_id": "ps-1", "kind": "session_resumed", "severity": "info",
            "text": "ok"},
           {"message_id": "ps-1:e2", "session_id": "ps-1", "kind": "BreakerReset", "severity": "info", "text": "-"}]
    alerts = paper_log_alerts(log, RulesConfig())
    assert [(a.key, a.kind) for a in alerts] == [("ps-1:e1", "breaker_tripped"), ("ps-1:resumed:g2", "session_resumed")]
    assert [a.key for a in paper_log_alerts(log, RulesConfig(session_resumed=False))] == ["ps-1:e1"]


def test_a_stale_heartbeat_of_a_running_session_is_a_death() -> None:
    status = {"state": "running", "heartbeat_ts": "2026-01-01T00:00:00+00:00"}
    now = 1767225600.0 + 120  # two minutes later
    (a,) = stale_alerts("ps-1", "s", "running", status, stale_after_s=30, now=now)
    assert a.kind == "session_died" and a.key == "stale:ps-1:2026-01-01T00:00:00+00:00"
    assert stale_alerts("ps-1", "s", "stopped", status, stale_after_s=30, now=now) == []
    assert stale_alerts("ps-1", "s", "running", {**status, "state": "completed"}, stale_after_s=30, now=now) == []


def test_rejected_and_quarantining_batches_alert_by_batch_id() -> None:
    rows = [{"batch_id": "b1", "venue": "coinbase", "symbol": "BTC/USD", "timeframe": "1h", "status": "rejected",
             "reason": "schema", "rows_quarantined": 0},
            {"batch_id": "b2", "venue": "yahoo", "symbol": "^GSPC", "timeframe": "1d", "status": "accepted",
             "reason": None, "rows_quarantined": 3}]
    a, b = quality_alerts(rows)
    assert (a.key, b.key) == ("data_quality:b1", "data_quality:b2")
    assert "rejected: schema" in a.text and "3 rows quarantined" in b.text
