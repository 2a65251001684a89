"""Shapes of results for people: side-by-side comparisons and regime spans for chart shading.

Shared by the monitoring app and anything else that shows sessions and backtests together; the
numbers themselves come from ``analytics.metrics`` (a session's via ``paper.reports``, a
backtest's as stored with its run), so a session and a backtest are compared on one definition.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

__all__ = ["COMPARE_METRICS", "backtest_metrics", "compare_table", "drawdown", "regime_spans"]

# the rows of a comparison, in reading order (keys of PerformanceMetrics.to_dict())
COMPARE_METRICS = ("start", "end", "bars", "initial_equity", "final_equity", "total_return", "cagr", "volatility",
                   "sharpe", "sortino", "calmar", "max_drawdown", "trades", "win_rate", "profit_factor",
                   "expectancy", "exposure", "turnover", "fees_paid", "slippage_paid", "benchmark_return",
                   "excess_return")


def backtest_metrics(run: dict[str, Any]) -> dict[str, Any]:
    """A stored run's row (``warehouse.monitoring.backtest_runs``) as a metrics dict like a session's."""
    metrics = run.get("metrics")
    m = json.loads(metrics) if isinstance(metrics, str) else dict(metrics or {})
    return {"strategy": run.get("strategy"), "symbol": run.get("symbol"), "timeframe": run.get("timeframe"), **m}


def compare_table(items: dict[str, dict[str, Any]], keys: tuple[str, ...] = COMPARE_METRICS) -> pl.DataFrame:
    """One row per metric, one column per item (a session or a run), values as display text so
    mixed types (dates, counts, fractions) sit in one column; absent metrics are blank."""
    import polars as pl

    def text(v: Any) -> str:
        if v is None:
            return ""
        if isinstance(v, bool):
            return str(v)
        if isinstance(v, float):
            return f"{v:,.4f}" if abs(v) < 100 else f"{v:,.2f}"
        if isinstance(v, datetime):
            return v.isoformat()
        return str(v)

    cols: dict[str, list[str]] = {"metric": list(keys)}
    for label, m in items.items():
        cols[label] = [text(m.get(k)) for k in keys]
    return pl.DataFrame(cols)


def drawdown(equity: pl.Series) -> pl.Series:
    """Fall from the running peak at each bar (0 at a new high, -0.25 = 25 % below it)."""
    return (equity / equity.cum_max() - 1.0).alias("drawdown")


def regime_spans(regimes: pl.DataFrame) -> list[tuple[datetime, datetime, str]]:
    """Consecutive bars with one regime label merged into ``(first ts, last ts, label)`` spans,
    so a chart shades a handful of rectangles instead of one per bar. Unlabelled bars break spans."""
    spans: list[tuple[datetime, datetime, str]] = []
    if regimes.height == 0:
        return spans
    start = last = None
    label: str | None = None
    for ts, reg in zip(regimes["ts"].to_list(), regimes["regime"].to_list(), strict=True):
        if reg != label:
            if label is not None and start is not None and last is not None:
                spans.append((start, last, label))
            start, label = ts, reg
        last = ts
    if label is not None and start is not None and last is not None:
        spans.append((start, last, label))
    return spans
