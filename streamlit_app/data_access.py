"""Cached, read-only access to what the app shows; the app's only door to storage.

Where each thing is read from, and why:
- market tables: the serving snapshot ``<serving_dir>/market_data.duckdb`` (swapped in atomically
  by Dagster), so the app never opens the file ingestion writes;
- tables the snapshot does not (yet) carry (features, regimes, backtests): the warehouse, opened
  read-only for one query with the lock retry and a short deadline, never held across a render;
- paper sessions: their files (``SessionStore``) and the ledger through ``PaperLedger``'s short,
  lock-retried read-only opens (the paper job lets readers in between bar commits);
- models: the MLflow client on ``<data_dir>/mlflow/mlflow.db``.

Every cached function takes the paths it reads as arguments, so the cache never serves one data
directory's results for another (tests and ``TRADING_DATA_DIR`` changes). TTLs are short: the
app is a monitor.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import polars as pl
import streamlit as st

from trading_core.config import load_config
from trading_core.ops.pipeline_health import PipelineHealth, health_path, read_pipeline_health
from trading_core.paper import reports
from trading_core.paper.alerts import AlertSink
from trading_core.paper.control import SessionStore
from trading_core.warehouse import monitoring
from trading_core.warehouse.bars import read_bars, series_ranges
from trading_core.warehouse.connection import connect
from trading_core.warehouse.paper import PaperLedger

T = TypeVar("T")

SNAPSHOT_FILE = "market_data.duckdb"  # what pipelines/defs/serving publishes
READ_DEADLINE_S = 5.0  # a reader gives up quickly and says so; it never makes a writer wait long


@dataclass(frozen=True)
class Paths:
    """Where this app instance reads from (resolved from ``TRADING_CONFIG`` and the env overrides)."""

    data_dir: str
    warehouse: str
    snapshot: str
    paper_root: str
    ledger: str
    mlflow_db: str
    stale_bars: int

    @property
    def store(self) -> SessionStore:
        return SessionStore(self.paper_root)

    @property
    def paper_ledger(self) -> PaperLedger:
        return PaperLedger(self.ledger, deadline_s=READ_DEADLINE_S)


@st.cache_data(ttl="60s", max_entries=8, show_spinner=False)
def _paths(config_file: str | None, _env: tuple[str | None, ...]) -> Paths:
    cfg = load_config(config_file)
    data = Path(cfg.data_dir)
    return Paths(data_dir=str(data), warehouse=str(cfg.warehouse.path),
                 snapshot=str(Path(cfg.warehouse.serving_dir) / SNAPSHOT_FILE), paper_root=str(data / "paper"),
                 ledger=str(data / "paper.duckdb"), mlflow_db=str(data / "mlflow" / "mlflow.db"),
                 stale_bars=int(cfg.market_data.validation.stale_bars))


def paths() -> Paths:
    """The configured locations; raises ``ConfigError`` (shown as a message) for a bad config."""
    env = tuple(os.environ.get(k) for k in ("TRADING_DATA_DIR", "TRADING_WAREHOUSE", "TRADING_CONFIG"))
    return _paths(os.environ.get("TRADING_CONFIG"), env)


# ---- the warehouse side: snapshot first, the live file read-only as a fallback -------------------
def _read(p: Paths, tables: tuple[str, ...], fn: Callable[[Any], T]) -> tuple[T | None, str]:
    """``fn(con)`` on the first source holding ``tables`` (snapshot, then warehouse), with the
    source's name; ``(None, "")`` when neither exists or holds them yet."""
    for name, path in (("serving snapshot", p.snapshot), ("warehouse", p.warehouse)):
        if not Path(path).is_file():
            continue
        with connect(path, read_only=True, deadline_s=READ_DEADLINE_S) as con:
            if set(tables) <= monitoring.tables_present(con):
                return fn(con), name
    return None, ""


@st.cache_data(ttl="30s", max_entries=16, show_spinner=False)
def series(p: Paths) -> tuple[list[dict[str, Any]], str]:
    """Every stored series with its first/last bar and bar count (data freshness), and the source."""
    rows, src = _read(p, ("market.ingest_batches",), series_ranges)
    return [vars(r) for r in rows or []], src


