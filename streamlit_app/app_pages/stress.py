"""Stress and stability: survival per historical crisis, Monte Carlo outcomes, parameter heatmaps."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

from streamlit_app import data_access as da
from streamlit_app import ui

st.title("Stress & stability")
p = da.paths()


def _run_caption(run: dict) -> None:
    st.caption(f"run `{run['run_id']}` · {run.get('scope', '')} · {run.get('created_at')} · seed {run.get('seed')}")


with ui.guard("survival per crisis"):
    st.subheader("Survival per crisis")
    run, t = da.stress_latest(p, "crisis")
    surv = t.get("survival")
    if run is None or surv is None or surv.height == 0:
        ui.empty("No stress result stored yet — `trading stress` replays the strategies through the historical "
                 "crises the stored data covers (`trading stress list` shows which), or launch `stress_job` from "
                 "Dagster; results appear here once stored.")
    else:
        _run_caption(run)
        cols = [c for c in ("crisis", "symbol", "strategy", "risk", "status", "survived", "max_drawdown",
                            "total_return", "worst_day", "breaker_trips", "time_to_recover_days") if c in surv.columns]
        st.dataframe(surv.select(cols), hide_index=True, width="stretch",
                     column_config={"survived": st.column_config.CheckboxColumn("survived")})
        if "max_drawdown" in surv.columns:
            fig = px.bar(x=surv["crisis"].to_list(), y=(surv["max_drawdown"] * 100).to_list(),
                         color=[f"{s} ({'risk' if r else 'no risk'})" for s, r in
                                zip(surv["strategy"].to_list(), surv["risk"].to_list(), strict=True)],
                         barmode="group", labels={"x": "crisis", "y": "max drawdown %", "color": "strategy"})
            ui.plot(ui.chart_layout(fig, height=340), "stress_survival")

with ui.guard("monte carlo"):
    st.subheader("Monte Carlo")
    run, t = da.stress_latest(p, "montecarlo")
    mc = t.get("montecarlo")
    if run is None or mc is None or mc.height == 0:
        ui.empty("No Monte Carlo result stored yet — `trading stress montecarlo` draws resampled paths and "
                 "reports the probability of ruin and of loss.")
    else:
        _run_caption(run)
        st.dataframe(mc.drop("run_id", "detail", strict=False), hide_index=True, width="stretch")  # run: caption
        fig = px.bar(x=mc["crisis"].to_list(), y=(mc["prob_ruin"] * 100).to_list(), color=mc["strategy"].to_list(),
                     barmode="group", labels={"x": "crisis", "y": "probability of ruin %", "color": "strategy"})
        ui.plot(ui.chart_layout(fig, height=300), "stress_mc")
        ex = da.montecarlo_execution(mc)
        if ex.height:
            st.markdown("**What the outcome is sensitive to.** Every path draws its own execution assumptions; "
                        "a rank correlation near −1 with return means the paths that drew more of it did worse. "
                        "None where the assumption was fixed.")
            st.dataframe(ex, hide_index=True, width="stretch",
                         column_config={c: st.column_config.NumberColumn(c, format="%.2f") for c in
                                        ("p5", "median", "p95", "rank corr with return",
                                         "rank corr with max drawdown")})

with ui.guard("parameter stability"):
    st.subheader("Parameter stability")
    run, t = da.stress_latest(p, "stability")
    stab, hist = t.get("stability"), t.get("history")
    if run is None or stab is None or stab.height == 0:
        ui.empty("No parameter-stability result stored yet — `trading stress stability` sweeps the strategies' "
                 "parameters walk-forward and maps the metric as a heatmap.")
    else:
        _run_caption(run)
        st.dataframe(stab, hide_index=True, width="stretch")
        if hist is not None and hist.height:
            sweeps = sorted(set(hist["sweep"].to_list()))
            sweep = st.selectbox("Sweep", sweeps, key="stress_sweep")
            h = hist.filter(hist["sweep"] == sweep)
            grid = h.pivot(on="fold", index="params_key", values="value", aggregate_function="mean")
            z = grid.drop("params_key")
            fig = px.imshow(z.to_numpy(), x=[str(c) for c in z.columns], y=grid["params_key"].to_list(),
                            aspect="auto", color_continuous_scale="RdYlGn",
                            labels={"x": "fold", "y": "parameters", "color": h["metric"][0] if h.height else ""})
            ui.plot(ui.chart_layout(fig, height=max(300, 18 * grid.height)), "stress_heatmap")
