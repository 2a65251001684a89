"""A self-contained HTML report of a backtest run or a paper session.

One file that opens anywhere, offline: plotly.js is inlined once (no CDN), the figures are
fragments that share it, and every value that reaches the page -- symbols, strategy and session
names, parameters, alert texts -- goes through ``html.escape`` (they come from users and config).
``build_report`` picks the kind from the id: ``ps-...`` is a paper session, anything else a stored
backtest run; ``render_report`` turns a ``ReportData`` into the page.
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from .metrics import compute_metrics
from .report_data import ReportData, backtest_report_data, session_report_data

__all__ = ["build_report", "load_report_data", "render_report", "write_report"]

_MAX_TRADES = 1000  # rows of the trade list (the count says how many there are)
_PCT = {"total_return", "cagr", "volatility", "max_drawdown", "win_rate", "exposure", "benchmark_return",
        "excess_return", "alpha", "tracking_error", "return", "share", "annualised_return"}
_METRIC_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Returns", ("initial_equity", "final_equity", "total_return", "cagr", "bars", "start", "end")),
    ("Risk", ("volatility", "sharpe", "sortino", "calmar", "max_drawdown", "max_drawdown_peak",
              "max_drawdown_trough", "max_drawdown_recovery", "time_to_recover_days")),
    ("Trades", ("trades", "open_trades", "win_rate", "profit_factor", "expectancy", "gross_profit", "gross_loss",
                "exposure", "turnover", "fees_paid", "slippage_paid")),
    ("Against buy-and-hold", ("benchmark_return", "excess_return", "alpha", "beta", "tracking_error",
                              "information_ratio")),
)
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1180px;color:#222}
h1{font-size:1.5em;margin-bottom:4px} h2{font-size:1.15em;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.86em;margin:6px 0} td,th{padding:3px 8px;border-bottom:1px solid #eee;
text-align:right} th{background:#f6f6f6} td.l,th.l{text-align:left} .neg{color:#b03a2e} .pos{color:#1e8449}
.grid{display:flex;flex-wrap:wrap;gap:24px} .note{color:#8a6d3b;background:#fcf8e3;padding:4px 8px}
.small{color:#777;font-size:.8em}
"""


def e(v: Any) -> str:
    """Escape anything for HTML text or an attribute value."""
    return html.escape(str(v), quote=True)


def fmt(v: Any, key: str = "") -> str:
    """A cell's text: percent for fractions, 4 significant digits, '-' for undefined."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int | np.integer):
        return f"{int(v):,}"
    if isinstance(v, float | np.floating):
        if key in _PCT:
            return f"{float(v) * 100:.2f}%"
        a = abs(float(v))
        return f"{float(v):,.2f}" if a >= 100 else f"{float(v):.4g}"
    if isinstance(v, datetime):
        return v.isoformat()
    return str(v)


def _cell(v: Any, key: str = "") -> str:
    cls = "l" if isinstance(v, str) else ""
    if isinstance(v, float | int) and not isinstance(v, bool) and key in {"pnl", "return", "total_return",
                                                                          "excess_return", "best", "worst"}:
        cls = "neg" if v < 0 else "pos" if v > 0 else ""
    return f'<td class="{cls}">{e(fmt(v, key))}</td>'


def table(rows: list[dict[str, Any]], columns: Sequence[str] | None = None, *, cls: str = "") -> str:
    """An HTML table of dict rows (columns: the first row's keys unless given)."""
    if not rows:
        return '<p class="small">none</p>'
    cols = columns or list(rows[0])
    head = "".join(f'<th class="l">{e(c)}</th>' if i == 0 else f"<th>{e(c)}</th>" for i, c in enumerate(cols))
    body = "".join("<tr>" + "".join(_cell(r.get(c), c) for c in cols) + "</tr>" for r in rows)
    return f'<table class="{e(cls)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _kv(items: dict[str, Any]) -> str:
    rows = "".join(f'<tr><th class="l">{e(k)}</th>{_cell(v, k)}</tr>' for k, v in items.items())
    return f"<table>{rows}</table>"


def _frame_rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return frame.to_dicts() if frame.height else []


def _monthly_table(monthly: pl.DataFrame) -> str:
    if monthly.height == 0:
        return '<p class="small">fewer than two bars: no monthly returns</p>'
    by_year: dict[int, dict[int, float]] = {}
    for y, m, r in monthly.iter_rows():
        by_year.setdefault(int(y), {})[int(m)] = float(r)
    rows: list[dict[str, Any]] = []
    for y, months in sorted(by_year.items()):
        year_ret = float(np.prod([1.0 + v for v in months.values()]) - 1.0)
        rows.append({"year": str(y), **{f"{m:02d}": months.get(m) for m in range(1, 13)}, "year_return": year_ret})
    cols = ["year", *[f"{m:02d}" for m in range(1, 13)], "year_return"]
    pct = {c for c in cols if c != "year"}
    head = "".join(f"<th>{e(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(
        f'<td class="{"neg" if isinstance(r[c], float) and r[c] < 0 else ""}">'
        f'{e(fmt(r[c], "return") if c in pct else r[c])}</td>' for c in cols) + "</tr>" for r in rows)
    return f'<table id="monthly-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _benchmark_table(data: ReportData) -> str:
    if data.benchmark is None or data.equity.size < 2:
        return '<p class="small">no benchmark: the traded symbols have no stored bars over this period</p>'
    b = compute_metrics(data.benchmark, timeframe=data.timeframe, calendar=data.calendar, ts=data.ts).to_dict()
    s = compute_metrics(data.equity, timeframe=data.timeframe, calendar=data.calendar, ts=data.ts).to_dict()
    keys = ("final_equity", "total_return", "cagr", "volatility", "sharpe", "sortino", "max_drawdown", "calmar")
    rows = [{"metric": k, "strategy": s[k], "buy and hold": b[k]} for k in keys]
    head = '<tr><th class="l">metric</th><th>strategy</th><th>buy and hold</th></tr>'
    body = "".join(f'<tr><td class="l">{e(r["metric"])}</td><td>{e(fmt(r["strategy"], r["metric"]))}</td>'
                   f'<td>{e(fmt(r["buy and hold"], r["metric"]))}</td></tr>' for r in rows)
    return f'<table id="benchmark-table">{head}{body}</table>'