@st.cache_data(ttl="30s", max_entries=8, show_spinner=False)
def overview_tables(p: Paths) -> dict[str, Any]:
    """What the Overview shows from the market tables, read through ONE connection: data
    freshness per series, the latest ingest batches and the quality findings per rule. One open
    instead of three keeps the first paint short, and when only the live warehouse exists (no
    snapshot published yet, Dagster writing) the page waits on its lock once, not three times."""
    def read(con: Any) -> dict[str, Any]:
        return {"series": [vars(r) for r in series_ranges(con)], "batches": monitoring.ingest_batches(con, 200),
                "counts": monitoring.quality_issue_counts(con)}

    out, src = _read(p, ("market.ingest_batches", "market.quality_issues"), read)
    return {**(out or {"series": [], "batches": pl.DataFrame(), "counts": pl.DataFrame()}), "source": src}


@st.cache_data(ttl="30s", max_entries=64, show_spinner=False)
def bars(p: Paths, venue: str, symbol: str, timeframe: str, start: datetime | None = None,
         end: datetime | None = None) -> pl.DataFrame:
    out, _ = _read(p, ("market.bars",), lambda con: read_bars(con, venue, symbol, timeframe, start, end))
    return out if out is not None else pl.DataFrame()


# short TTLs: a series whose features are still being computed shows them soon after they land
@st.cache_data(ttl="15s", max_entries=64, show_spinner=False)
def features(p: Paths, venue: str, symbol: str, timeframe: str, start: datetime | None = None,
             end: datetime | None = None) -> pl.DataFrame:
    from trading_core.warehouse.features import read_features  # lazy: its module pulls in numba (~1 s)

    out, _ = _read(p, ("features.indicators",), lambda con: read_features(con, venue, symbol, timeframe, start, end))
    return out if out is not None else pl.DataFrame()


@st.cache_data(ttl="15s", max_entries=64, show_spinner=False)
def regimes(p: Paths, venue: str, symbol: str, timeframe: str, start: datetime | None = None,
            end: datetime | None = None) -> pl.DataFrame:
    from trading_core.warehouse.features import read_regimes

    out, _ = _read(p, ("features.regimes",), lambda con: read_regimes(con, venue, symbol, timeframe, start, end))
    return out if out is not None else pl.DataFrame()


def _market_table(p: Paths, table: str, fn: Callable[[Any], pl.DataFrame]) -> pl.DataFrame:
    out, _ = _read(p, (table,), fn)
    return out if out is not None else pl.DataFrame()


@st.cache_data(ttl="30s", max_entries=8, show_spinner=False)
def quality_counts(p: Paths) -> pl.DataFrame:
    return _market_table(p, "market.quality_issues", monitoring.quality_issue_counts)


@st.cache_data(ttl="30s", max_entries=8, show_spinner=False)
def quality_issues(p: Paths, limit: int = 500) -> pl.DataFrame:
    return _market_table(p, "market.quality_issues", lambda con: monitoring.quality_issues(con, limit))


@st.cache_data(ttl="30s", max_entries=8, show_spinner=False)
def quarantine(p: Paths, limit: int = 500) -> pl.DataFrame:
    return _market_table(p, "market.quarantine", lambda con: monitoring.quarantine_rows(con, limit))


@st.cache_data(ttl="30s", max_entries=8, show_spinner=False)
def ingest_batches(p: Paths, limit: int = 200) -> pl.DataFrame:
    return _market_table(p, "market.ingest_batches", lambda con: monitoring.ingest_batches(con, limit))


@st.cache_data(ttl="30s", max_entries=8, show_spinner=False)
def backtest_runs(p: Paths, limit: int = 500) -> pl.DataFrame:
    return _market_table(p, "backtest.runs", lambda con: monitoring.backtest_runs(con, limit))


@st.cache_data(ttl="300s", max_entries=64, show_spinner=False)
def backtest_equity(p: Paths, run_id: str) -> pl.DataFrame:
    return _market_table(p, "backtest.equity", lambda con: monitoring.backtest_equity(con, run_id))


@st.cache_data(ttl="300s", max_entries=64, show_spinner=False)
def backtest_trades(p: Paths, run_id: str) -> pl.DataFrame:
    return _market_table(p, "backtest.trades", lambda con: monitoring.backtest_trades(con, run_id))


