"""Models: registry versions and aliases, tracked (walk-forward) scores vs the baseline, drift, importance."""

from __future__ import annotations

import json

import plotly.express as px
import polars as pl
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

BASELINE = "logistic"  # every training run scores each model kind against it (docs/models.md)


def _scores(runs: pl.DataFrame) -> pl.DataFrame:
    """Long form of the runs' ``metric.<kind>.<measure>`` columns: run, run_id, started, kind, measure, value."""
    cols = [c for c in runs.columns if c.startswith("metric.") and c.count(".") >= 2]
    if not cols:
        return pl.DataFrame()
    long = runs.select("run", "run_id", "started", *cols).unpivot(index=["run", "run_id", "started"],
                                                                  variable_name="col")
    return (long.filter(pl.col("value").is_not_null())
            .with_columns(pl.col("col").str.strip_prefix("metric.").str.splitn(".", 2).struct.rename_fields(
                ["kind", "measure"]).alias("km"))
            .unnest("km").drop("col")
            .filter(pl.col("kind") != "wf"))  # wf.* repeats the chosen kind's scores (the "chosen" column)


def _notes(summary: object) -> list[str]:
    """The promotion rule's notes of a training run ("xgboost auc 0.49 does not beat the logistic
    baseline ..."), from its stored JSON summary; none when it has no readable one."""
    try:
        notes = json.loads(summary).get("notes") if isinstance(summary, str) else None
    except (ValueError, AttributeError):
        return []
    return [str(n) for n in notes[:20]] if isinstance(notes, list) else []


with ui.guard("tracked runs"):
    st.subheader("Walk-forward scores vs baseline")
    runs = da.mlflow_runs(p)
    scores = _scores(runs) if runs.height else pl.DataFrame()
    if scores.height == 0:
        ui.empty("No tracked training run yet. " + NO_MODEL)
    else:
        measures = sorted(set(scores["measure"].to_list()))
        default = next((measures.index(m) for m in ("balanced_accuracy", "auc", "accuracy") if m in measures), 0)
        measure = st.selectbox("Metric", measures, index=default, key="mdl_metric")
        view = scores.filter(pl.col("measure") == measure).sort("started", "kind")
        kinds = sorted(set(view["kind"].to_list()), key=lambda k: (k != BASELINE, k))
        named = {k: f"{k} (baseline)" if k == BASELINE else k for k in kinds}
        fig = px.bar(x=view["run"].to_list(), y=view["value"].to_list(),
                     color=[named[k] for k in view["kind"].to_list()], barmode="group",
                     category_orders={"color": [named[k] for k in kinds]},
                     labels={"x": "training run", "y": measure, "color": "model kind"})
        ui.plot(ui.chart_layout(fig, height=340), "mdl_scores")
        table = (view.pivot(on="kind", index=["run", "run_id", "started"], values="value", aggregate_function="first")
                 .sort("started", descending=True))
        table = table.select("run", "run_id", "started", *[k for k in kinds if k in table.columns])
        if "tag.chosen_kind" in runs.columns:
            table = table.join(runs.select("run_id", pl.col("tag.chosen_kind").alias("chosen")), on="run_id",
                               how="left")
        table = table.with_columns(pl.col("run_id").str.slice(0, 8))
        st.caption(f"{measure} of every model kind per training run, out of sample (walk-forward); "
                   f"`{BASELINE}` is the baseline a model must beat.")
        st.dataframe(table.rename({k: named[k] for k in kinds if k in table.columns}), hide_index=True,
                     width="stretch", height=ui.table_height(table.height, 300))
        with st.expander("Every tracked metric and tag"):
            st.dataframe(runs, hide_index=True, width="stretch", height=ui.table_height(runs.height, 300))

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
        fig.update_xaxes(dtick=1)  # folds are whole numbers
        ui.plot(ui.chart_layout(fig, height=320), "mdl_folds")
        st.caption(f"training run `{newest['train_id']}` of {newest['model_name']}: chose **{newest['chosen_kind']}** "
                   f"on {newest['score_metric']}")
        for note in _notes(newest.get("summary")):
            st.markdown(f"- {note}")
        shown = [c for c in ("train_id", "created_at", "model_name", "version", "chosen_kind", "score_metric",
                             "git_commit") if c in runs.columns]
        table = runs.sort("created_at", descending=True).select(shown)
        if "git_commit" in shown:
            table = table.with_columns(pl.col("git_commit").str.slice(0, 10))
        st.dataframe(table, hide_index=True, width="stretch", height=ui.table_height(table.height, 240),
                     column_config={"created_at": st.column_config.DatetimeColumn("created", format="YYYY-MM-DD HH:mm")})

with ui.guard("drift"):
    st.subheader("Drift over time")
    drift = da.ml_results(p).get("drift")
    if drift is None or drift.height == 0:
        if models:  # a champion exists: say when its first check comes, not that there is no model
            ui.empty("No drift check stored yet — Dagster's `model_drift_schedule` checks the champion nightly "
                     "(feature PSI/KS, live accuracy); `trading models drift` checks it now.")
        else:
            ui.empty("No drift check stored yet — drift checks (feature PSI/KS, live accuracy) run on a schedule once a "
                     "champion exists. " + NO_MODEL)
    else:
        order = {"ok": 0, "warn": 1, "fail": 2}
        fig = px.scatter(x=drift["measured_at"].to_list(), y=[order.get(s, 0) for s in drift["status"].to_list()],
                         color=drift["model_name"].to_list(), labels={"x": "measured", "y": "status (0 ok, 1 warn, 2 fail)",
                                                                       "color": "model"})
        ui.plot(ui.chart_layout(fig, height=280), "mdl_drift")
        st.dataframe(drift, hide_index=True, width="stretch", height=ui.table_height(drift.height, 240))

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
