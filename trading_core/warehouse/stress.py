"""Stress and stability results in the ``stress`` schema (DDL: migrations/0040_stress.sql).

``write_stress_run`` writes one run -- its lineage row and every survival, Monte Carlo, percentile,
optimisation-history and stability row -- in ONE transaction. Rows are plain dicts built by
``trading_core.stress.suite`` (the warehouse does not import the stress package); columns and
table names come from this module, every value is a bound parameter.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import duckdb
import polars as pl

from .connection import transaction

__all__ = ["latest_run", "latest_run_with", "read_montecarlo", "read_optimisation_history", "read_runs", "read_stability",
           "read_survival", "write_stress_run"]

_RUN = ("run_id", "kind", "created_at", "scope", "data_range", "config", "execution_model_hash", "seed",
        "code_version", "figures_dir", "summary")
_SURVIVAL = ("run_id", "crisis", "venue", "symbol", "timeframe", "strategy", "risk", "status", "window_start",
             "window_end", "bars", "max_drawdown", "drawdown_peak", "drawdown_trough", "drawdown_recovery",
             "time_to_recover_days", "worst_day", "worst_day_date", "breaker_trips", "final_equity", "total_return",
             "survived", "detail")
_MC = ("run_id", "crisis", "venue", "symbol", "strategy", "risk", "mode", "paths", "draws", "device", "prob_ruin",
       "ruin_drawdown", "prob_loss", "seconds", "detail")
_PCT = ("run_id", "crisis", "venue", "symbol", "strategy", "risk", "metric", "stat", "value")
_HISTORY = ("run_id", "sweep", "fold", "phase", "strategy", "params", "params_key", "period_start", "period_end",
            "metric", "value", "robustness", "chosen")
_STABILITY = ("run_id", "sweep", "strategy", "venue", "symbol", "metric", "best_params", "robust_params",
              "plateau_score", "optimum_drift", "in_sample", "out_of_sample", "overfit", "detail")
_JSON_COLS = frozenset({"data_range", "config", "summary", "detail", "params", "best_params", "robust_params"})
_TABLES = {"survival": ("stress.survival", _SURVIVAL), "montecarlo": ("stress.montecarlo", _MC),
           "percentiles": ("stress.montecarlo_percentiles", _PCT),
           "history": ("stress.optimisation_history", _HISTORY), "stability": ("stress.stability", _STABILITY)}


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, Mapping):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_clean(x) for x in v]
    if hasattr(v, "item") and not isinstance(v, str | bytes):
        return _clean(v.item())
    return v


def _value(col: str, v: Any) -> Any:
    if col in _JSON_COLS:
        return json.dumps(_clean(v), default=str, sort_keys=True, allow_nan=False)
    return _clean(v)


def _insert(con: duckdb.DuckDBPyConnection, table: str, cols: tuple[str, ...], rows: Sequence[Mapping[str, Any]],
            run_id: str) -> None:
    if not rows:
        return
    marks = ", ".join("?" for _ in cols)
    con.executemany(f"INSERT INTO {table} ({', '.join(cols)}, recorded_at) VALUES ({marks}, now())",
                    [[run_id if c == "run_id" else _value(c, r.get(c)) for c in cols] for r in rows])


def write_stress_run(con: duckdb.DuckDBPyConnection, run: Mapping[str, Any], **rows: Sequence[Mapping[str, Any]]
                     ) -> str:
    """Insert a run and its rows (``survival=``, ``montecarlo=``, ``percentiles=``, ``history=``,
    ``stability=``) atomically; return the run id."""
    unknown = set(rows) - set(_TABLES)
    if unknown:
        raise ValueError(f"unknown stress row kinds: {sorted(unknown)}")
    run_id = str(run["run_id"])
    with transaction(con):
        _insert(con, "stress.runs", _RUN, [run], run_id)
        for kind, (table, cols) in _TABLES.items():
            _insert(con, table, cols, rows.get(kind, ()), run_id)
    return run_id


def _select(con: duckdb.DuckDBPyConnection, table: str, where: dict[str, Any], order: str) -> pl.DataFrame:
    clauses = [f"{k} = ${k}" for k in where]  # keys come from this module's callers, values are bound
    sql = f"SELECT * FROM {table}" + (f" WHERE {' AND '.join(clauses)}" if clauses else "") + f" ORDER BY {order}"
    return con.sql(sql, params=where).pl()


def read_runs(con: duckdb.DuckDBPyConnection, kind: str | None = None) -> pl.DataFrame:
    """Every run (newest first), or those of one kind."""
    return _select(con, "stress.runs", {"kind": kind} if kind else {}, "created_at DESC, run_id")


def latest_run(con: duckdb.DuckDBPyConnection, kind: str, scope: str | None = None) -> dict[str, Any] | None:
    """The newest run of ``kind`` (and ``scope``), JSON columns decoded; None when there is none."""
    where = {"kind": kind} | ({"scope": scope} if scope else {})
    return _first_decoded(_select(con, "stress.runs", where, "created_at DESC, run_id"))


# which run kinds hold a part: a crisis run with Monte Carlo (the CLI's --paths, the Dagster stress
# job) holds both survival and Monte Carlo results
_KINDS_WITH = {"crisis": ("crisis", "crisis+montecarlo"), "montecarlo": ("crisis+montecarlo",),
               "stability": ("stability",)}


def latest_run_with(con: duckdb.DuckDBPyConnection, part: str) -> dict[str, Any] | None:
    """The newest run holding ``part`` (crisis | montecarlo | stability) results, JSON decoded."""
    if part not in _KINDS_WITH:
        raise ValueError(f"unknown stress part {part!r}; expected one of {sorted(_KINDS_WITH)}")
    return _first_decoded(con.sql("SELECT * FROM stress.runs WHERE list_contains($kinds, kind) "
                                  "ORDER BY created_at DESC, run_id LIMIT 1",
                                  params={"kinds": list(_KINDS_WITH[part])}).pl())


def _first_decoded(f: pl.DataFrame) -> dict[str, Any] | None:
    """The first row of ``f`` with its JSON columns decoded; None when there is none."""
    if f.height == 0:
        return None
    row = f.row(0, named=True)
    return {k: json.loads(v) if k in _JSON_COLS and isinstance(v, str) else v for k, v in row.items()}


def read_survival(con: duckdb.DuckDBPyConnection, run_id: str) -> pl.DataFrame:
    return _select(con, "stress.survival", {"run_id": run_id}, "crisis, venue, symbol, strategy, risk")


def read_montecarlo(con: duckdb.DuckDBPyConnection, run_id: str) -> pl.DataFrame:
    return _select(con, "stress.montecarlo", {"run_id": run_id}, "crisis, venue, symbol, strategy, risk")


def read_optimisation_history(con: duckdb.DuckDBPyConnection, run_id: str) -> pl.DataFrame:
    return _select(con, "stress.optimisation_history", {"run_id": run_id}, "sweep, fold, phase, params_key")


def read_stability(con: duckdb.DuckDBPyConnection, run_id: str) -> pl.DataFrame:
    return _select(con, "stress.stability", {"run_id": run_id}, "sweep")
