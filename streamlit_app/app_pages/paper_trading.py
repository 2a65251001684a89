"""Paper trading: start a session (pre-flight shown), stop/pause/resume, the session list, and the
selected session live -- portfolio vs buy-and-hold, drawdown, positions, orders, trades and the
agent's activity with every decision's reason."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import plotly.graph_objects as go
import polars as pl
import streamlit as st
from plotly.subplots import make_subplots

from streamlit_app import actions, ui
from streamlit_app import data_access as da
from trading_core.config import PROJECT_ROOT
from trading_core.ops.pipeline_health import RunSummary
from trading_core.paper import reports
from trading_core.strategies.registry import STRATEGIES
from trading_core.timeframes import TIMEFRAME_MS

REFRESH = "2s"  # the live panel's refresh: a replay at 200 bars/s moves visibly between refreshes
_FIELDS = {"name": "", "strategy": "ma_crossover", "params": "", "symbols": "", "venue": "", "timeframe": "1h",
           "capital": 100_000.0, "feed": "replay", "speed": "max", "start": "", "end": ""}
_NO_TEMPLATE = "(none: fill in the form)"
_DEFAULT_RISK = "armed (config risk section)"

st.title("Paper trading")
p = da.paths()
state = st.session_state


def _apply_template() -> None:
    """Fill the form from the chosen template (the user can still change any field)."""
    name = state.get("start_template")
    tpl = actions.templates().get(name or "", {})
    for k, default in _FIELDS.items():
        state[f"start_{k}"] = default
    if not tpl:
        return
    params = tpl.get("params") or {}
    state.update({
        "start_name": str(tpl.get("name") or name), "start_strategy": str(tpl.get("strategy") or "ma_crossover"),
        "start_params": ", ".join(f"{k}={v}" for k, v in params.items()), "start_symbols": str(tpl.get("symbol") or ""),
        "start_venue": str(tpl.get("venue") or ""), "start_timeframe": str(tpl.get("timeframe") or "1h"),
        "start_capital": float(tpl.get("cash") or 100_000.0), "start_feed": str(tpl.get("feed") or "replay"),
        "start_speed": str(tpl.get("speed") or "max"), "start_start": str(tpl.get("start") or ""),
        "start_end": str(tpl.get("end") or "")})


def _risk_files() -> list[str]:
    d = PROJECT_ROOT / "config" / "risk"
    return sorted(str(f.relative_to(PROJECT_ROOT)) for f in d.glob("*.yaml")) if d.is_dir() else []


def _start_form() -> None:
    templates = actions.templates()
    if "start_name" not in state:
        state["start_template"] = "btc-ma-crossover" if "btc-ma-crossover" in templates else _NO_TEMPLATE
        _apply_template()
    st.selectbox("Template", [_NO_TEMPLATE, *templates], key="start_template", on_change=_apply_template,
                 help="named session configs in config/sessions/ (trading paper templates)")
    tpl = templates.get(state["start_template"])
    if tpl and tpl.get("description"):
        st.caption(tpl["description"])
    with st.form("start_form", border=False):
        c = st.columns(4)
        c[0].text_input("Name", key="start_name", max_chars=64, help="letters, digits, _ . -")
        strategies = sorted(STRATEGIES)
        c[1].selectbox("Strategy", strategies, key="start_strategy")
        c[2].text_input("Parameters", key="start_params", placeholder="fast=10, slow=30", max_chars=200)
        c[3].number_input("Capital", key="start_capital", min_value=1.0, max_value=1e12, step=10_000.0, format="%.2f")
        c = st.columns(4)
        c[0].text_input("Symbols", key="start_symbols", placeholder="BTC/USD or ^GSPC,^IXIC", max_chars=200)
        c[1].text_input("Venue", key="start_venue", placeholder="coinbase", max_chars=32)
        c[2].selectbox("Timeframe", list(TIMEFRAME_MS), key="start_timeframe")
        c[3].selectbox("Risk limits", [_DEFAULT_RISK, *_risk_files()], key="start_risk",
                       help="paper sessions always trade with the risk layer armed (breakers, order checks, VIX filter)")
        c = st.columns(4)
        c[0].radio("Feed", ["replay", "live"], key="start_feed", horizontal=True)
        c[1].text_input("Replay speed", key="start_speed", help="max, or bars per second (e.g. 200)", max_chars=20)
        c[2].text_input("Replay start", key="start_start", placeholder="2019-01-01 (default: last 90 days)", max_chars=40)
        c[3].text_input("Replay end", key="start_end", placeholder="2019-06-01 (default: last bar)", max_chars=40)
        b = st.columns([1, 1, 4])
        check = b[0].form_submit_button("Pre-flight only", key="start_check")
        go_ = b[1].form_submit_button("Start session", type="primary", key="start_go")
    if check or go_:
        risk = state.get("start_risk")
        form = actions.StartForm(
            template=state["start_template"] if state["start_template"] in templates else None,
            name=state["start_name"], strategy=state["start_strategy"], params=state["start_params"],
            symbols=state["start_symbols"], venue=state["start_venue"], timeframe=state["start_timeframe"],
            capital=state["start_capital"], speed=state["start_speed"], feed=state["start_feed"],
            start=state["start_start"], end=state["start_end"],
            risk_config=None if risk in (None, _DEFAULT_RISK) else str(PROJECT_ROOT / risk))
        state.pop("start_outcome", None)
        with ui.guard("start refused"), st.spinner("validating and running the pre-flight (compiles the engine) ..."):
            out = actions.start_session(form, _config_file(), dry_run=bool(check))
            state["start_outcome"] = out
            if out.session_id:
                state["session_pick"] = out.session_id
                da.sessions.clear()
    shown = state.get("start_outcome")
    if shown is not None:
        if shown.session_id:
            st.success(f"Session **{shown.session_id}** requested ({shown.request_id}): the Dagster sensor "
                       "`paper_requests_sensor` launches it within seconds (no Dagster running? "
                       f"`trading paper run {shown.session_id}`). Its staged start shows below.")
        elif shown.refused:
            st.error("Refused by the pre-flight:\n" + "\n".join(f"- {r}" for r in shown.refused))
        else:
            st.success("Pre-flight passed: every check is green.")
        st.dataframe(pl.DataFrame([c.to_dict() for c in shown.checks]), hide_index=True, width="stretch",
                     column_config={"ok": st.column_config.CheckboxColumn("ok")})


def _config_file() -> str | None:
    import os

    return os.environ.get("TRADING_CONFIG")


def _equity_chart(eq: pl.DataFrame, key: str, benchmark: str = "buy & hold") -> None:
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.72, 0.28], vertical_spacing=0.04)
    ts = eq["ts"].to_list()
    fig.add_trace(go.Scatter(x=ts, y=eq["equity"].to_list(), name="portfolio", line={"color": "#1f6feb", "width": 2}),
                  row=1, col=1)
    if "benchmark" in eq.columns:
        fig.add_trace(go.Scatter(x=ts, y=eq["benchmark"].to_list(), name=benchmark,
                                 line={"color": "#8b949e", "width": 1.5, "dash": "dot"}), row=1, col=1)
    fig.add_trace(go.Scatter(x=ts, y=(eq["drawdown"] * 100).to_list(), name="drawdown %", fill="tozeroy",
                             line={"color": "#da3633", "width": 1}), row=2, col=1)
    fig.update_yaxes(title_text="equity", row=1, col=1)
    fig.update_yaxes(title_text="drawdown %", row=2, col=1)
    ui.plot(ui.chart_layout(fig, height=460), key)


def _request(sid: str, action: str) -> None:
    """Button callback: runs before the rerun, so the page then shows the new desired state."""
    from trading_core.errors import TradingError

    try:
        rid = actions.request(p.store, sid, action)
        state["request_result"] = ("ok", f"{action} requested ({rid})")
    except TradingError as e:
        state["request_result"] = ("error", f"{action} refused: {e}")
    da.sessions.clear()
    da.session_status.clear()


def _controls(s: dict) -> None:
    c = st.columns([1, 1, 1, 5])
    stopped = s["desired"] == "stopped" or s["state"] in ("completed", "stopped", "failed", "refused", "cancelled")
    for col, action, label in ((c[0], "pause", "⏸️ Pause"), (c[1], "resume", "▶️ Resume"), (c[2], "stop", "⏹️ Stop")):
        disabled = stopped or (action == "pause" and s["desired"] == "paused") or (
            action == "resume" and s["desired"] == "running")
        col.button(label, key=f"req_{action}", disabled=disabled, width="stretch", on_click=_request,
                   args=(s["session_id"], action))
    c[3].caption(f"the session has {s['state']}: clone it to trade the configuration again" if stopped and
                 s["desired"] != "stopped" else {"running": "desired: running", "paused": "desired: paused — resume continues from the checkpoint",
                  "stopped": "stopped (final) — clone it to trade the configuration again"}.get(s["desired"], ""))
    result = state.pop("request_result", None)
    if result is not None:
        (st.success if result[0] == "ok" else st.error)(result[1])


def _failed_run(sid: str, heartbeat: str | None) -> RunSummary | None:
    """This session's newest Dagster run when it failed after the session's last heartbeat (as the
    pipeline_health_sensor read it): the reason a session stays pending or stopped trading."""
    health = da.pipeline_health(p)
    runs = [r for r in health.runs if r.session_id == sid] if health is not None else []
    newest = max(runs, key=lambda r: r.when or datetime.min.replace(tzinfo=UTC), default=None)
    if newest is None or newest.status != "FAILURE":
        return None
    try:
        beat = datetime.fromisoformat(heartbeat) if heartbeat else None
    except ValueError:
        beat = None
    if beat is not None and beat.tzinfo is None:
        beat = beat.replace(tzinfo=UTC)
    if beat is not None and newest.when is not None and newest.when < beat:
        return None  # an older failure the session has recovered from
    return newest


@st.fragment(run_every=REFRESH)
def _live(sid: str, kinds: list[str]) -> None:
    s: dict = {}
    with ui.guard("session status"):
        s = da.session_status(p, sid)
        _controls(s)  # in the fragment: buttons enable/disable with the live state (stable keys)
        m = st.columns(3)
        m[0].metric("State", ui.state_label(s["state"]), border=True)
        ret = (s["equity"] / s["initial_cash"] - 1.0) if isinstance(s["equity"], int | float) else None
        m[1].metric("Equity", ui.money(s["equity"]), border=True, delta=None if ret is None else ui.pct(ret))
        m[2].metric("Cash", ui.money(s["cash"]), border=True)
        m = st.columns(3)
        total = s.get("bars_total")
        m[0].metric("Bars", f"{s['bars_processed']:,}" + (f" / {total:,}" if total else ""), border=True)
        m[1].metric("Last bar", (s.get("last_bar_ts") or "–")[:16].replace("T", " "), border=True)
        m[2].metric("Heartbeat", ui.ago(s.get("heartbeat_ts")), border=True)
        if s.get("stage"):
            st.progress(float(s.get("progress") or 0.0),
                        text=f"staged start: **{s['stage']}** ({float(s.get('progress') or 0) * 100:.0f} %) — "
                             "data_sync → warm_up → analysis → activation")
        for r in s.get("reasons") or []:
            st.warning(r)
        if s.get("stale"):
            st.warning("the feed's data is stale: no new entries until fresh bars arrive")
    failed = None
    with ui.guard("session run"):
        failed = _failed_run(sid, s.get("heartbeat_ts"))
        if failed is not None:
            step = f" at step `{failed.failed_step}`" if failed.failed_step else ""
            message = " ".join((failed.failure or "no message recorded").split())[:400]  # the detail is on line 2+
            st.error(f"Dagster's run `{failed.run_id[:8]}` of this session failed{step}: {message} — its full log is "
                     "under Runs in the Dagster UI; `trading paper run " + sid + "` retries it in a terminal.")
    with ui.guard("portfolio chart"):
        eq = da.session_equity(p, sid)
        if eq.height == 0 and failed is not None:
            st.caption("No bar traded: the session's run failed (above).")
        elif eq.height == 0:
            ui.empty("No bar traded yet — the chart appears once the session activates "
                     "(is Dagster running? `trading up`, or `trading paper run " + sid + "`).")
        else:
            first = (s.get("symbols") or [""])[0]  # the benchmark holds the session's first symbol
            _equity_chart(eq, key=f"eq_{sid}", benchmark=f"buy & hold {first}".strip())
    events = pl.DataFrame()
    with ui.guard("ledger"):
        events = da.session_events(p, sid)
    tabs = st.tabs(["Positions", "Orders", "Fills", "Trades", "Agent activity"])
    with tabs[0], ui.guard("positions"):
        pos = reports.positions_table(s)
        if pos.height:
            st.dataframe(pos, hide_index=True, width="stretch")
        else:
            st.caption("No open position.")
    with tabs[1], ui.guard("orders"):
        orders = reports.orders_table(events)
        if orders.height:
            st.dataframe(orders, hide_index=True, width="stretch")
        else:
            st.caption("No order yet.")
    with tabs[2], ui.guard("fills"):
        fills = reports.fills_table(events)
        if fills.height:
            st.dataframe(fills, hide_index=True, width="stretch")
        else:
            st.caption("No fill yet.")
    with tabs[3], ui.guard("trades"):
        trades = reports.trades_table(events)
        if trades.height:
            st.dataframe(trades, hide_index=True, width="stretch",
                         column_config={"pnl": st.column_config.NumberColumn("pnl", format="%.2f")})
        else:
            st.caption("No closed trade yet.")
    with tabs[4], ui.guard("agent activity"):
        rows = reports.activity_rows(events)
        if kinds:
            rows = [r for r in rows if r["kind"] in kinds]
        if rows:
            st.dataframe(pl.DataFrame(rows[:1000], infer_schema_length=None), hide_index=True, width="stretch",
                         height=ui.table_height(len(rows[:1000]), 420),
                         column_config={"ts": st.column_config.DatetimeColumn("bar (UTC)", format="YYYY-MM-DD HH:mm"),
                                        "reason": st.column_config.TextColumn("reason", width="medium"),
                                        "detail": st.column_config.TextColumn("detail", width="large")})
            st.caption(f"{len(rows):,} decision(s), newest first (the last 1,000 shown); "
                       "`trading paper activity ID` prints them too.")
        else:
            st.caption("No decision yet.")


with st.expander("▶️ Start a session", expanded=not da.sessions(p)), ui.guard("start form"):
    _start_form()

st.subheader("Sessions")


def _state_cell(s: dict) -> str:
    """The state as the session's files say, and "run failed" when its Dagster run died before
    the session could record it (it would read "pending" or "running" forever)."""
    label = ui.state_label(s["state"])
    if s["state"] in ("pending", "starting", "resuming", "running") and _failed_run(s["session_id"], s["heartbeat_ts"]):
        return f"{label} · run failed"
    return label


@st.fragment(run_every=REFRESH)
def _session_list() -> None:
    """The session table, refreshed with the live panel (not only on a full rerun): a session
    that starts, pauses or dies elsewhere (CLI, Dagster) shows its new state within seconds."""
    with ui.guard("session list"):
        rows = da.sessions(p)
        table = pl.DataFrame([{"session": s["session_id"], "name": s["name"], "state": _state_cell(s),
                               "desired": s["desired"], "strategy": s["strategy"], "symbols": ", ".join(s["symbols"]),
                               "feed": s["feed"], "bars": s["bars_processed"], "equity": s["equity"],
                               "heartbeat": ui.ago(s["heartbeat_ts"])} for s in reversed(rows)],
                             infer_schema_length=None)
        st.dataframe(table, hide_index=True, width="stretch", key="session_table",
                     column_config={"equity": st.column_config.NumberColumn("equity", format="%.2f")})


with ui.guard("sessions"):
    sessions = da.sessions(p)
    if not sessions:
        ui.empty("No session yet — start one above (the `btc-ma-crossover` template replays BTC/USD at 200 bars/s).")
    else:
        _session_list()
        ids = [s["session_id"] for s in reversed(sessions)]
        names = {s["session_id"]: s["name"] for s in sessions}
        if state.get("session_pick") not in ids:  # watch what trades now, else the latest that traded
            running = [s["session_id"] for s in reversed(sessions) if s["state"] == "running"]
            traded = [s["session_id"] for s in reversed(sessions) if s["bars_processed"]]
            state["session_pick"] = (running or traded or ids)[0]
        sid = st.selectbox("Session", ids, key="session_pick", format_func=lambda x: f"{names.get(x, '')} — {x}")
        kinds = st.multiselect("Activity kinds", ["SignalDecision", "RiskDecision", "OrderSubmitted", "OrderDenied",
                                                  "OrderRejected", "OrderFilled", "PositionOpened", "PositionClosed",
                                                  "BreakerTripped", "BreakerReset"], key="activity_kinds",
                               placeholder="all kinds")
        _live(sid, kinds)

st.caption(f"Requests are files under `{Path(p.paper_root) / 'sessions'}`; the app writes nothing else.")