# ---- paper sessions: files and the ledger's short read-only opens ---------------------------------
@st.cache_data(ttl="2s", max_entries=8, show_spinner=False)
def sessions(p: Paths) -> list[dict[str, Any]]:
    """Every session's status document (``trading paper status``'s), oldest first."""
    store = p.store
    return [reports.status_doc(store, p.paper_ledger, sid) for sid in store.session_ids()]


@st.cache_data(ttl="2s", max_entries=32, show_spinner=False)
def session_status(p: Paths, sid: str) -> dict[str, Any]:
    return reports.status_doc(p.store, p.paper_ledger, sid)


@st.cache_data(ttl="3s", max_entries=32, show_spinner=False)
def session_events(p: Paths, sid: str, limit: int | None = None) -> pl.DataFrame:
    return reports.session_events(p.paper_ledger, sid, None, limit)


@st.cache_data(ttl="3s", max_entries=32, show_spinner=False)
def session_equity(p: Paths, sid: str) -> pl.DataFrame:
    """The session's equity and drawdown per bar with buy-and-hold of its first symbol."""
    config = p.store.load(sid)
    r = config.request
    curve = reports.equity_curve(p.paper_ledger, sid)
    if curve.height == 0:
        return curve
    closes = bars(p, r.venue, r.universe[0], r.timeframe, curve["ts"][0], None)
    return reports.equity_curve(p.paper_ledger, sid, closes.select("ts", "close") if closes.height else None)


@st.cache_data(ttl="5s", max_entries=32, show_spinner=False)
def session_metrics(p: Paths, sid: str) -> dict[str, Any]:
    return reports.session_metrics(p.store, p.paper_ledger, sid)


@st.cache_data(ttl="5s", max_entries=4, show_spinner=False)
def alerts(p: Paths) -> list[dict[str, Any]]:
    """Delivered alerts (the paper alert log), newest first."""
    return list(reversed(AlertSink(Path(p.paper_root) / "alerts.jsonl").delivered()))


# ---- pipeline health (the pipeline_health_sensor's document; the app never talks to Dagster) -------
@st.cache_data(ttl="10s", max_entries=4, show_spinner=False)
def pipeline_health(p: Paths) -> PipelineHealth | None:
    """The latest runs and asset-check results as Dagster last reported them; None before its
    first tick. A file the sensor owns, replaced atomically every ~30 s: fresher than the serving
    snapshot (published only after ingest settles) and never a lock on the warehouse."""
    return read_pipeline_health(health_path(p.data_dir))


