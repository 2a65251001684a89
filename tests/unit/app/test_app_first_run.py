"""What a new user meets right after `make run`, found by looking at the app in a browser: every
command an empty state names is one the CLI accepts, Dagster's implicit asset-job runs are named by
their assets, the Models page with a champion never says there is no model and compares every
model kind with the baseline, and short tables carry no block of empty rows."""

from __future__ import annotations

import ast
import contextlib
import io
import re
import shlex
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
import streamlit as st
from app_support import HEALTH_DEFS, Seeded
from streamlit.testing.v1 import AppTest

from streamlit_app import ui
from trading_core.cli import build_parser

APP_DIR = Path(__file__).resolve().parents[3] / "streamlit_app"
APP = str(APP_DIR / "app.py")


def _flat(node: ast.AST) -> str | None:
    """A string expression as the user reads it: f-string fields and concatenated names become X."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "X" for v in node.values)  # type: ignore[misc]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _flat(node.left), _flat(node.right)
        if left is None and right is None:
            return None
        return (left if left is not None else "X") + (right if right is not None else "X")
    return None


def _named_commands() -> set[tuple[str, str]]:
    """Every `trading ...` command in backticks in a user-facing string of the app (docstrings aside)."""
    found: set[tuple[str, str]] = set()
    for path in sorted(APP_DIR.rglob("*.py")):
        tree = ast.parse(path.read_text())
        docstrings = {id(n.body[0].value) for n in ast.walk(tree)  # type: ignore[attr-defined]
                      if isinstance(n, ast.Module | ast.FunctionDef | ast.ClassDef) and n.body
                      and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if id(node) in docstrings or not isinstance(node, ast.Constant | ast.JoinedStr | ast.BinOp):
                continue
            text = _flat(node)
            if text:
                found.update((path.name, c) for c in re.findall(r"`(trading [^`]+)`", text))
    return found


def test_every_command_the_app_names_is_one_the_cli_accepts() -> None:
    commands = _named_commands()
    assert len(commands) >= 10 and any(c.startswith("trading stress") for _, c in commands)
    parser = build_parser()
    refused = []
    for where, command in sorted(commands):
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                parser.parse_args(shlex.split(command)[1:])
        except SystemExit:
            refused.append((where, command, err.getvalue().strip().splitlines()[-1:]))
    assert not refused, refused


def test_overview_names_runs_of_dagsters_implicit_asset_job_by_their_assets(empty_dir: Path) -> None:
    """Automation conditions and a materialise click run under ``__ASSET_JOB``: the row says which
    assets ran, and a column no run fills (partition, session) is left out."""
    from pipelines.defs.reports.pipeline_health import collect_checks, collect_runs
    from trading_core.ops.pipeline_health import record_pipeline_health

    with dg.instance_for_test() as inst:
        implicit = HEALTH_DEFS.resolve_implicit_global_asset_job_def()
        assert implicit.name == "__ASSET_JOB"
        assert implicit.execute_in_process(instance=inst, asset_selection=[dg.AssetKey("prices")]).success
        now = datetime.now(UTC)
        runs = collect_runs(inst, ["prices_job"], now)
        checks = collect_checks(inst, HEALTH_DEFS.resolve_asset_graph().asset_check_keys)
    assert [r["assets"] for r in runs] == [["prices"]]
    record_pipeline_health(empty_dir, None, runs, checks, now)
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    assert not at.exception and not at.error
    table = next(d.value for d in at.dataframe if "job" in d.value.columns and "duration (s)" in d.value.columns)
    assert list(table["job"]) == ["assets: prices"]
    assert "partition" not in table.columns and "session" not in table.columns
    assert not any("__ASSET_JOB" in d.value.astype(str).to_csv() for d in at.dataframe)


def test_a_run_label_names_the_job_or_the_assets_of_the_implicit_job() -> None:
    from trading_core.ops.pipeline_health import PipelineHealth, RunSummary

    t = datetime(2026, 1, 1, tzinfo=UTC)
    runs = [RunSummary(run_id="a", job="__ASSET_JOB", status="SUCCESS", started_at=t, assets=["crypto_features"]),
            RunSummary(run_id="b", job="__ASSET_JOB", status="FAILURE", started_at=t, assets=["equities_features"]),
            RunSummary(run_id="c", job="__ASSET_JOB", status="SUCCESS", started_at=t,
                       assets=["a1", "a2", "a3", "a4", "a5"]),
            RunSummary(run_id="d", job="__ASSET_JOB", status="SUCCESS", started_at=t),
            RunSummary(run_id="e", job="crypto_ingest_job", status="SUCCESS", started_at=t, assets=["crypto_bars"])]
    assert [r.label for r in runs] == ["assets: crypto_features", "assets: equities_features",
                                       "assets: a1, a2, a3 +2 more", "assets (Dagster's implicit job)",
                                       "crypto_ingest_job"]
    latest = PipelineHealth(as_of=t, runs=runs).latest_per_job()
    assert len(latest) == 5  # one row per asset selection, not one "__ASSET_JOB" row for all
    # a document written before runs carried their assets still reads
    old = RunSummary.model_validate({"run_id": "x", "job": "__ASSET_JOB", "status": "SUCCESS"})
    assert old.assets == [] and old.label == "assets (Dagster's implicit job)"


def test_models_page_with_a_champion_compares_kinds_with_the_baseline_and_never_says_no_model(
        models_seeded: tuple[Seeded, dict], monkeypatch: pytest.MonkeyPatch) -> None:
    s, reg = models_seeded
    monkeypatch.setenv("TRADING_DATA_DIR", str(s.root))
    st.cache_data.clear()
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    at.switch_page("app_pages/models.py").run()
    assert not at.exception and not at.error
    drift = next(i.value for i in at.info if i.value.startswith("No drift check stored yet"))
    assert "No model yet" not in drift and "`trading models drift`" in drift
    assert at.selectbox(key="mdl_metric").value == "balanced_accuracy"  # a score, not the first column
    scores = next(d.value for d in at.dataframe if "logistic (baseline)" in d.value.columns)
    assert {"run", "run_id", "started", "chosen"} <= set(scores.columns)
    assert not any(c.startswith("metric.") for c in scores.columns)  # the 80-column dump is in an expander
    assert 0 < float(scores["logistic (baseline)"].iloc[0]) < 1
    chart = next(c for c in at.get("plotly_chart") if "logistic (baseline)" in c.proto.spec)
    assert '"barmode":"group"' in chart.proto.spec.replace(" ", "")
    at.selectbox(key="mdl_metric").set_value("auc").run()
    assert not at.exception and not at.error


def test_a_short_table_is_as_tall_as_its_rows_and_a_long_one_scrolls() -> None:
    assert ui.table_height(1, 300) == "auto"
    assert ui.table_height(7, 300) == "auto"
    assert ui.table_height(8, 300) == 300
    assert ui.table_height(500, 240) == 240


def test_a_column_that_holds_nothing_is_left_out_unless_kept() -> None:
    import polars as pl

    df = pl.DataFrame({"job": ["a", "b"], "partition": [None, None], "ended": [None, None], "run": ["1", None]})
    assert ui.drop_empty_columns(df, keep=("ended",)).columns == ["job", "ended", "run"]
    assert ui.drop_empty_columns(pl.DataFrame()).height == 0


def test_a_session_whose_dagster_run_failed_says_why_instead_of_asking_whether_dagster_runs(
        seeded: Seeded) -> None:
    """The run the sensor launched for a start failed (here: a real failing Dagster run tagged with
    the pending session): the live panel shows the failing step and message, not "is Dagster running?"."""
    from pipelines.defs.reports.pipeline_health import collect_checks, collect_runs
    from trading_core.ops.pipeline_health import record_pipeline_health

    @dg.op
    def run_paper_session() -> None:
        raise ValueError("1 validation error for SessionConfig: request.venues extra inputs are not permitted")

    @dg.job(name="paper_trading_job", tags={"trading/session_id": seeded.pending})
    def paper_trading_job() -> None:
        run_paper_session()

    with dg.instance_for_test() as inst:
        assert not paper_trading_job.execute_in_process(instance=inst, raise_on_error=False).success
        now = datetime.now(UTC)
        runs, checks = collect_runs(inst, ["paper_trading_job"], now), collect_checks(inst, [])
    record_pipeline_health(seeded.root, None, runs, checks, now)
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    at.switch_page("app_pages/paper_trading.py").run()
    at.selectbox(key="session_pick").set_value(seeded.pending).run()
    assert not at.exception
    (err,) = [e.value for e in at.error]
    assert "failed at step `run_paper_session`" in err and "request.venues" in err
    assert f"trading paper run {seeded.pending}" in err
    assert not any("is Dagster running?" in i.value for i in at.info)
    table = next(d.value for d in at.dataframe if "desired" in d.value.columns)
    states = dict(zip(table["session"], table["state"], strict=True))
    assert states[seeded.pending] == "⏳ pending · run failed" and "failed" not in states[seeded.completed]
    at.selectbox(key="session_pick").set_value(seeded.completed).run()  # its runs are not this one's
    assert not at.exception and not at.error


def test_compared_curves_have_distinct_colours_and_one_legend(seeded: Seeded) -> None:
    import json

    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    at.switch_page("app_pages/sessions_backtests.py").run()
    assert not at.exception and not at.error
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    eq = next(s for s in specs if "start = 100" in json.dumps(s["layout"]))
    dd = next(s for s in specs if "drawdown" in json.dumps(s["layout"]))
    colours = [t["line"]["color"] for t in eq["data"]]
    assert len(colours) == 2 and len(set(colours)) == 2  # the session and the backtest
    assert [t["line"]["color"] for t in dd["data"]] == colours  # the same item, the same colour
    assert not any(t.get("showlegend", True) for t in dd["data"])  # named once, above the equity chart


def test_before_the_first_dagster_run_the_overview_says_so_and_claims_no_clean_record(empty_dir: Path) -> None:
    from trading_core.ops.pipeline_health import record_pipeline_health

    record_pipeline_health(empty_dir, None, [], [], datetime.now(UTC))  # the sensor's first tick, at `make run`
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    assert not at.exception and not at.error
    assert any(c.value.startswith("No Dagster run yet") for c in at.caption)
    assert not any("No run failed" in s.value for s in at.success)
