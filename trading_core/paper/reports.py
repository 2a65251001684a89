"""Read models of paper sessions: what ``trading paper status/list/compare`` and the app show.

One place builds them so the CLI and the Streamlit app never disagree on a session's state, its
metrics, its equity curve or the reasons of its decisions. Everything here only reads: the
session's files (``SessionStore``) and the ledger through short read-only opens (``PaperLedger``),
never holding a connection the paper job would wait on.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # kept out of import time: the CLI's --help path imports this module
    import polars as pl

    from .control import SessionStore

__all__ = ["ACTIVE_STATES", "activity_rows", "equity_curve", "fills_table", "orders_table", "positions_table",
           "session_events", "session_metrics", "status_doc", "trades_table"]

# states in which a session is (or is about to be) trading: the app's "active sessions"
ACTIVE_STATES = frozenset({"pending", "starting", "resuming", "running"})
_ORDER_KINDS = ("OrderSubmitted", "OrderDenied", "OrderRejected", "OrderCanceled", "OrderExpired")


def status_doc(store: SessionStore, ledger: Any, sid: str) -> dict[str, Any]:
    """The session's configuration summary, published status, desired state and latest alerts."""
    from .alerts import AlertSink

    config = store.load(sid)
    st = store.status(sid) or {}
    desired = store.desired(sid)
    alerts = [a for a in AlertSink(store.root / "alerts.jsonl").delivered() if a.get("session_id") == sid][-5:]
    summary = config.summary()
    summary["initial_cash"] = summary.pop("cash")
    return {**summary, "session_id": sid, "name": config.name, "state": st.get("state") or "pending", "desired": desired,
            "stage": st.get("stage"), "progress": st.get("progress"), "bars_processed": st.get("bars_processed", 0),
            "bars_total": st.get("bars_total"), "last_bar_ts": st.get("last_bar_ts"),
            "heartbeat_ts": st.get("heartbeat_ts"), "generation": st.get("generation"), "run_id": st.get("run_id"),
            "equity": st.get("equity"), "cash": st.get("cash"), "positions": st.get("positions", {}),
            "stale": st.get("stale", False), "reasons": st.get("reasons", []), "alerts": alerts}


def session_metrics(store: SessionStore, ledger: Any, sid: str) -> dict[str, Any]:
    """Performance of a session from its ledger: the equity curve's metrics, fills, fees."""
    import numpy as np
    import polars as pl

    from ..analytics.metrics import compute_metrics

    config = store.load(sid)
    if not ledger.path.exists():
        return {"session_id": sid, "name": config.name, "bars": 0}
    with ledger.connect(read_only=True) as con:
        eq = ledger.equity(con, sid)
        fills = ledger.events(con, sid, ["OrderFilled"])
        closed = ledger.events(con, sid, ["PositionClosed"])
    out: dict[str, Any] = {"session_id": sid, "name": config.name, "strategy": config.request.strategy,
                           "bars": eq.height, "fills": fills.height}
    if eq.height < 2:
        return out
    curve = eq.group_by("bar_index", maintain_order=True).agg(pl.col("equity").sum(), pl.col("bar_ts").first())
    pays = [json.loads(p) for p in fills["payload"].to_list()]
    pnl = [json.loads(p)["realized_pnl"] for p in closed["payload"].to_list()]
    m = compute_metrics(curve["equity"].to_numpy(), timeframe=config.request.timeframe,
                        calendar=config.request.resolved_calendar(), ts=curve["bar_ts"].to_numpy(),
                        trade_pnl=pnl, traded_value=np.array([p["qty"] * p["price"] for p in pays]),
                        fees=np.array([p["fee"] for p in pays]), slippage=np.array([p.get("slippage", 0.0) for p in pays]))
    out.update(m.to_dict())
    out["final_equity"] = float(curve["equity"][-1])
    return out


# ---- frames for tables and charts ----------------------------------------------------------------
def session_events(ledger: Any, sid: str, kinds: list[str] | None = None, limit: int | None = None) -> pl.DataFrame:
    """The session's ledger events (all, some kinds, or the last ``limit``); empty before the first bar."""
    import polars as pl

    if not ledger.path.exists():
        return pl.DataFrame()
    with ledger.connect(read_only=True) as con:
        return ledger.events(con, sid, kinds, limit)  # type: ignore[no-any-return]


def _ts(ms: Any) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(int(ms) / 1000, tz=UTC)