# ---- models (MLflow registry) --------------------------------------------------------------------
@st.cache_resource(max_entries=4, show_spinner=False)
def mlflow_client(db: str) -> Any:
    """One client per registry file (never mutated); only for a registry that exists."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{db}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


@st.cache_data(ttl="60s", max_entries=4, show_spinner=False)
def registered_models(p: Paths) -> list[dict[str, Any]]:
    """Registered model versions with their aliases, newest first; [] without a registry."""
    if not Path(p.mlflow_db).is_file():
        return []
    client = mlflow_client(p.mlflow_db)
    rows = []
    for rm in client.search_registered_models():
        aliases: dict[str, list[str]] = {}
        for alias, version in (rm.aliases or {}).items():
            aliases.setdefault(str(version), []).append(alias)
        for mv in client.search_model_versions(f"name='{_quote(rm.name)}'"):
            rows.append({"model": rm.name, "version": int(mv.version), "aliases": ", ".join(aliases.get(str(mv.version), [])),
                         "status": mv.status, "run_id": mv.run_id,
                         "created": datetime.fromtimestamp(mv.creation_timestamp / 1000) if mv.creation_timestamp else None,
                         "description": mv.description or ""})
    rows.sort(key=lambda r: (r["model"], -r["version"]))
    return rows


def _quote(name: str) -> str:
    """A registered name inside an MLflow filter string (the registry's own names; quotes doubled)."""
    return name.replace("'", "''")


@st.cache_data(ttl="600s", max_entries=64, show_spinner=False)
def shap_summary(p: Paths, run_id: str) -> dict[str, Any] | None:
    """Mean |SHAP| per feature that the training run logged; None when it logged none. A run's
    artifacts never change, so this caches long."""
    from trading_core.ml.explain_read import read_shap_summary

    if not Path(p.mlflow_db).is_file():
        return None
    return read_shap_summary(mlflow_client(p.mlflow_db), run_id)


@st.cache_data(ttl="60s", max_entries=4, show_spinner=False)
def mlflow_runs(p: Paths, limit: int = 500) -> pl.DataFrame:
    """Tracked runs of every experiment (name, model family, metrics), newest first; empty without a registry."""
    if not Path(p.mlflow_db).is_file():
        return pl.DataFrame()
    client = mlflow_client(p.mlflow_db)
    exps = {e.experiment_id: e.name for e in client.search_experiments()}
    if not exps:
        return pl.DataFrame()
    rows = []
    for r in client.search_runs(list(exps), max_results=max(1, min(int(limit), 5000)),
                                order_by=["attributes.start_time DESC"]):
        rows.append({"experiment": exps.get(r.info.experiment_id, ""), "run": r.info.run_name or r.info.run_id[:8],
                     "run_id": r.info.run_id, "status": r.info.status,
                     "started": datetime.fromtimestamp(r.info.start_time / 1000) if r.info.start_time else None,
                     **{f"metric.{k}": float(v) for k, v in r.data.metrics.items()},
                     **{f"tag.{k}": v for k, v in r.data.tags.items() if not k.startswith("mlflow.")}})
    return pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()


# ---- stress and stability (stress schema, written by the stress jobs) -----------------------------
@st.cache_data(ttl="60s", max_entries=8, show_spinner=False)
def stress_latest(p: Paths, part: str) -> tuple[dict[str, Any] | None, dict[str, pl.DataFrame]]:
    """The newest stress run holding ``part`` (crisis | montecarlo | stability) and its result tables."""
    from trading_core.warehouse import stress as ws

    def read(con: Any) -> tuple[dict[str, Any] | None, dict[str, pl.DataFrame]]:
        run = ws.latest_run_with(con, part)
        if run is None:
            return None, {}
        rid = run["run_id"]
        return run, {"survival": ws.read_survival(con, rid), "montecarlo": ws.read_montecarlo(con, rid),
                     "stability": ws.read_stability(con, rid), "history": ws.read_optimisation_history(con, rid)}

    out, _ = _read(p, ("stress.runs", "stress.survival", "stress.montecarlo", "stress.stability",
                       "stress.optimisation_history"), read)
    return out if out is not None else (None, {})


def montecarlo_execution(mc: pl.DataFrame) -> pl.DataFrame:
    """One row per (crisis, strategy, drawn execution assumption): its spread over the paths and its
    rank correlation with the paths' return and drawdown (``detail.execution`` of stress.montecarlo)."""
    rows = []
    for r in mc.iter_rows(named=True):
        detail = r.get("detail")
        detail = json.loads(detail) if isinstance(detail, str) else (detail or {})
        for name, e in (detail.get("execution") or {}).items():
            rows.append({"crisis": r["crisis"], "strategy": r["strategy"], "risk": r["risk"], "assumption": name,
                         "p5": e.get("p5"), "median": e.get("p50"), "p95": e.get("p95"),
                         "rank corr with return": e.get("corr_total_return"),
                         "rank corr with max drawdown": e.get("corr_max_drawdown")})
    return pl.DataFrame(rows, infer_schema_length=None)


# ---- model lifecycle (ml schema, written by the training and drift jobs) --------------------------
@st.cache_data(ttl="60s", max_entries=8, show_spinner=False)
def ml_results(p: Paths) -> dict[str, pl.DataFrame]:
    """Training runs, the newest run's walk-forward fold scores and recent drift checks per model."""
    from trading_core.warehouse import ml as wm

    def read(con: Any) -> dict[str, pl.DataFrame]:
        runs = wm.read_training_runs(con)
        if runs.height == 0:
            return {"runs": runs}
        newest = runs.row(runs.height - 1, named=True)
        drift = [wm.latest_drift_checks(con, name, 50) for name in sorted(set(runs["model_name"].to_list()))]
        drift = [d for d in drift if d.height]
        return {"runs": runs, "folds": wm.read_fold_scores(con, newest["train_id"]),
                "drift": pl.concat(drift, how="diagonal_relaxed") if drift else pl.DataFrame()}

    out, _ = _read(p, ("ml.training_runs", "ml.fold_scores", "ml.drift_checks"), read)
    return out or {}
