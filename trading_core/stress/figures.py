"""Figures of a stress run, saved beside its results (``<data_dir>/stress/<run_id>/``) as
HTML for people (plotly.min.js written once beside them, so they open offline) and plotly JSON
for the monitoring app and the HTML report.

plotly is imported here only, so the runners and the CLI's ``--help`` never pay for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["drawdown_figure", "fan_figure", "heatmap_figure", "save_figure"]


def _dates(ts_ms: np.ndarray) -> list[Any]:
    return np.asarray(ts_ms, dtype="datetime64[ms]").tolist()


def drawdown_figure(title: str, curves: list[tuple[str, np.ndarray, np.ndarray]]) -> Any:
    """Drawdown (equity / running peak - 1) of each (label, ts_ms, equity) curve of one crisis."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for label, ts, eq in curves:
        peak = np.maximum.accumulate(eq)
        dd = np.where(peak > 0, eq / peak - 1.0, 0.0)
        fig.add_trace(go.Scatter(x=_dates(ts), y=dd, mode="lines", name=label))
    fig.update_layout(title=title, yaxis_title="drawdown", yaxis_tickformat=".0%", template="plotly_white")
    return fig


def fan_figure(title: str, ts: np.ndarray, bands: dict[str, np.ndarray]) -> Any:
    """Monte Carlo fan: the 5-95 and 25-75 percentile bands of equity across paths and the median."""
    import plotly.graph_objects as go

    x = _dates(ts)
    fig = go.Figure()
    for lo, hi, alpha in (("p5", "p95", 0.15), ("p25", "p75", 0.3)):
        fig.add_trace(go.Scatter(x=x, y=bands[hi], mode="lines", line={"width": 0}, showlegend=False))
        fig.add_trace(go.Scatter(x=x, y=bands[lo], mode="lines", line={"width": 0}, fill="tonexty",
                                 fillcolor=f"rgba(31,119,180,{alpha})", name=f"{lo}-{hi}"))
    fig.add_trace(go.Scatter(x=x, y=bands["p50"], mode="lines", name="median", line={"color": "rgb(31,119,180)"}))
    fig.update_layout(title=title, yaxis_title="equity", template="plotly_white")
    return fig


def heatmap_figure(title: str, keys: list[str], axes: list[list[float]], values: list[list[float | None]]) -> Any:
    """The metric over a 2-D grid (a 1-D grid is drawn as one row)."""
    import plotly.graph_objects as go

    z = np.array([[np.nan if v is None else v for v in row] for row in values], dtype=float)
    if len(keys) == 1:
        fig = go.Figure(go.Heatmap(z=z, x=axes[0], y=[keys[0]], colorscale="Viridis"))
        fig.update_layout(xaxis_title=keys[0])
    else:
        fig = go.Figure(go.Heatmap(z=z.T, x=axes[0], y=axes[1], colorscale="Viridis"))
        fig.update_layout(xaxis_title=keys[0], yaxis_title=keys[1])
    fig.update_layout(title=title, template="plotly_white")
    return fig


def save_figure(fig: Any, folder: Path, name: str) -> list[str]:
    """``name.html`` and ``name.json`` in ``folder``; returns both paths."""
    folder.mkdir(parents=True, exist_ok=True)
    html, js = folder / f"{name}.html", folder / f"{name}.json"
    fig.write_html(str(html), include_plotlyjs="directory", full_html=True)
    js.write_text(fig.to_json(), encoding="utf-8")
    return [str(html), str(js)]
