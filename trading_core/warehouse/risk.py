"""Risk audit and circuit-breaker state in the ``risk`` schema (DDL: migrations/0004_risk.sql).

Every call is ONE transaction on the connection it is given: a batch of decisions, or a set of
breaker states together with the transitions that produced them, lands whole or not at all.
Rows go in as one registered frame (a backtest may audit thousands of orders), all values are
bound, table names come from this module only. Ids are deterministic and inserts are
``INSERT OR IGNORE``, so replaying a bar after a crash never duplicates an audit row.

This module takes plain rows (mappings or a polars frame) rather than trading_core.risk types,
so the warehouse does not depend on the risk package; ``trading_core.risk.audit`` builds them.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import duckdb
import numpy as np
import polars as pl

from .connection import insert_new_rows, transaction

__all__ = [
    "DECISION_COLUMNS", "decision_id", "write_decisions", "read_decisions", "save_breakers",
    "load_breaker_states", "read_breaker_events",
]

_TS = pl.Datetime("us", "UTC")
DECISION_COLUMNS: dict[str, Any] = {
    "decision_id": pl.Utf8, "run_id": pl.Utf8, "context": pl.Utf8, "ts": _TS, "portfolio": pl.Utf8,
    "strategy": pl.Utf8, "order_ref": pl.Int64, "symbol": pl.Utf8, "side": pl.Utf8,
    "requested_qty": pl.Float64, "approved_qty": pl.Float64, "price": pl.Float64, "decision": pl.Utf8,
    "reason": pl.Utf8, "reason_code": pl.Int16, "trading_state": pl.Utf8, "inputs": pl.Utf8,
}
_DECISIONS = ("allowed", "resized", "rejected", "halted")
_EVENT_COLUMNS: dict[str, Any] = {
    "event_id": pl.Utf8, "ts": _TS, "level": pl.Utf8, "scope": pl.Utf8, "from_state": pl.Utf8,
    "to_state": pl.Utf8, "event": pl.Utf8, "rule": pl.Utf8, "actor": pl.Utf8, "metrics": pl.Utf8,
}
_STATE_COLUMNS: dict[str, Any] = {
    "level": pl.Utf8, "scope": pl.Utf8, "state": pl.Utf8, "reason": pl.Utf8, "since": _TS,
    "cooldown_until": _TS, "latched": pl.Boolean, "memo": pl.Utf8, "updated_at": _TS,
}


def _finite(v: Any) -> Any:
    """JSON has no NaN/inf: store them as null; numpy scalars become Python ones."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, Mapping):
        return {str(k): _finite(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_finite(x) for x in v]
    return v


def finite_json(v: Any) -> str:
    """JSON text with NaN/inf as null (JSON has neither); a string must already be JSON."""
    if isinstance(v, str):
        json.loads(v)  # must already be valid JSON
        return v
    return json.dumps(_finite(v), default=str, sort_keys=True, allow_nan=False)


def _hash(*parts: Any) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:32]


def decision_id(run_id: str, ts: datetime, portfolio: str, order_ref: int) -> str:
    """Deterministic id of a decision: the same order at the same bar of the same run."""
    return _hash(run_id, _iso(ts), portfolio, int(order_ref))


def _iso(ts: Any) -> str:
    if isinstance(ts, datetime):
        return (ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)).isoformat()
    return str(ts)


def _decisions_frame(rows: pl.DataFrame | Sequence[Mapping[str, Any]]) -> pl.DataFrame:
    if isinstance(rows, pl.DataFrame):
        df = rows
        if "inputs" in df.columns and df.schema["inputs"] != pl.Utf8:
            df = df.with_columns(pl.col("inputs").map_elements(finite_json, return_dtype=pl.Utf8))
    elif rows:
        keys = [k for k in DECISION_COLUMNS if k == "inputs" or any(k in r for r in rows)]
        recs = [{k: finite_json(r.get("inputs") or {}) if k == "inputs" else r.get(k) for k in keys} for r in rows]
        df = pl.DataFrame(recs, schema={k: DECISION_COLUMNS[k] for k in keys}, orient="row")
    else:
        df = pl.DataFrame(schema=DECISION_COLUMNS)
    if "decision_id" not in df.columns:
        df = df.with_columns(pl.struct("run_id", "ts", "portfolio", "order_ref").map_elements(
            lambda s: decision_id(s["run_id"], s["ts"], s["portfolio"], s["order_ref"]),
            return_dtype=pl.Utf8).alias("decision_id"))
    missing = [c for c in DECISION_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"risk decisions lack columns {missing}")
    df = df.select([pl.col(c).cast(t) for c, t in DECISION_COLUMNS.items()])
    bad = df.filter(~pl.col("decision").is_in(_DECISIONS))
    if bad.height:
        raise ValueError(f"unknown decision kinds {bad['decision'].unique().to_list()}; expected {_DECISIONS}")
    return df


