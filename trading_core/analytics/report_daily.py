"""The platform's daily summary: sessions, PnL, fills, alerts and data freshness, one row per day.

The ledger holds event time only (no wall clock), so a day's figures are a snapshot taken when
the summary runs (``as_of``), and the day's changes (``day_pnl``, ``day_fills``) are measured
against the latest earlier summary of each session. Re-running a day replaces its row.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

__all__ = ["compute_daily_summary", "render_daily_summary", "store_daily_summary"]


def compute_daily_summary(cfg: Any, warehouse: Any, *, now: datetime | None = None) -> tuple[dict[str, Any],
                                                                                            list[dict[str, Any]]]:
    """(the day's row, one row per session) for ``now``'s UTC day, reading every store read-only."""
    from ..alerts import journal_for
    from ..paper.control import SessionStore
    from ..paper.reports import session_metrics
    from ..paper.supervision import FINISHED, heartbeat_age
    from ..warehouse.bars import series_ranges
    from ..warehouse.paper import PaperLedger
    from ..warehouse.reports import previous_session_summary

    now = now or datetime.now(UTC)
    day = now.date()
    data = Path(cfg.data_dir)
    store = SessionStore(data / "paper")
    ledger = PaperLedger(data / "paper.duckdb", deadline_s=cfg.warehouse.lock_deadline_s)
    with warehouse.connect(read_only=True) as con:
        prev = previous_session_summary(con, day)
        series = series_ranges(con)
    sessions: list[dict[str, Any]] = []
    running = stale = 0
    for sid in store.session_ids():
        config, st = store.load(sid), store.status(sid) or {}
        m = session_metrics(store, ledger, sid)
        fills = int(m.get("fills", 0))
        equity = m.get("final_equity")
        p = prev.get(sid, {})
        state = st.get("state") or "pending"
        if state == "running":
            running += 1
            age = heartbeat_age(st, now.timestamp())
            stale += int(store.desired(sid) == "running" and state not in FINISHED
                         and (age is None or age > config.stale_after_s))
        base = p.get("equity") if p.get("equity") is not None else config.request.cash
        sessions.append({"session_id": sid, "name": config.name, "state": state, "bars": int(m.get("bars", 0)),
                         "fills": fills, "day_fills": fills - int(p.get("fills", 0)), "equity": equity,
                         "pnl": None if equity is None else equity - config.request.cash,
                         "day_pnl": None if equity is None else equity - base})
    acked = [r for r in journal_for(cfg).acknowledged()
             if datetime.fromtimestamp(float(r["acked_at"]), tz=UTC).date() == day]
    by_kind = Counter(r["kind"] for r in {r["alert_key"]: r for r in acked}.values())
    fresh: list[dict[str, Any]] = [{"series": f"{s.venue}:{s.symbol}:{s.timeframe}", "last_bar": s.last_ts.isoformat(),
              "age_h": round((now - s.last_ts).total_seconds() / 3600, 1)} for s in series]
    stalest = max(fresh, key=lambda f: f["age_h"], default=None)
    eqs = [s["equity"] for s in sessions if s["equity"] is not None]

    def total(k: str) -> float | None:
        vals = [s[k] for s in sessions if s[k] is not None]
        return float(sum(vals)) if vals else None

    row = {"day": day, "as_of": now, "sessions": len(sessions), "sessions_running": running, "sessions_stale": stale,
           "equity": float(sum(eqs)) if eqs else None, "pnl": total("pnl"), "day_pnl": total("day_pnl"),
           "fills": sum(s["fills"] for s in sessions), "day_fills": sum(s["day_fills"] for s in sessions),
           "alerts": sum(by_kind.values()), "alerts_by_kind": dict(by_kind),
           "stalest_series": stalest["series"] if stalest else None,
           "stalest_age_h": stalest["age_h"] if stalest else None, "freshness": fresh}
    return row, sessions


def store_daily_summary(warehouse: Any, row: dict[str, Any], sessions: list[dict[str, Any]],
                        deliveries: list[dict[str, Any]]) -> None:
    """The summary and the journal's acknowledged deliveries, in one transaction."""
    from ..warehouse.connection import transaction
    from ..warehouse.reports import write_alert_deliveries, write_daily_summary

    with warehouse.connect() as con, transaction(con):
        write_daily_summary(con, row, sessions)
        write_alert_deliveries(con, deliveries)


def render_daily_summary(row: dict[str, Any], sessions: list[dict[str, Any]]) -> str:
    """A small self-contained page (no script) of the day's summary; every value escaped."""
    from .report import e, table

    head = {k: v for k, v in row.items() if k not in ("freshness", "alerts_by_kind")}
    head = {k: (v.isoformat() if isinstance(v, date | datetime) else v) for k, v in head.items()}
    title = f"Daily summary {row['day']}"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{e(title)}</title></head><body><h1>{e(title)}</h1>"
            f"<h2>Platform</h2>{table([head])}<h2>Alerts by kind</h2>"
            f"<p>{html.escape(json.dumps(row['alerts_by_kind'], sort_keys=True))}</p>"
            f"<h2>Sessions</h2>{table(sessions)}<h2>Data freshness</h2>{table(row['freshness'])}</body></html>\n")
