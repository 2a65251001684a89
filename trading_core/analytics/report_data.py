"""What a report shows, gathered from stored results: a backtest run or a paper session.

Both kinds become one ``ReportData`` (an equity curve with its timestamps, a buy-and-hold
benchmark on the same bars, metrics, trades, regime breakdown, attribution tables), so one
renderer serves both and the two kinds of report read alike. Everything here only reads: the
warehouse and the ledger are opened read-only for one query at a time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from ..errors import InvalidInput
from .by_regime import metrics_by_regime
from .metrics import compute_metrics, simple_returns

__all__ = ["ReportData", "backtest_report_data", "benchmark_curve", "by_asset", "by_period", "monthly_returns",
           "session_report_data"]

_BENCH_FIELDS = ("benchmark_return", "excess_return", "alpha", "beta", "tracking_error", "information_ratio")
_TS = pl.Datetime("ms", "UTC")


@dataclass
class ReportData:
    """One report's content. ``ts`` are bar open times (epoch ms), ``equity`` the account marked at
    each bar's close, ``benchmark`` buy-and-hold of the traded symbols (equal weights) from the same
    starting equity (None where no bars are stored)."""

    kind: str  # backtest | session
    report_id: str
    title: str
    facts: dict[str, Any]
    timeframe: str
    calendar: str
    ts: np.ndarray
    equity: np.ndarray
    benchmark: np.ndarray | None
    metrics: dict[str, Any]
    trades: pl.DataFrame
    by_regime: dict[str, Any] = field(default_factory=dict)
    by_strategy: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def drawdown(self) -> np.ndarray:
        peak = np.maximum.accumulate(self.equity)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(peak > 0, self.equity / peak - 1.0, 0.0)

    def monthly(self) -> pl.DataFrame:
        return monthly_returns(self.ts, self.equity)

    def periods(self) -> pl.DataFrame:
        return by_period(self.ts, self.equity, self.benchmark, self.trades)

    def assets(self) -> pl.DataFrame:
        return by_asset(self.trades)


# ---- shared computations -------------------------------------------------------------------------
def benchmark_curve(ts: np.ndarray, closes: dict[str, pl.DataFrame], base_equity: float) -> np.ndarray | None:
    """Buy-and-hold of ``closes`` (symbol -> ``ts, close``), equal weights, worth ``base_equity`` at
    the first bar; each symbol's last close at or before each bar (None without any usable close)."""
    frame = pl.DataFrame({"ts": pl.Series(ts, dtype=pl.Int64).cast(_TS)}).sort("ts")
    legs = []
    for sym, px in closes.items():
        if px.height == 0:
            continue
        px = px.select(pl.col("ts").cast(_TS), pl.col("close").cast(pl.Float64).alias(sym)).sort("ts")
        col = frame.join_asof(px, on="ts", strategy="backward")[sym]
        first = col.drop_nulls()
        if first.len() == 0:
            continue
        legs.append((col.fill_null(strategy="backward") / float(first[0])).to_numpy())
    if not legs:
        return None
    return np.mean(np.vstack(legs), axis=0) * float(base_equity)  # type: ignore[no-any-return]


def _benchmark_metrics(equity: np.ndarray, bench: np.ndarray | None, *, timeframe: str,
                       calendar: str) -> dict[str, Any]:
    if bench is None or equity.size < 2:
        return {}
    m = compute_metrics(equity, timeframe=timeframe, calendar=calendar,
                        benchmark_returns=simple_returns(bench)).to_dict()
    return {k: m[k] for k in _BENCH_FIELDS}


def monthly_returns(ts: np.ndarray, equity: np.ndarray) -> pl.DataFrame:
    """``year, month, return``: each month's last equity over the previous month's (the first
    month over the first equity)."""
    if equity.size < 2:
        return pl.DataFrame(schema={"year": pl.Int32, "month": pl.Int8, "return": pl.Float64})
    f = pl.DataFrame({"ts": pl.Series(ts, dtype=pl.Int64).cast(_TS), "equity": equity})
    last = (f.group_by(pl.col("ts").dt.year().alias("year"), pl.col("ts").dt.month().alias("month"),
                       maintain_order=True).agg(pl.col("equity").last()).sort("year", "month"))
    prev = last["equity"].shift(1).fill_null(float(equity[0]))
    return last.with_columns((last["equity"] / prev - 1.0).alias("return")).select("year", "month", "return")