def write_decisions(con: duckdb.DuckDBPyConnection,
                    rows: pl.DataFrame | Sequence[Mapping[str, Any]]) -> int:
    """Append risk decisions (a frame or mappings with ``DECISION_COLUMNS``; ``decision_id``
    optional, ``inputs`` a dict or JSON text) in one transaction; return rows newly written."""
    df = _decisions_frame(rows)
    if df.height == 0:
        return 0
    sel = [f"CAST({c} AS JSON)" if c == "inputs" else c for c in DECISION_COLUMNS]
    return insert_new_rows(con, "risk.risk_decisions", df, list(DECISION_COLUMNS), sel)


def read_decisions(con: duckdb.DuckDBPyConnection, run_id: str | None = None) -> pl.DataFrame:
    """Decisions (of one run, or all), oldest first, ``inputs`` as JSON text."""
    return con.sql(
        "SELECT * EXCLUDE (inputs), CAST(inputs AS VARCHAR) AS inputs FROM risk.risk_decisions "
        "WHERE ($run IS NULL OR run_id = $run) ORDER BY ts, portfolio, order_ref",
        params={"run": run_id}).pl()


def save_breakers(con: duckdb.DuckDBPyConnection, states: Sequence[Mapping[str, Any]],
                  events: Sequence[Mapping[str, Any]] = ()) -> None:
    """Upsert breaker states and append their transitions, in one transaction.

    ``states``: ``BreakerState.to_row()`` mappings; ``events``: mappings with the
    ``risk.circuit_breaker_events`` columns (``BreakerTransition`` as a dict; ``metrics`` a dict).
    """
    st = pl.DataFrame([{**{k: r.get(k) for k in _STATE_COLUMNS}, "memo": finite_json(r.get("memo") or {})}
                       for r in states], schema=_STATE_COLUMNS, orient="row")
    ev = pl.DataFrame([{**{k: r.get(k) for k in _EVENT_COLUMNS if k != "event_id"},
                        "metrics": finite_json(r.get("metrics") or {}),
                        "event_id": r.get("event_id") or _hash(_iso(r["ts"]), r["level"], r["scope"],
                                                                 r["event"], r["from_state"], r["to_state"])}
                       for r in events], schema=_EVENT_COLUMNS, orient="row")
    with transaction(con):
        if st.height:
            con.register("_risk_states", st)
            try:
                con.execute(
                    "INSERT OR REPLACE INTO risk.circuit_breaker_states (level, scope, state, reason, "
                    "since, cooldown_until, latched, memo, updated_at, saved_at) SELECT level, scope, "
                    "state, reason, since, cooldown_until, latched, CAST(memo AS JSON), updated_at, now() "
                    "FROM _risk_states")
            finally:
                con.unregister("_risk_states")
        if ev.height:
            con.register("_risk_events", ev)
            try:
                con.execute(
                    "INSERT OR IGNORE INTO risk.circuit_breaker_events (event_id, ts, level, scope, "
                    "from_state, to_state, event, rule, actor, metrics, recorded_at) SELECT event_id, ts, "
                    "level, scope, from_state, to_state, event, rule, actor, CAST(metrics AS JSON), now() "
                    "FROM _risk_events")
            finally:
                con.unregister("_risk_events")


def load_breaker_states(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Every stored breaker state as a mapping (``BreakerState.from_row`` reads it back)."""
    rows = con.execute(
        "SELECT level, scope, state, reason, since, cooldown_until, latched, CAST(memo AS VARCHAR), "
        "updated_at FROM risk.circuit_breaker_states ORDER BY level, scope").fetchall()
    keys = ("level", "scope", "state", "reason", "since", "cooldown_until", "latched", "memo", "updated_at")
    out = []
    for r in rows:
        d = dict(zip(keys, r, strict=True))
        d["memo"] = json.loads(d["memo"]) if d["memo"] else {}
        out.append(d)
    return out


def read_breaker_events(con: duckdb.DuckDBPyConnection, level: str | None = None,
                        scope: str | None = None) -> pl.DataFrame:
    """Breaker transitions, oldest first, optionally of one level/scope; metrics as JSON text."""
    return con.sql(
        "SELECT * EXCLUDE (metrics), CAST(metrics AS VARCHAR) AS metrics FROM risk.circuit_breaker_events "
        "WHERE ($level IS NULL OR level = $level) AND ($scope IS NULL OR scope = $scope) "
        "ORDER BY ts, recorded_at", params={"level": level, "scope": scope}).pl()