def equity_curve(ledger: Any, sid: str, closes: pl.DataFrame | None = None) -> pl.DataFrame:
    """``ts, equity, drawdown`` per bar (accounts summed) and, given the first symbol's closes
    (``ts, close``), ``benchmark``: buy-and-hold of it with the same starting equity."""
    import polars as pl

    if not ledger.path.exists():
        return pl.DataFrame(schema={"ts": pl.Datetime("ms", "UTC"), "equity": pl.Float64, "drawdown": pl.Float64})
    with ledger.connect(read_only=True) as con:
        eq = ledger.equity(con, sid)
    if eq.height == 0:
        return pl.DataFrame(schema={"ts": pl.Datetime("ms", "UTC"), "equity": pl.Float64, "drawdown": pl.Float64})
    curve = (eq.group_by("bar_index", maintain_order=True)
             .agg(pl.col("bar_ts").first(), pl.col("equity").sum())
             .sort("bar_index")
             .with_columns(pl.col("bar_ts").cast(pl.Datetime("ms", "UTC")).alias("ts")))
    curve = curve.with_columns((pl.col("equity") / pl.col("equity").cum_max() - 1.0).alias("drawdown"))
    out = curve.select("ts", "equity", "drawdown")
    if closes is not None and closes.height:
        px = closes.select(pl.col("ts").cast(pl.Datetime("ms", "UTC")), pl.col("close").cast(pl.Float64)).sort("ts")
        joined = out.join_asof(px, on="ts", strategy="backward")
        first = joined.filter(pl.col("close").is_not_null())
        if first.height:
            base_px, base_eq = float(first["close"][0]), float(first["equity"][0])
            out = joined.with_columns((pl.col("close") / base_px * base_eq).alias("benchmark")).drop("close")
    return out


def _payloads(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return [json.loads(p) for p in frame["payload"].to_list()] if frame.height else []


def orders_table(events: pl.DataFrame) -> pl.DataFrame:
    """Orders the session sent or had refused: time, symbol, kind, side, quantity, reason."""
    import polars as pl

    ev = events.filter(pl.col("kind").is_in(_ORDER_KINDS)) if events.height else events
    rows = []
    for r, p in zip(ev.iter_rows(named=True), _payloads(ev), strict=True):
        rows.append({"ts": _ts(r["bar_ts"]), "kind": r["kind"], "symbol": r["symbol"], "order_id": p.get("order_id"),
                     "side": p.get("side"), "type": p.get("order_type"), "purpose": p.get("purpose"),
                     "qty": p.get("qty", p.get("requested_qty")), "reason": r["reason"]})
    return pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()


def fills_table(events: pl.DataFrame) -> pl.DataFrame:
    """Every fill with its id, price, fee and slippage (what ``trading paper export`` carries)."""
    import polars as pl

    ev = events.filter(pl.col("kind") == "OrderFilled") if events.height else events
    rows = [{"ts": _ts(r["bar_ts"]), "fill_id": p.get("fill_id"), "symbol": r["symbol"], "order_id": p.get("order_id"),
             "side": p.get("side"), "qty": p.get("qty"), "price": p.get("price"), "fee": p.get("fee"),
             "slippage": p.get("slippage"), "fill_reason": p.get("fill_reason"),
             "reconstructed": r["reconstructed"]}
            for r, p in zip(ev.iter_rows(named=True), _payloads(ev), strict=True)]
    return pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()


def trades_table(events: pl.DataFrame) -> pl.DataFrame:
    """Closed round trips (position opened -> closed) with their net realised PnL."""
    import polars as pl

    ev = events.filter(pl.col("kind").is_in(("PositionOpened", "PositionClosed"))) if events.height else events
    opened: dict[tuple[int, str], tuple[datetime | None, float, float]] = {}
    rows = []
    for r, p in zip(ev.iter_rows(named=True), _payloads(ev), strict=True):
        key = (int(r["account"]), str(r["symbol"]))
        if r["kind"] == "PositionOpened":
            opened[key] = (_ts(r["bar_ts"]), float(p["qty"]), float(p["avg_price"]))
        else:
            entry_ts, qty, price = opened.pop(key, (None, float(p.get("previous_qty", 0.0)), float("nan")))
            rows.append({"symbol": r["symbol"], "side": "long" if qty > 0 else "short", "entry_ts": entry_ts,
                         "exit_ts": _ts(r["bar_ts"]), "qty": abs(qty), "entry_price": price,
                         "pnl": float(p["realized_pnl"])})
    return pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()


def positions_table(status: dict[str, Any]) -> pl.DataFrame:
    """Open positions as the running job last published them (symbol, quantity)."""
    import polars as pl

    pos = status.get("positions") or {}
    return pl.DataFrame({"symbol": list(pos), "qty": [float(v) for v in pos.values()]}) if pos else pl.DataFrame()


def activity_rows(events: pl.DataFrame) -> list[dict[str, Any]]:
    """Every decision (signal verdict, risk verdict, order, fill, rejection, breaker) with its reason,
    newest first: the app's agent activity panel."""
    rows = []
    for r, p in zip(events.iter_rows(named=True), _payloads(events), strict=True):
        decision = p.get("verdict") or p.get("side") or p.get("to_state") or ""
        if r["kind"] == "SignalDecision":
            decision = f"{p.get('signal', '')} {decision}".strip()
        detail = {k: p[k] for k in ("qty", "price", "requested", "approved", "level", "scope", "model_version")
                  if p.get(k) is not None}
        decision = "" if str(decision).isdigit() else str(decision)
        rows.append({"ts": _ts(r["bar_ts"]), "bar": r["bar_index"], "kind": r["kind"], "symbol": r["symbol"],
                     "decision": str(decision), "reason": r["reason"] or "",
                     "detail": ", ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}"
                                         for k, v in detail.items()),
                     "reconstructed": bool(r["reconstructed"])})
    rows.reverse()
    return rows
