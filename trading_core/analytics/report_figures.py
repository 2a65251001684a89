"""The report's Plotly figures, as ``<div>`` fragments without plotly.js (the page inlines it once).

Trace names and titles that come from users (symbols, strategy and session names) are escaped
here: Plotly renders a subset of HTML in text, and the page must show them as typed.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import polars as pl

__all__ = ["drawdown_figure", "equity_figure", "monthly_heatmap", "plotly_js"]

_LAYOUT: dict[str, Any] = {"template": "plotly_white", "height": 360, "margin": {"l": 60, "r": 20, "t": 40, "b": 40},
                           "legend": {"orientation": "h", "y": 1.02, "x": 1, "xanchor": "right", "yanchor": "bottom"}}


def plotly_js() -> str:
    """plotly.js itself (the report works offline: no CDN)."""
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs())


def _div(fig: Any, div_id: str) -> str:
    return str(fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                           config={"displaylogo": False, "responsive": True}))


def _dates(ts: np.ndarray) -> np.ndarray:
    return ts.astype("datetime64[ms]")


def equity_figure(ts: np.ndarray, equity: np.ndarray, benchmark: np.ndarray | None, *, name: str) -> str:
    import plotly.graph_objects as go

    fig = go.Figure()
    x = _dates(ts)
    fig.add_trace(go.Scatter(x=x, y=equity, name=html.escape(name), mode="lines", line={"width": 1.6}))
    if benchmark is not None:
        fig.add_trace(go.Scatter(x=x, y=benchmark, name="buy and hold", mode="lines",
                                 line={"width": 1.2, "dash": "dot", "color": "#888"}))
    fig.update_layout(title="Equity vs buy-and-hold", yaxis_title="equity", **_LAYOUT)
    return _div(fig, "equity")


def drawdown_figure(ts: np.ndarray, drawdown: np.ndarray, bench_drawdown: np.ndarray | None) -> str:
    import plotly.graph_objects as go

    fig = go.Figure()
    x = _dates(ts)
    fig.add_trace(go.Scatter(x=x, y=drawdown * 100.0, name="strategy", fill="tozeroy", mode="lines",
                             line={"width": 1, "color": "#c0392b"}))
    if bench_drawdown is not None:
        fig.add_trace(go.Scatter(x=x, y=bench_drawdown * 100.0, name="buy and hold", mode="lines",
                                 line={"width": 1, "dash": "dot", "color": "#888"}))
    fig.update_layout(title="Drawdown", yaxis_title="% below the running peak", **_LAYOUT)
    return _div(fig, "drawdown")


def monthly_heatmap(monthly: pl.DataFrame) -> str:
    import plotly.graph_objects as go

    years = sorted(set(monthly["year"].to_list()))
    z = np.full((len(years), 12), np.nan)
    for y, m, r in monthly.iter_rows():
        z[years.index(y), int(m) - 1] = r * 100.0
    text = [["" if np.isnan(v) else f"{v:.1f}%" for v in row] for row in z]
    lim = float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 1.0
    fig = go.Figure(go.Heatmap(z=z, x=["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                                       "Nov", "Dec"], y=[str(y) for y in years], text=text,
                               texttemplate="%{text}", colorscale="RdYlGn", zmid=0, zmin=-lim, zmax=lim,
                               colorbar={"title": "%"}, hoverongaps=False))
    layout = {**_LAYOUT, "height": max(220, 40 + 26 * len(years))}
    fig.update_layout(title="Monthly returns", yaxis={"autorange": "reversed", "type": "category"}, **layout)
    return _div(fig, "monthly")
