"""The alert rules, evaluated from stored data only (never from a process's memory).

- ``drawdown_limit``: a session's equity (ledger ``paper.equity``, accounts summed) fell more than
  the limit below its running peak; one alert per drawdown episode (key: the peak's bar).
- ``breaker_tripped``, ``session_died``, ``session_resumed``: the paper sessions' own alerts
  (their outbox, as delivered to ``alerts.jsonl``), forwarded with the outbox message id as key.
- ``session_died`` also fires when a session that should be running has a stale heartbeat
  (``status.json``) -- before the supervisor restarts it; key: the last heartbeat seen.
- ``data_quality``: a batch the validation contract rejected or partly quarantined
  (``market.ingest_batches`` in the serving snapshot); key: the batch id.
- ``drift_detected``: a failed drift check (``ml.drift_checks``); key: the check id.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from .config import RulesConfig
from .model import Alert

__all__ = ["drawdown_alerts", "evaluate", "paper_log_alerts", "quality_alerts", "drift_alerts", "stale_alerts"]

_PAPER_KINDS = {"BreakerTripped": ("breaker_tripped", "breaker_tripped"),
                "session_died": ("session_died", "session_died"),
                "session_resumed": ("session_resumed", "session_resumed")}


def drawdown_alerts(session_id: str, name: str, bar_ts: np.ndarray, equity: np.ndarray, limit: float) -> list[Alert]:
    """One alert per episode whose trough is deeper than ``limit`` (a fraction)."""
    out: list[Alert] = []
    if equity.size < 2:
        return out
    peak_i, alerted = 0, False
    for i in range(1, equity.size):
        if equity[i] >= equity[peak_i]:
            peak_i, alerted = i, False
            continue
        dd = equity[i] / equity[peak_i] - 1.0 if equity[peak_i] > 0 else 0.0
        if not alerted and dd <= -limit:
            alerted = True
            out.append(Alert(key=f"drawdown:{session_id}:{int(bar_ts[peak_i])}", kind="drawdown_limit",
                             severity="warning", subject=session_id,
                             text=f"session {name} ({session_id}) is {-dd:.1%} below its peak of {equity[peak_i]:,.2f} "
                                  f"(limit {limit:.0%})",
                             payload={"peak_bar_ts": int(bar_ts[peak_i]), "bar_ts": int(bar_ts[i]),
                                      "drawdown": float(dd)}))
    return out


def paper_log_alerts(records: list[dict[str, Any]], rules: RulesConfig) -> list[Alert]:
    out = []
    for r in records:
        kind = _PAPER_KINDS.get(str(r.get("kind")))
        if kind is None or not getattr(rules, kind[1]):
            continue
        out.append(Alert(key=str(r["message_id"]), kind=kind[0], severity=str(r.get("severity", "info")),
                         subject=str(r.get("session_id", "")), text=str(r.get("text", "")),
                         payload={"name": r.get("name")}))
    return out


def stale_alerts(session_id: str, name: str, desired: str, status: dict[str, Any] | None, *,
                 stale_after_s: float, now: float) -> list[Alert]:
    from ..paper.supervision import FINISHED, heartbeat_age

    if desired != "running" or not status or status.get("state") in FINISHED:
        return []
    age = heartbeat_age(status, now)
    if age is None or age <= stale_after_s:
        return []
    return [Alert(key=f"stale:{session_id}:{status.get('heartbeat_ts')}", kind="session_died", severity="error",
                  subject=session_id, text=f"session {name} ({session_id}) has not sent a heartbeat for {age:.0f}s "
                                           f"(stale after {stale_after_s:g}s)", payload={"age_s": age})]


def quality_alerts(failures: list[dict[str, Any]]) -> list[Alert]:
    return [Alert(key=f"data_quality:{f['batch_id']}", kind="data_quality", severity="error",
                  subject=f"{f['venue']}:{f['symbol']}:{f['timeframe']}",
                  text=(f"batch {f['batch_id']} of {f['symbol']} ({f['venue']}, {f['timeframe']}) was "
                        + (f"rejected: {f.get('reason') or 'see market.quality_issues'}" if f["status"] == "rejected"
                           else f"accepted with {f['rows_quarantined']} rows quarantined")),
                  payload={"status": f["status"], "rows_quarantined": f["rows_quarantined"]}) for f in failures]


def drift_alerts(checks: list[dict[str, Any]]) -> list[Alert]:
    return [Alert(key=f"drift:{c['check_id']}", kind="drift_detected", severity="warning",
                  subject=f"{c['model_name']} v{c['version']}",
                  text=f"drift check {c['check_id']} of model {c['model_name']} v{c['version']} failed "
                       f"(measured {c['measured_at']})") for c in checks]


def evaluate(cfg: Any, *, now: float | None = None) -> tuple[list[Alert], list[str]]:
    """Every alert the stored data calls for (``cfg``: the resolved ``TradingConfig``), and notes
    on sources that could not be read. Each store is opened read-only, briefly."""
    from ..paper.alerts import AlertSink
    from ..paper.control import SessionStore
    from ..warehouse import Warehouse
    from ..warehouse.paper import PaperLedger
    from ..warehouse.reports import data_quality_failures, drift_failures

    rules: RulesConfig = cfg.alerts.rules
    now = time.time() if now is None else now
    data = Path(cfg.data_dir)
    alerts: list[Alert] = []
    notes: list[str] = []
    store = SessionStore(data / "paper")
    alerts += paper_log_alerts(AlertSink(store.root / "alerts.jsonl").delivered(), rules)
    ledger = PaperLedger(data / "paper.duckdb", deadline_s=cfg.warehouse.lock_deadline_s)
    for sid in store.session_ids():
        config = store.load(sid)
        if rules.session_died:
            alerts += stale_alerts(sid, config.name, store.desired(sid), store.status(sid),
                                   stale_after_s=config.stale_after_s, now=now)
        if rules.drawdown_limit is not None and ledger.path.exists():
            with ledger.connect(read_only=True) as con:
                eq = ledger.equity(con, sid)
            if eq.height:
                curve = eq.group_by("bar_index", maintain_order=True).agg(
                    pl.col("bar_ts").first(), pl.col("equity").sum()).sort("bar_index")
                alerts += drawdown_alerts(sid, config.name, curve["bar_ts"].to_numpy(), curve["equity"].to_numpy(),
                                          rules.drawdown_limit)
    snapshot = Path(cfg.warehouse.serving_dir) / "market_data.duckdb"
    if rules.data_quality:
        source = snapshot if snapshot.exists() else Path(cfg.warehouse.path)
        if source.exists():
            with Warehouse(source, deadline_s=cfg.warehouse.lock_deadline_s).connect(read_only=True) as con:
                alerts += quality_alerts(data_quality_failures(con))
        else:
            notes.append("data quality: no warehouse or serving snapshot yet")
    if rules.drift_detected and Path(cfg.warehouse.path).exists():
        with Warehouse(cfg.warehouse.path, deadline_s=cfg.warehouse.lock_deadline_s).connect(read_only=True) as con:
            alerts += drift_alerts(drift_failures(con))
    return alerts, notes