def _regime_table(data: ReportData) -> str:
    if not data.by_regime:
        return '<p class="small">no regime labels for these bars</p>'
    rows = [{"regime": k, **v} for k, v in sorted(data.by_regime.items())]
    cols = ["regime", "bars", "share", "total_return", "annualised_return", "volatility", "sharpe", "exposure",
            "benchmark_return"]
    return table(rows, [c for c in cols if any(c in r for r in rows)])


def _trades_table(trades: pl.DataFrame) -> str:
    if trades.height == 0:
        return '<p class="small">no closed trade</p>'
    cols = [c for c in ("trade_no", "symbol", "side", "entry_ts", "exit_ts", "entry_price", "exit_price", "quantity",
                        "qty", "fees", "pnl") if c in trades.columns]
    shown = trades.head(_MAX_TRADES).select(cols)
    note = (f'<p class="small">the first {_MAX_TRADES:,} of {trades.height:,} trades</p>'
            if trades.height > _MAX_TRADES else f'<p class="small">{trades.height:,} trades</p>')
    return note + table(_frame_rows(shown), cols, cls="trades")


def render_report(data: ReportData, *, generated_at: datetime | None = None, inline_js: bool = True) -> str:
    """The whole page. ``inline_js=False`` leaves plotly.js out (tests that only read the tables)."""
    from .report_figures import drawdown_figure, equity_figure, monthly_heatmap, plotly_js

    when = (generated_at or datetime.now(UTC)).isoformat(timespec="seconds")
    parts = [f"<h1>{e(data.title)}</h1>",
             f'<p class="small">generated {e(when)} from stored results; values are fractions shown as %</p>',
             _kv(data.facts)]
    parts += [f'<p class="note">{e(n)}</p>' for n in data.notes]
    parts.append("<h2>Metrics</h2><div class=\"grid\">")
    for title, keys in _METRIC_GROUPS:
        items = {k: data.metrics.get(k) for k in keys if k in data.metrics}
        if items:
            parts.append(f"<div><h3>{e(title)}</h3>{_kv(items)}</div>")
    parts.append("</div>")
    if data.equity.size:
        bench_dd = None
        if data.benchmark is not None:
            peak = np.maximum.accumulate(data.benchmark)
            bench_dd = data.benchmark / peak - 1.0
        parts += ["<h2>Equity and drawdown</h2>",
                  equity_figure(data.ts, data.equity, data.benchmark, name=str(data.facts.get("strategy", "strategy"))),
                  drawdown_figure(data.ts, data.drawdown, bench_dd)]
    monthly = data.monthly()
    parts.append("<h2>Monthly returns</h2>")
    if monthly.height:
        parts.append(monthly_heatmap(monthly))
    parts.append(_monthly_table(monthly))
    parts += ["<h2>Benchmark comparison (buy and hold on the same bars)</h2>", _benchmark_table(data),
              "<h2>Regime breakdown</h2>", _regime_table(data),
              "<h2>Attribution</h2><h3>By strategy</h3>", table(data.by_strategy),
              "<h3>By asset</h3>", table(_frame_rows(data.assets())),
              "<h3>By period</h3>", table(_frame_rows(data.periods())),
              "<h2>Trades</h2>", _trades_table(data.trades)]
    if data.kind == "session":
        rows = [{"delivered": datetime.fromtimestamp(float(a.get("delivered_at", 0)), tz=UTC).isoformat(
            timespec="seconds"), "severity": a.get("severity"), "kind": a.get("kind"), "text": a.get("text", "")}
            for a in data.alerts]
        parts += ["<h2>Alerts</h2>", table(rows)]
    js = f"<script>{plotly_js()}</script>" if inline_js else ""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{e(data.title)}</title><style>{_CSS}</style>{js}</head><body>\n"
            + "\n".join(parts) + "\n</body></html>\n")


def load_report_data(target: str, *, config: Any = None) -> ReportData:
    """``ps-...``: the paper session; anything else: a stored backtest run id."""
    from ..config import load_config
    from ..warehouse import Warehouse

    cfg = config or load_config()
    wh = Warehouse(cfg.warehouse.path, deadline_s=cfg.warehouse.lock_deadline_s)
    if target.startswith("ps-"):
        from ..paper.control import SessionStore
        from ..warehouse.paper import PaperLedger

        root = Path(cfg.data_dir)
        return session_report_data(SessionStore(root / "paper"), PaperLedger(root / "paper.duckdb"), wh, target)
    return backtest_report_data(wh, target)


def build_report(target: str, *, config: Any = None, inline_js: bool = True) -> str:
    return render_report(load_report_data(target, config=config), inline_js=inline_js)


def write_report(html_text: str, out: str | Path) -> Path:
    """Write the page atomically (temporary file, then rename): a reader never sees half a report."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(html_text, encoding="utf-8")
    os.replace(tmp, path)
    return path
