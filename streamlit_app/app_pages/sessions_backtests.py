"""Sessions and backtests: metrics side by side, equity curves overlaid, exports (CSV / JSON)."""

from __future__ import annotations

import json

import plotly.graph_objects as go
import polars as pl
import streamlit as st

from streamlit_app import data_access as da
from streamlit_app import ui
from trading_core.analytics.views import backtest_metrics, compare_table, drawdown

st.title("Sessions & backtests")
p = da.paths()

sessions = da.sessions(p)
runs = da.backtest_runs(p)
BACKTEST = ("`trading backtest --strategy ma_crossover --symbol BTC/USD --venue coinbase --timeframe 1h "
            "--start 2019-01-01 --end 2019-06-01`")
if not sessions and runs.height == 0:
    ui.empty("Nothing to compare yet — start a paper session (Paper trading page) or store a backtest with "
             f"{BACKTEST}.")
    st.stop()

s_label = {s["session_id"]: f"session {s['name']} ({s['session_id']})" for s in sessions}
r_label = {r["run_id"]: f"backtest {r['strategy']} {r['symbol']} {r['timeframe']} ({r['run_id'][:8]})"
           for r in runs.iter_rows(named=True)}
c = st.columns(2)
traded = [s["session_id"] for s in reversed(sessions) if s["bars_processed"]]  # newest first
pick_s = c[0].multiselect("Paper sessions", list(s_label)[::-1], default=traded[:2],
                          format_func=lambda k: s_label.get(k, k), key="cmp_sessions")
pick_r = c[1].multiselect("Backtests", list(r_label), default=list(r_label)[:1],
                          format_func=lambda k: r_label.get(k, k),
                          key="cmp_runs")
if not r_label:
    c[1].caption(f"No backtest stored yet — {BACKTEST} stores one.")
elif not s_label:
    c[0].caption("No paper session yet — start one on the Paper trading page.")
if not pick_s and not pick_r:
    ui.empty("Pick at least one session or backtest above.")
    st.stop()

metrics: dict[str, dict] = {}
curves: dict[str, pl.DataFrame] = {}
with ui.guard("sessions"):
    for sid in pick_s:
        metrics[s_label[sid]] = da.session_metrics(p, sid)
        curves[s_label[sid]] = da.session_equity(p, sid).select("ts", "equity")
with ui.guard("backtests"):
    by_id = {r["run_id"]: r for r in runs.iter_rows(named=True)}
    for rid in pick_r:
        metrics[r_label[rid]] = backtest_metrics(by_id[rid])
        curves[r_label[rid]] = da.backtest_equity(p, rid).select("ts", "equity")

st.subheader("Metrics")
table = compare_table(metrics)
st.dataframe(table, hide_index=True, width="stretch", height=min(40 + 35 * table.height, 820))

st.subheader("Equity (rebased to 100) and drawdown")
with ui.guard("equity chart"):
    normalise = st.toggle("rebase every curve to 100 at its start", value=True, key="cmp_rebase")
    fig = go.Figure()
    dd = go.Figure()
    for i, (label, eq) in enumerate(curves.items()):
        if eq.height == 0:
            continue
        y = eq["equity"] / eq["equity"][0] * 100 if normalise else eq["equity"]
        line = {"color": ui.series_color(i), "width": 1.6}  # one distinct colour per item, the same in both charts
        fig.add_trace(go.Scatter(x=eq["ts"].to_list(), y=y.to_list(), name=label, mode="lines", line=line,
                                 legendgroup=label))
        dd.add_trace(go.Scatter(x=eq["ts"].to_list(), y=(drawdown(eq["equity"]) * 100).to_list(), name=label,
                                mode="lines", line=line, legendgroup=label, showlegend=False))
    ui.plot(ui.chart_layout(fig, height=380, yaxis_title="equity" + (" (start = 100)" if normalise else "")), "cmp_eq")
    ui.plot(ui.chart_layout(dd, height=220, yaxis_title="drawdown %"), "cmp_dd")

st.subheader("Export")
with ui.guard("export"):
    d = st.columns(4)
    d[0].download_button("Comparison (CSV)", table.write_csv(), "comparison.csv", "text/csv", key="dl_cmp_csv")
    d[1].download_button("Comparison (JSON)", json.dumps(metrics, indent=2, default=str), "comparison.json",
                         "application/json", key="dl_cmp_json")
    frames = [eq.with_columns(pl.lit(label).alias("item")) for label, eq in curves.items() if eq.height]
    if frames:
        allc = pl.concat([f.with_columns(pl.col("ts").cast(pl.Datetime("ms", "UTC"))) for f in frames])
        d[2].download_button("Equity curves (CSV)", allc.write_csv(), "equity.csv", "text/csv", key="dl_eq_csv")
    for sid in pick_s:
        ev = da.session_events(p, sid)
        if ev.height:
            rows = [{**r, "payload": json.loads(r["payload"])} for r in ev.iter_rows(named=True)]
            d[3].download_button(f"Ledger {sid} (JSON)", json.dumps(rows, default=str), f"{sid}-ledger.json",
                                 "application/json", key=f"dl_ledger_{sid}")
    for rid in pick_r:
        trades = da.backtest_trades(p, rid)
        if trades.height:
            d[3].download_button(f"Trades {rid[:8]} (CSV)", trades.write_csv(), f"{rid}-trades.csv", "text/csv",
                                 key=f"dl_trades_{rid}")