def by_period(ts: np.ndarray, equity: np.ndarray, bench: np.ndarray | None, trades: pl.DataFrame) -> pl.DataFrame:
    """Per calendar year: start and end equity, PnL, return, the benchmark's return, closed trades."""
    if equity.size == 0:
        return pl.DataFrame()
    f = pl.DataFrame({"ts": pl.Series(ts, dtype=pl.Int64).cast(_TS), "equity": equity,
                      "bench": bench if bench is not None else np.full(equity.size, np.nan)})
    g = f.group_by(pl.col("ts").dt.year().alias("year"), maintain_order=True).agg(
        pl.col("equity").last().alias("end_equity"), pl.col("bench").last().alias("bench_end")).sort("year")
    start = g["end_equity"].shift(1).fill_null(float(equity[0]))
    bstart = g["bench_end"].shift(1).fill_null(float(f["bench"][0]))
    n_trades: dict[int, int] = {}
    if trades.height and "exit_ts" in trades.columns:
        closed = trades.filter(pl.col("exit_ts").is_not_null())
        for y, n in closed.group_by(pl.col("exit_ts").dt.year().alias("y")).len().iter_rows():
            n_trades[int(y)] = int(n)
    out = g.with_columns(start.alias("start_equity")).with_columns(
        (pl.col("end_equity") - pl.col("start_equity")).alias("pnl"),
        (pl.col("end_equity") / pl.col("start_equity") - 1.0).alias("return"),
        (pl.col("bench_end") / bstart - 1.0).alias("benchmark_return"),
        pl.col("year").map_elements(lambda y: n_trades.get(int(y), 0), return_dtype=pl.Int64).alias("trades"))
    if bench is None:
        out = out.with_columns(pl.lit(None, dtype=pl.Float64).alias("benchmark_return"))
    return out.select("year", "start_equity", "end_equity", "pnl", "return", "benchmark_return", "trades")


def by_asset(trades: pl.DataFrame) -> pl.DataFrame:
    """Per symbol: closed trades, winners, net PnL (fees included), fees, best and worst trade."""
    if trades.height == 0 or "pnl" not in trades.columns:
        return pl.DataFrame()
    closed = trades.filter(pl.col("pnl").is_not_null())
    fees = pl.col("fees").sum() if "fees" in closed.columns else pl.lit(None, dtype=pl.Float64)
    return (closed.group_by("symbol").agg(pl.len().alias("trades"), (pl.col("pnl") > 0).sum().alias("wins"),
                                          pl.col("pnl").sum().alias("pnl"), fees.alias("fees"),
                                          pl.col("pnl").max().alias("best"), pl.col("pnl").min().alias("worst"))
            .sort("pnl", descending=True))


def _ms(values: pl.Series) -> np.ndarray:
    return values.cast(_TS).cast(pl.Int64).to_numpy()


# ---- backtests -----------------------------------------------------------------------------------
def backtest_report_data(warehouse: Any, run_id: str) -> ReportData:
    """A stored run (``trading backtest`` persists it): its first portfolio's curve and trades,
    every portfolio as a row of the strategy attribution."""
    from ..warehouse.backtests import read_backtest_run
    from ..warehouse.bars import read_bars
    from ..warehouse.reports import backtest_equity, backtest_portfolios, backtest_trades, recent_run_ids

    if not warehouse.path.exists():
        raise InvalidInput(f"no backtest run {run_id}: the warehouse {warehouse.path} does not exist yet")
    with warehouse.connect(read_only=True) as con:
        run = read_backtest_run(con, run_id)
        if run is None:
            recent = recent_run_ids(con)
            hint = f"recent runs: {', '.join(recent)}" if recent else "no backtest is stored yet"
            raise InvalidInput(f"no backtest run {run_id!r} in {warehouse.path} ({hint})")
        ports = backtest_portfolios(con, run_id)
        eq = backtest_equity(con, run_id, 0)
        trades = backtest_trades(con, run_id, 0)
        request = run["config"].get("request", {})
        symbols = list(request.get("symbols") or [run["symbol"]])
        closes: dict[str, pl.DataFrame] = {}
        if eq.height:
            start, end = eq["ts"][0], eq["ts"][-1] + timedelta(milliseconds=1)
            for s in symbols:
                closes[s] = read_bars(con, run["venue"], s, run["timeframe"], start, end).select("ts", "close")
    calendar = str(run["config"].get("calendar") or "crypto")
    ts, equity = (_ms(eq["ts"]), eq["equity"].to_numpy()) if eq.height else (np.zeros(0, np.int64), np.zeros(0))
    bench = benchmark_curve(ts, closes, float(equity[0])) if equity.size else None
    metrics = dict(run["metrics"])
    regimes = metrics.pop("by_regime", None)
    strategy_rows = []
    for p in ports.iter_rows(named=True):
        pm = json.loads(p["metrics"]) if isinstance(p["metrics"], str) else p["metrics"]
        if p["portfolio"] == 0 and not regimes:
            regimes = pm.get("by_regime")
        strategy_rows.append({"strategy": run["strategy"], "portfolio": p["portfolio"], "symbol": p["symbol"],
                              "params": p["params"] if isinstance(p["params"], str) else json.dumps(p["params"]),
                              "final_equity": p["final_equity"], "total_return": p["total_return"],
                              "sharpe": p["sharpe"], "max_drawdown": p["max_drawdown"], "trades": p["trades"]})
    metrics.update(_benchmark_metrics(equity, bench, timeframe=run["timeframe"], calendar=calendar))
    notes = []
    if bench is None:
        notes.append("no stored bars of the traded symbols over the run: no benchmark")
    if not regimes:
        notes.append("no regime labels were stored with this run (`trading features update` computes them)")
    return ReportData(
        kind="backtest", report_id=run_id, title=f"Backtest {run_id}",
        facts={"strategy": run["strategy"], "params": json.dumps(run["params"], sort_keys=True),
               "venue": run["venue"], "symbols": ", ".join(symbols), "timeframe": run["timeframe"],
               "period": f"{_day(run['start_ts'])} .. {_day(run['end_ts'])}", "bars": int(equity.size),
               "portfolios": ports.height, "created": str(run["created_at"]),
               "execution model": run["execution_model_hash"][:16]},
        timeframe=run["timeframe"], calendar=calendar, ts=ts, equity=equity, benchmark=bench, metrics=metrics,
        trades=trades, by_regime=regimes or {}, by_strategy=strategy_rows, notes=notes)


