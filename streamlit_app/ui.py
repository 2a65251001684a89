"""Small presentation helpers the pages share: guarded sections, empty states, number formats, charts."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import streamlit as st

from trading_core.errors import TradingError

log = logging.getLogger("trading.app")

STATE_ICONS = {"running": "🟢", "starting": "🟡", "resuming": "🟡", "pending": "⏳", "paused": "⏸️",
               "stopped": "⏹️", "completed": "✅", "failed": "🔴", "refused": "⛔", "cancelled": "⏹️"}
RUN_ICONS = {"SUCCESS": "🟢", "FAILURE": "🔴", "STARTED": "🔵", "STARTING": "🔵", "QUEUED": "⏳",
             "NOT_STARTED": "⏳", "CANCELING": "🟠", "CANCELED": "⚪", "MANAGED": "•"}
REGIME_COLORS = {"trending_up": "rgba(46, 160, 67, 0.12)", "trending_down": "rgba(218, 54, 51, 0.12)",
                 "ranging": "rgba(128, 128, 128, 0.10)", "high_vol_stress": "rgba(255, 165, 0, 0.20)"}


@contextlib.contextmanager
def guard(what: str) -> Iterator[None]:
    """Run one section; our own errors become a one-line message, anything else a short
    message naming the section (logged with its traceback, never shown in the page)."""
    try:
        yield
    except TradingError as e:
        st.error(f"{what}: {e}")
    except Exception as e:  # noqa: BLE001 - a page must keep rendering its other sections
        log.exception("app section %s failed", what)
        st.error(f"{what}: unexpected {type(e).__name__}: {str(e)[:300]}")


def empty(message: str) -> None:
    """A clear empty state: what is missing and the command that produces it."""
    st.info(message, icon="ℹ️")


def money(v: Any) -> str:
    if not isinstance(v, int | float):
        return "–"
    return f"{v:,.2f}" if round(v, 2) != 0 else "0.00"  # never "-0.00"


def pct(v: Any) -> str:
    return f"{v * 100:,.2f} %" if isinstance(v, int | float) else "–"


def num(v: Any, digits: int = 2) -> str:
    return f"{v:,.{digits}f}" if isinstance(v, int | float) else "–"


def ago(iso: str | None) -> str:
    """'12 s ago' for an ISO-8601 instant (heartbeats), '–' when unknown."""
    if not iso:
        return "–"
    try:
        t = datetime.fromisoformat(str(iso))
    except ValueError:
        return str(iso)
    s = (datetime.now(UTC) - (t if t.tzinfo else t.replace(tzinfo=UTC))).total_seconds()
    if s < 120:
        return f"{s:.0f} s ago"
    if s < 7200:
        return f"{s / 60:.0f} min ago"
    if s < 172800:
        return f"{s / 3600:.0f} h ago"
    return f"{s / 86400:.0f} days ago"


def state_label(state: str | None) -> str:
    return f"{STATE_ICONS.get(state or '', '•')} {state or 'unknown'}"


def run_label(status: str | None) -> str:
    """A Dagster run status with its colour ('🔴 FAILURE')."""
    return f"{RUN_ICONS.get(status or '', '•')} {status or 'unknown'}"


def check_label(passed: bool | None, severity: str | None) -> str:
    """An asset check's outcome: failing errors red, failing warnings orange, in progress blue."""
    if passed is None:
        return "🔵 running"
    if passed:
        return "🟢 passed"
    return "🟠 warning" if severity == "WARN" else "🔴 failed"


# Distinct hues for items drawn together (the theme's default blues are hard to tell apart).
SERIES_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf")


def series_color(i: int) -> str:
    return SERIES_COLORS[i % len(SERIES_COLORS)]


def chart_layout(fig: Any, height: int = 420, hovermode: str = "x unified", **kw: Any) -> Any:
    """One look for every chart: compact margins, legend on top, unified hover (time series)."""
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 30, "b": 10}, hovermode=hovermode,
                      legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0}, **kw)
    return fig


def table_height(rows: int, max_height: int) -> int | str:
    """A table's height: its rows when they fit under ``max_height`` (no block of empty rows under
    a short table), else ``max_height`` with a scroll bar."""
    return "auto" if 38 + 35 * max(rows, 1) <= max_height else max_height


def drop_empty_columns(df: Any, keep: tuple[str, ...] = ()) -> Any:
    """A polars frame without the columns that hold nothing in any row (a column of 'None' says
    nothing), except those in ``keep``."""
    if df.height == 0:
        return df
    return df.select([c for c in df.columns if c in keep or df[c].null_count() < df.height])


def plot(fig: Any, key: str) -> None:
    st.plotly_chart(fig, width="stretch", key=key, config={"displaylogo": False})
