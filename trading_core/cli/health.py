"""``trading health [--json]``: is the platform up? Warehouse, Dagster, MLflow, paper sessions, alerts.

- warehouse: opens read-only (briefly, with the lock retry), row counts, last bar per series and
  its age;
- dagster: the webserver answers on 127.0.0.1:<services.dagster_port>, ``$DAGSTER_HOME`` exists;
- mlflow: the server answers ``/health`` on 127.0.0.1:<services.mlflow_port>;
- sessions: each session that should be running has a fresh heartbeat (stale ones are flagged);
- alerts: the channels that can deliver, and deliveries still unacknowledged.

Only loopback is probed, with a short timeout. Exit 0 when healthy, 1 when something is down
(each problem is one line of ``down``).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("health", help="check the warehouse, Dagster, MLflow and paper sessions",
                       description="Exit 0 when healthy, 1 when something is down (say what).")
    p.add_argument("--json", action="store_true", help="print the checks as JSON")
    p.add_argument("--timeout", type=float, default=1.0, help="seconds per service probe (default 1)")
    p.set_defaults(handler=_run)


def probe(url: str, timeout: float) -> dict[str, Any]:
    """GET a loopback URL: ``up`` and the HTTP status, or the error."""
    import urllib.error
    import urllib.request

    start = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 (loopback URL built from config)
            return {"url": url, "up": 200 <= r.status < 400, "status": r.status,
                    "ms": round((time.monotonic() - start) * 1000, 1)}
    except urllib.error.HTTPError as e:
        return {"url": url, "up": False, "status": e.code, "error": str(e)}
    except (OSError, ValueError) as e:
        return {"url": url, "up": False, "error": str(getattr(e, "reason", e))}


def _warehouse(cfg: Any, now: float) -> dict[str, Any]:
    from ..errors import TradingError
    from ..warehouse import Warehouse
    from ..warehouse.bars import series_ranges
    from ..warehouse.reports import table_counts

    path = Path(cfg.warehouse.path)
    out: dict[str, Any] = {"path": str(path), "exists": path.exists()}
    if not path.exists():
        return {**out, "ok": False, "error": "not created yet (trading ingest sample, or make run)"}
    try:
        with Warehouse(path, deadline_s=min(cfg.warehouse.lock_deadline_s, 5.0)).connect(read_only=True) as con:
            out["rows"] = table_counts(con)
            series = series_ranges(con)
    except TradingError as e:
        return {**out, "ok": False, "error": str(e)}
    out["series"] = [{"venue": s.venue, "symbol": s.symbol, "timeframe": s.timeframe, "bars": int(s.bars),
                      "last_bar": s.last_ts.isoformat(), "age_h": round((now - s.last_ts.timestamp()) / 3600, 1)}
                     for s in series]
    out["ok"] = True
    return out


def _sessions(cfg: Any, now: float) -> list[dict[str, Any]]:
    from ..paper.control import SessionStore
    from ..paper.supervision import FINISHED, heartbeat_age

    store = SessionStore(Path(cfg.data_dir) / "paper")
    rows = []
    for sid in store.session_ids():
        config, st, desired = store.load(sid), store.status(sid) or {}, store.desired(sid)
        age = heartbeat_age(st, now)
        should_run = desired == "running" and st.get("state") not in FINISHED
        stale = bool(should_run and st and (age is None or age > config.stale_after_s))
        rows.append({"session_id": sid, "name": config.name, "desired": desired, "state": st.get("state") or "pending",
                     "heartbeat_age_s": None if age is None else round(age, 1), "stale_after_s": config.stale_after_s,
                     "stale": stale})
    return rows


def _alerts(cfg: Any) -> dict[str, Any]:
    from ..alerts import journal_for
    from ..alerts.channels import build_channels

    channels, skipped = build_channels(cfg.alerts)
    entries = journal_for(cfg).entries()
    return {"enabled": cfg.alerts.enabled, "channels": [c.name for c in channels], "skipped": skipped,
            "acknowledged": sum(e.acked for e in entries.values()),
            "unacknowledged": sorted(f"{k}@{c}" for (k, c), e in entries.items() if not e.acked)}


def health(cfg: Any, *, timeout: float = 1.0, now: float | None = None) -> dict[str, Any]:
    """Every check and the list of what is down."""
    now = time.time() if now is None else now
    s = cfg.services
    home = os.environ.get("DAGSTER_HOME")
    doc: dict[str, Any] = {
        "warehouse": _warehouse(cfg, now),
        "dagster": {**probe(f"http://127.0.0.1:{s.dagster_port}/server_info", timeout),
                    "dagster_home": home, "dagster_home_exists": bool(home and Path(home).is_dir())},
        "mlflow": probe(f"http://127.0.0.1:{s.mlflow_port}/health", timeout),
        "sessions": _sessions(cfg, now),
        "alerts": _alerts(cfg),
    }
    down = []
    if not doc["warehouse"]["ok"]:
        down.append(f"warehouse {doc['warehouse']['path']}: {doc['warehouse'].get('error')}")
    for name in ("dagster", "mlflow"):
        if not doc[name]["up"]:
            down.append(f"{name}: {doc[name]['url']} does not answer ({doc[name].get('error') or doc[name].get('status')})")
    for r in doc["sessions"]:
        if r["stale"]:
            down.append(f"session {r['session_id']} ({r['name']}): heartbeat {r['heartbeat_age_s']}s old "
                        f"(stale after {r['stale_after_s']:g}s)")
    doc["down"] = down
    doc["healthy"] = not down
    return doc


def _run(args: argparse.Namespace) -> int:
    from ..config import load_config

    doc = health(load_config(args.config), timeout=args.timeout)
    if args.json:
        print(json.dumps(doc, sort_keys=True, default=str))
    else:
        w = doc["warehouse"]
        print(f"warehouse: {'ok' if w['ok'] else 'DOWN'} {w['path']}")
        for s in w.get("series", []):
            print(f"  {s['venue']}:{s['symbol']}:{s['timeframe']}  {s['bars']:>8} bars, last {s['last_bar']} "
                  f"({s['age_h']} h ago)")
        for name in ("dagster", "mlflow"):
            print(f"{name}: {'up' if doc[name]['up'] else 'DOWN'} {doc[name]['url']}")
        for r in doc["sessions"]:
            print(f"session {r['session_id']} {r['state']:<10} heartbeat {r['heartbeat_age_s']} s"
                  + ("  STALE" if r["stale"] else ""))
        a = doc["alerts"]
        print(f"alerts: channels {', '.join(a['channels']) or '-'}; {a['acknowledged']} delivered, "
              f"{len(a['unacknowledged'])} unacknowledged" + "".join(f"\n  {x}" for x in a["skipped"]))
        print("healthy" if doc["healthy"] else "DOWN:\n  " + "\n  ".join(doc["down"]))
    return 0 if doc["healthy"] else 1