def _day(v: Any) -> str:
    return v.date().isoformat() if isinstance(v, datetime) else str(v)


# ---- paper sessions ------------------------------------------------------------------------------
def session_report_data(store: Any, ledger: Any, warehouse: Any, session_id: str) -> ReportData:
    """A paper session from its ledger: accounts summed per bar, round trips, alerts it raised."""
    from ..paper.alerts import AlertSink
    from ..paper.reports import equity_curve, session_events, session_metrics, trades_table
    from ..warehouse.bars import read_bars
    from ..warehouse.features import read_regimes

    config = store.load(session_id)  # InvalidInput for an unknown session, naming `trading paper list`
    req = config.request
    calendar = req.resolved_calendar()
    curve = equity_curve(ledger, session_id)
    events = session_events(ledger, session_id)
    trades = trades_table(events)
    if trades.height:
        trades = trades.with_columns(pl.col("entry_ts").cast(_TS), pl.col("exit_ts").cast(_TS))
    ts = _ms(curve["ts"]) if curve.height else np.zeros(0, np.int64)
    equity = curve["equity"].to_numpy() if curve.height else np.zeros(0)
    closes: dict[str, pl.DataFrame] = {}
    labels: list[str | None] = []
    notes: list[str] = []
    if equity.size and warehouse.path.exists():
        start = datetime.fromtimestamp(ts[0] / 1000, tz=UTC)
        end = datetime.fromtimestamp(ts[-1] / 1000, tz=UTC) + timedelta(milliseconds=1)
        with warehouse.connect(read_only=True) as con:
            for s in req.universe:
                closes[s] = read_bars(con, req.venue, s, req.timeframe, start, end).select("ts", "close")
            try:
                reg = read_regimes(con, req.venue, req.universe[0], req.timeframe, start, end)
            except Exception:  # a warehouse without the features schema: no labels, said below
                reg = pl.DataFrame()
        if reg.height:
            joined = pl.DataFrame({"ts": pl.Series(ts, dtype=pl.Int64).cast(_TS)}).join(
                reg.select(pl.col("ts").cast(_TS), "regime"), on="ts", how="left", maintain_order="left")
            labels = joined["regime"].to_list()
    bench = benchmark_curve(ts, closes, float(equity[0])) if equity.size else None
    metrics = session_metrics(store, ledger, session_id)
    metrics.update(_benchmark_metrics(equity, bench, timeframe=req.timeframe, calendar=calendar))
    regimes: dict[str, Any] = {}
    if labels:
        regimes = metrics_by_regime(equity, labels, timeframe=req.timeframe, calendar=calendar,
                                    benchmark_returns=None if bench is None else simple_returns(bench))
    else:
        notes.append("no regime labels stored for the session's bars (`trading features update` computes them)")
    if equity.size == 0:
        notes.append("the session has processed no bar yet")
    elif bench is None:
        notes.append("no stored bars of the session's symbols: no benchmark")
    status = store.status(session_id) or {}
    alerts = [a for a in AlertSink(store.root / "alerts.jsonl").delivered() if a.get("session_id") == session_id]
    pnl = float(equity[-1] - req.cash) if equity.size else None
    strategy_rows = [{"strategy": req.strategy, "params": json.dumps(dict(req.params), sort_keys=True),
                      "symbols": ", ".join(req.universe), "final_equity": float(equity[-1]) if equity.size else None,
                      "pnl": pnl, "fees": metrics.get("fees_paid"), "trades": trades.height}]
    return ReportData(
        kind="session", report_id=session_id, title=f"Paper session {session_id}",
        facts={"name": config.name, "strategy": req.strategy, "params": json.dumps(dict(req.params), sort_keys=True),
               "venue": req.venue, "symbols": ", ".join(req.universe), "timeframe": req.timeframe,
               "feed": config.feed, "state": status.get("state") or "pending",
               "bars processed": int(equity.size), "initial cash": req.cash,
               "last bar": status.get("last_bar_ts"), "heartbeat": status.get("heartbeat_ts")},
        timeframe=req.timeframe, calendar=calendar, ts=ts, equity=equity, benchmark=bench, metrics=metrics,
        trades=trades, by_regime=regimes, by_strategy=strategy_rows, alerts=alerts, notes=notes)
