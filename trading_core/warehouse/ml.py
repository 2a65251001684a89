"""The model lifecycle's tables in schema ``ml`` (DDL: migrations/0030_ml.sql).

Plain dicts in, polars frames out, so the warehouse does not depend on ``trading_core.ml``. Each
writer is one transaction; keys are the natural ones (dataset hash, train id, decision id, check
id) and inserts are ``INSERT OR IGNORE``, so a retried Dagster step never duplicates a row.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import duckdb
import polars as pl

from ..symbols import check_symbol, check_venue
from .connection import transaction

__all__ = [
    "latest_drift_checks", "read_decisions", "read_drift_metrics", "read_fold_scores", "read_training_runs",
    "write_dataset", "write_decision", "write_drift_check", "write_training_run",
]


def _json(v: Any) -> str:
    return json.dumps(v, default=str, sort_keys=True)


def _ms(v: int) -> datetime:
    return datetime.fromtimestamp(int(v) / 1000, UTC)


def write_dataset(con: duckdb.DuckDBPyConnection, d: dict[str, Any]) -> None:
    """One dataset (``Dataset.describe()``): recorded once per content hash."""
    check_venue(d["venue"])
    check_symbol(d["symbol"])
    with transaction(con):
        con.execute(
            "INSERT OR IGNORE INTO ml.datasets VALUES ($h, $venue, $symbol, $tf, $start, $end, $rows, $fv, $label, "
            "$pos, now())",
            {"h": d["content_hash"], "venue": d["venue"], "symbol": d["symbol"], "tf": d["timeframe"],
             "start": d["start"], "end": d["end"], "rows": d["rows"], "fv": d["feature_version"],
             "label": _json(d["label"]), "pos": d["positive_rate"]})


def write_training_run(con: duckdb.DuckDBPyConnection, run: dict[str, Any], folds: list[dict[str, Any]]) -> None:
    """A training run and its per-fold scores (``folds``: dicts with ``kind`` + the fold scores)."""
    with transaction(con):
        con.execute(
            "INSERT OR IGNORE INTO ml.training_runs VALUES ($id, $at, $ds, $name, $run, $ver, $kind, $metric, $git, "
            "$dag, $summary, now())",
            {"id": run["train_id"], "at": run["created_at"], "ds": run["dataset_hash"], "name": run["model_name"],
             "run": run.get("mlflow_run_id"), "ver": run.get("version"), "kind": run["chosen_kind"],
             "metric": run["score_metric"], "git": run.get("git_commit"), "dag": run.get("dagster_run_id"),
             "summary": _json(run["summary"])})
        for f in folds:
            con.execute(
                "INSERT OR IGNORE INTO ml.fold_scores VALUES ($id, $kind, $fold, $tr, $te, $a, $b, $acc, $bacc, $ll, "
                "$auc, now())",
                {"id": run["train_id"], "kind": f["kind"], "fold": f["fold"], "tr": f["train_rows"],
                 "te": f["test_rows"], "a": _ms(f["test_start"]), "b": _ms(f["test_end"]), "acc": f["accuracy"],
                 "bacc": _nan_none(f["balanced_accuracy"]), "ll": f["log_loss"], "auc": _nan_none(f["auc"])})


def _nan_none(x: float | None) -> float | None:
    return None if x is None or x != x else float(x)


def write_decision(con: duckdb.DuckDBPyConnection, d: dict[str, Any]) -> None:
    """One promotion decision (promote | refuse | rollback) with its reasons and scores."""
    with transaction(con):
        con.execute(
            "INSERT OR IGNORE INTO ml.promotion_decisions VALUES ($id, $at, $name, $ver, $action, $ok, $prev, $champ, "
            "$reasons, $scores, now())",
            {"id": d["decision_id"], "at": d["decided_at"], "name": d["model_name"], "ver": d["version"],
             "action": d["action"], "ok": d["promoted"], "prev": d.get("previous_champion"),
             "champ": d.get("champion"), "reasons": _json(d["reasons"]), "scores": _json(d.get("scores", {}))})


def write_drift_check(con: duckdb.DuckDBPyConnection, check: dict[str, Any], metrics: list[dict[str, Any]]) -> None:
    """A drift check and its metric rows (``kind, item, psi, ks_stat, ks_pvalue, value, status``)."""
    with transaction(con):
        con.execute(
            "INSERT OR IGNORE INTO ml.drift_checks VALUES ($id, $at, $name, $ver, $a, $b, $st, $fs, $ps, $pf, "
            "$summary, now())",
            {"id": check["check_id"], "at": check["measured_at"], "name": check["model_name"],
             "ver": check["version"], "a": check["window_start"], "b": check["window_end"], "st": check["status"],
             "fs": check["feature_status"], "ps": check["prediction_status"], "pf": check["performance_status"],
             "summary": _json(check["summary"])})
        for m in metrics:
            con.execute(
                "INSERT OR IGNORE INTO ml.drift_metrics VALUES ($id, $kind, $item, $psi, $ks, $p, $v, $st, now())",
                {"id": check["check_id"], "kind": m["kind"], "item": m["item"], "psi": _nan_none(m.get("psi")),
                 "ks": _nan_none(m.get("ks_stat")), "p": _nan_none(m.get("ks_pvalue")),
                 "v": _nan_none(m.get("value")), "st": m["status"]})


def read_training_runs(con: duckdb.DuckDBPyConnection, model_name: str | None = None) -> pl.DataFrame:
    return con.sql("SELECT * FROM ml.training_runs WHERE ($n IS NULL OR model_name = $n) ORDER BY created_at",
                   params={"n": model_name}).pl()


def read_fold_scores(con: duckdb.DuckDBPyConnection, train_id: str) -> pl.DataFrame:
    return con.sql("SELECT * FROM ml.fold_scores WHERE train_id = $id ORDER BY kind, fold", params={"id": train_id}).pl()


def read_decisions(con: duckdb.DuckDBPyConnection, model_name: str | None = None) -> pl.DataFrame:
    return con.sql("SELECT * FROM ml.promotion_decisions WHERE ($n IS NULL OR model_name = $n) "
                   "ORDER BY decided_at, decision_id", params={"n": model_name}).pl()


def read_drift_metrics(con: duckdb.DuckDBPyConnection, check_id: str) -> pl.DataFrame:
    return con.sql("SELECT * FROM ml.drift_metrics WHERE check_id = $id ORDER BY kind, item",
                   params={"id": check_id}).pl()


def latest_drift_checks(con: duckdb.DuckDBPyConnection, model_name: str, limit: int = 20) -> pl.DataFrame:
    return con.sql("SELECT * FROM ml.drift_checks WHERE model_name = $n ORDER BY measured_at DESC, check_id DESC "
                   "LIMIT $k", params={"n": model_name, "k": int(limit)}).pl()
