"""Overview: pipeline health (Dagster runs and asset checks), data freshness, ingest and data quality,
alerts, active sessions."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import streamlit as st

from streamlit_app import data_access as da
from streamlit_app import ui
from trading_core.paper.reports import ACTIVE_STATES
from trading_core.timeframes import timeframe_ms

st.title("Overview")
p = da.paths()

market = da.overview_tables(p)  # one read of the snapshot for freshness, batches and findings
series, source, batches, counts = market["series"], market["source"], market["batches"], market["counts"]
sessions = da.sessions(p)
alerts = da.alerts(p)

active = [s for s in sessions if s["state"] in ACTIVE_STATES and s["desired"] != "stopped"]
warn = [a for a in alerts if a.get("severity") in ("warning", "error")]
rejected = batches.filter(pl.col("status") != "accepted").height if batches.height else 0

c = st.columns(5)
c[0].metric("Series stored", len(series), border=True)
c[1].metric("Bars stored", f"{sum(s['bars'] for s in series):,}", border=True)
c[2].metric(f"Active sessions (of {len(sessions)})", len(active), border=True)
c[3].metric(f"Warning alerts (of {len(alerts)})", len(warn), border=True)
c[4].metric(f"Rejected batches (of {batches.height})", rejected, border=True)

TS = st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss")  # no "+00:00" on every cell: all UTC


def _pipeline_health() -> None:
    """Latest run per job, the last day's failures with the failing step's message, and asset
    checks failing first -- as the pipeline_health_sensor last read them from Dagster."""
    health = da.pipeline_health(p)
    if health is None:
        ui.empty("Dagster has not reported yet — start it with `make run` (its `pipeline_health_sensor` records "
                 "the latest runs and asset checks here every 30 s).")
        return
    st.caption(f"as of {health.as_of:%Y-%m-%d %H:%M:%S} UTC ({ui.ago(health.as_of.isoformat())}), "
               "as Dagster's `pipeline_health_sensor` last read it; times in UTC")
    latest = health.latest_per_job()
    if latest:
        runs = pl.DataFrame([{"job": r.label, "status": ui.run_label(r.status), "started": r.started_at,
                              "ended": r.ended_at, "duration (s)": r.duration_s, "partition": r.partition_key,
                              "session": r.session_id, "run": r.run_id[:8]} for r in latest],
                            infer_schema_length=None)
        st.dataframe(ui.drop_empty_columns(runs, keep=("job", "status", "started", "ended", "duration (s)", "run")),
                     hide_index=True, width="stretch", height=ui.table_height(runs.height, 420),
                     column_config={"started": TS, "ended": TS,
                                    "duration (s)": st.column_config.NumberColumn("duration (s)", format="%.1f")})
    else:
        st.caption("No Dagster run yet: the catch-up ingest starts within a minute of `make run`.")
    failures = health.failures()
    if failures:
        st.warning(f"{len(failures)} run(s) failed in the last 24 h", icon="🔴")
        failed = pl.DataFrame([{"ended": r.ended_at, "job": r.label, "partition": r.partition_key,
                                "failing step": r.failed_step, "message": r.failure, "run": r.run_id[:8]}
                               for r in failures[:50]], infer_schema_length=None)
        st.dataframe(ui.drop_empty_columns(failed, keep=("ended", "job", "failing step", "message", "run")),
                     hide_index=True, width="stretch", column_config={"ended": TS})
    elif health.runs:  # with no run at all, "none failed" says nothing
        st.success("No run failed in the last 24 h.")
    checks = health.checks_by_urgency()
    if checks:
        bad = sum(1 for c in checks if c.passed is False)
        st.markdown(f"**Asset checks** ({bad} failing or warning of {len(checks)}, failing first)")
        table = pl.DataFrame([{"check": ui.check_label(c.passed, c.severity), "asset": c.asset,
                               "name": c.check_name, "severity": c.severity, "description": c.description,
                               "when": c.evaluated_at} for c in checks], infer_schema_length=None)
        st.dataframe(table, hide_index=True, width="stretch", height=ui.table_height(table.height, 420),
                     column_config={"when": TS, "description": st.column_config.TextColumn("description", width="large")})


left, right = st.columns([3, 2])
with left:
    st.subheader("Data freshness")
    with ui.guard("data freshness"):
        if not series:
            ui.empty("No market data yet — load the offline sample with `trading ingest sample` "
                     "(or `make run`, which loads it on an empty warehouse).")
        else:
            now = datetime.now(UTC)
            rows = []
            for s in series:
                last = s["last_ts"] if s["last_ts"].tzinfo else s["last_ts"].replace(tzinfo=UTC)
                age = (now - last).total_seconds() * 1000 / timeframe_ms(s["timeframe"])
                rows.append({"series": f"{s['symbol']} {s['timeframe']} · {s['venue']}",
                             "first bar": s["first_ts"], "last bar": last, "bars": s["bars"],
                             "age (bars)": round(age), "fresh": age <= p.stale_bars})
            day = st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")
            st.dataframe(pl.DataFrame(rows), hide_index=True, width="stretch",
                         column_config={"first bar": day, "last bar": day, "fresh": st.column_config.CheckboxColumn(
                             "fresh", help=f"last bar at most {p.stale_bars} bars old (replay sessions do not need it)")})
            st.caption(f"read from the {source}; a live session needs fresh data, a replay only stored history.")

with right:
    st.subheader("Active sessions")
    with ui.guard("active sessions"):
        if not sessions:
            ui.empty("No session yet — start one on the Paper trading page or with "
                     "`trading paper start --template btc-ma-crossover`.")
        elif not active:
            st.caption("No session is trading right now. The latest:")
        for s in (active or sessions[-3:])[::-1]:
            with st.container(border=True):
                st.markdown(f"**{s['name']}** `{s['session_id']}` — {ui.state_label(s['state'])}")
                st.caption(f"{s['strategy']} on {', '.join(s['symbols'])} {s['timeframe']} · {s['feed']} · "
                           f"{s['bars_processed']:,} bars · equity {ui.money(s['equity'])} · "
                           f"heartbeat {ui.ago(s['heartbeat_ts'])}")
                if s.get("stage"):
                    st.progress(float(s.get("progress") or 0.0), text=f"stage: {s['stage']}")

st.subheader("Pipeline health")
with ui.guard("pipeline health"):
    _pipeline_health()

st.subheader("Alerts")
with ui.guard("alerts"):
    if not alerts:
        st.success("No alerts delivered.")
    else:
        view = pl.DataFrame([{"delivered": datetime.fromtimestamp(a["delivered_at"], tz=UTC),
                              "severity": a.get("severity"), "kind": a.get("kind"),
                              "session": a.get("session_id"), "text": a.get("text", "")}
                             for a in alerts[:50]])
        st.dataframe(view, hide_index=True, width="stretch", height=ui.table_height(view.height, 360),
                     column_config={"delivered": TS, "text": st.column_config.TextColumn("text", width="large")})

st.subheader("Ingest batches and data quality")
with ui.guard("ingest batches"):
    if batches.height == 0:
        ui.empty("No ingest batch recorded yet — run `trading ingest sample` or start the stack with `make run`.")
    else:
        latest = batches.group_by("venue", "symbol", "timeframe", maintain_order=True).first()
        view = latest.select("venue", "symbol", "timeframe", "status", "received_at", "rows_in", "rows_inserted",
                             "rows_quarantined", "reason")
        st.dataframe(ui.drop_empty_columns(view, keep=("venue", "symbol", "timeframe", "status", "received_at")),
                     hide_index=True, width="stretch",
                     column_config={"received_at": st.column_config.DatetimeColumn("last batch",
                                                                                   format="YYYY-MM-DD HH:mm:ss")})
        if counts.height:
            st.markdown("**Data-quality findings** (validation rules, all batches)")
            st.dataframe(counts, hide_index=True, width="stretch", column_config={"last_seen": TS})
        else:
            st.success("No data-quality findings in any batch.")
