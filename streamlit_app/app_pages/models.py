"""Models: registry versions and aliases, tracked (walk-forward) scores vs the baseline, drift, importance."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

from streamlit_app import data_access as da
from streamlit_app import ui

st.title("Models")
p = da.paths()
NO_MODEL = "No model yet — run `trading models bootstrap` (trains the baseline, random forest, XGBoost and the " \
           "ensemble walk-forward and registers them in MLflow)."

models: list[dict] = []
with ui.guard("model registry"):
    st.subheader("Registry: versions and aliases")
    models = da.registered_models(p)
    if not models:
        ui.empty(NO_MODEL)
    else:
        champ = [m for m in models if "champion" in m["aliases"].split(", ")]
        c = st.columns(3)
        c[0].metric("Registered models", len({m["model"] for m in models}), border=True)
        c[1].metric("Versions", len(models), border=True)
        c[2].metric("Champion", f"{champ[0]['model']} v{champ[0]['version']}" if champ else "none", border=True)
        st.dataframe(models, hide_index=True, width="stretch")

with ui.guard("tracked runs"):
    st.subheader("Walk-forward scores vs baseline")
    runs = da.mlflow_runs(p)
    metric_cols = [c for c in runs.columns if c.startswith("metric.")] if runs.height else []
    if not metric_cols:
        ui.empty("No tracked training run yet. " + NO_MODEL)
    else:
        metric = st.selectbox("Metric", metric_cols, format_func=lambda c: c.removeprefix("metric."), key="mdl_metric")
        view = runs.filter(runs[metric].is_not_null()).head(50)
        fig = px.bar(x=view["run"].to_list(), y=view[metric].to_list(),
                     color=view["experiment"].to_list(), labels={"x": "run", "y": metric.removeprefix("metric."),
                                                                 "color": "experiment"})
        ui.plot(ui.chart_layout(fig, height=340), "mdl_scores")
        st.dataframe(runs, hide_index=True, width="stretch", height=300)

with ui.guard("walk-forward folds"):
    ml = da.ml_results(p)
    folds = ml.get("folds")
    st.subheader("Walk-forward folds: every model kind vs the baseline")
    if folds is None or folds.height == 0:
        ui.empty("No walk-forward training stored yet. " + NO_MODEL)
    else:
        runs = ml["runs"]
        newest = runs.row(runs.height - 1, named=True)
        metric = st.selectbox("Fold metric", [c for c in ("balanced_accuracy", "accuracy", "auc", "log_loss")
                                              if c in folds.columns], key="mdl_fold_metric")
        fig = px.line(x=folds["fold"].to_list(), y=folds[metric].to_list(), color=folds["kind"].to_list(),
                      markers=True, labels={"x": "fold", "y": metric, "color": "model kind"})
        ui.plot(ui.chart_layout(fig, height=320), "mdl_folds")
        st.caption(f"training run `{newest['train_id']}` of {newest['model_name']}: chose **{newest['chosen_kind']}** "
                   f"on {newest['score_metric']}")
        st.dataframe(runs.sort("created_at", descending=True), hide_index=True, width="stretch", height=240)

with ui.guard("drift"):
    st.subheader("Drift over time")
    drift = da.ml_results(p).get("drift")
    if drift is None or drift.height == 0:
        ui.empty("No drift check stored yet — drift checks (feature PSI/KS, live accuracy) run on a schedule once a "
                 "champion exists. " + NO_MODEL)
    else:
        order = {"ok": 0, "warn": 1, "fail": 2}
        fig = px.scatter(x=drift["measured_at"].to_list(), y=[order.get(s, 0) for s in drift["status"].to_list()],
                         color=drift["model_name"].to_list(), labels={"x": "measured", "y": "status (0 ok, 1 warn, 2 fail)",
                                                                       "color": "model"})
        ui.plot(ui.chart_layout(fig, height=280), "mdl_drift")
        st.dataframe(drift, hide_index=True, width="stretch", height=240)

with ui.guard("feature importance"):
    st.subheader("Feature importance")
    if not models:
        ui.empty(NO_MODEL)
    else:
        labels = {(m["model"], m["version"]): f"{m['model']} v{m['version']}" + (f" ({m['aliases']})" if m["aliases"] else "")
                  for m in models}
        default = next((i for i, m in enumerate(models) if "champion" in m["aliases"].split(", ")), 0)
        pick = st.selectbox("Version", list(labels), index=default, format_func=labels.get, key="mdl_shap_version")
        chosen = next(m for m in models if (m["model"], m["version"]) == pick)
        summary = da.shap_summary(p, chosen["run_id"]) if chosen["run_id"] else None
        if not summary or not summary["importance"]:
            ui.empty(f"No SHAP summary stored with {labels[pick]}'s training run — versions trained by "
                     "`trading models train` (or the Dagster model assets) log one.")
        else:
            top = summary["importance"][:25][::-1]  # highest at the top of a horizontal bar chart
            fig = px.bar(x=[v for _, v in top], y=[k for k, _ in top], orientation="h",
                         labels={"x": "mean |SHAP| (impact on P(up))", "y": "feature"})
            ui.plot(ui.chart_layout(fig, height=max(260, 22 * len(top) + 80), hovermode="closest"), "mdl_shap")
            st.caption(f"{summary['kind']} model, mean absolute SHAP value over {summary['rows']:,} training rows "
                       f"(MLflow run `{chosen['run_id'][:8]}`, artifact `shap_summary.json`).")
