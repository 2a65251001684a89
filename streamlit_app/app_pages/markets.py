"""Markets and regimes: candlesticks with indicators and regime shading; data quality and quarantine."""

from __future__ import annotations

from datetime import timedelta

import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from streamlit_app import data_access as da
from streamlit_app import ui
from trading_core.analytics.views import regime_spans
from trading_core.timeframes import timeframe_ms

st.title("Markets & regimes")
p = da.paths()
OVERLAYS = {"SMA fast": "sma_fast", "SMA slow": "sma_slow", "EMA fast": "ema_fast", "EMA slow": "ema_slow",
            "Bollinger upper": "bb_upper", "Bollinger mid": "bb_mid", "Bollinger lower": "bb_lower",
            "Support": "support", "Resistance": "resistance"}
PANELS = {"RSI": "rsi", "MACD histogram": "macd_hist", "ADX": "adx", "Volatility percentile": "rvol_pct"}

series, source = da.series(p)
chart_tab, quality_tab = st.tabs(["Chart", "Data quality & quarantine"])

with chart_tab, ui.guard("chart"):
    if not series:
        ui.empty("No market data yet — `trading ingest sample` loads the offline history.")
    else:
        keys = [(s["venue"], s["symbol"], s["timeframe"]) for s in series]
        c = st.columns([2, 1, 2, 2])
        pick = c[0].selectbox("Series", keys, format_func=lambda k: f"{k[1]} · {k[2]} · {k[0]}", key="mkt_series")
        n_bars = c[1].selectbox("Bars", [250, 500, 1000, 2000, 5000], index=1, key="mkt_bars")
        overlays = c[2].multiselect("Indicators", list(OVERLAYS), default=["SMA fast", "SMA slow"], key="mkt_overlays")
        panel = c[3].selectbox("Lower panel", list(PANELS), key="mkt_panel")
        shade = st.toggle("shade regimes", value=True, key="mkt_shade")
        venue, symbol, tf = pick
        last = next(s["last_ts"] for s in series if (s["venue"], s["symbol"], s["timeframe"]) == pick)
        # calendar slack: equity bars skip weekends and holidays, so ask for ~1.6x the span
        start = last - timedelta(milliseconds=timeframe_ms(tf) * n_bars * (1.6 if tf == "1d" else 1.05))
        b = da.bars(p, venue, symbol, tf, start, None).tail(n_bars)
        f = da.features(p, venue, symbol, tf, start, None)
        r = da.regimes(p, venue, symbol, tf, start, None)
        if b.height == 0:
            ui.empty(f"No bars of {symbol} {tf} in the window.")
        else:
            first_ts = b["ts"][0]
            f = f.filter(f["ts"] >= first_ts) if f.height else f
            r = r.filter(r["ts"] >= first_ts) if r.height else r
            fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.75, 0.25], vertical_spacing=0.03)
            fig.add_trace(go.Candlestick(x=b["ts"].to_list(), open=b["open"].to_list(), high=b["high"].to_list(),
                                         low=b["low"].to_list(), close=b["close"].to_list(), name=symbol), row=1, col=1)
            for name in overlays:
                col = OVERLAYS[name]
                if f.height and col in f.columns:
                    fig.add_trace(go.Scatter(x=f["ts"].to_list(), y=f[col].to_list(), name=name, mode="lines",
                                             line={"width": 1.2}), row=1, col=1)
            pcol = PANELS[panel]
            if f.height and pcol in f.columns:
                fig.add_trace(go.Scatter(x=f["ts"].to_list(), y=f[pcol].to_list(), name=panel, mode="lines",
                                         line={"color": "#6e40c9", "width": 1.2}), row=2, col=1)
            spans = regime_spans(r) if shade and r.height else []
            bar = timedelta(milliseconds=timeframe_ms(tf))
            for s0, s1, label in spans:
                fig.add_vrect(x0=s0, x1=s1 + bar, fillcolor=ui.REGIME_COLORS.get(label, "rgba(0,0,0,0.05)"),
                              line_width=0, layer="below", row=1, col=1)
            fig.update_layout(xaxis_rangeslider_visible=False)
            ui.plot(ui.chart_layout(fig, height=620), "mkt_chart")
            missing = [what for what, frame in (("indicators", f), ("regimes", r)) if frame.height == 0]
            if missing:
                ui.empty(f"No {' or '.join(missing)} stored for {symbol} {tf} yet (Dagster computes them after the "
                         "bars settle) — or compute them now: "
                         f"`trading features update --symbol '{symbol}' --venue {venue} --timeframe {tf}`. "
                         "They appear here within 15 s of being stored.")
            if spans:
                legend = " · ".join(f"{k.replace('_', ' ')}" for k in ui.REGIME_COLORS if any(s[2] == k for s in spans))
                last_regime = r["regime"][-1]
                st.caption(f"Regimes shaded: {legend}. Current regime: **{last_regime}** "
                           f"({len(spans)} spans in the window). Green = trending up, red = trending down, "
                           "grey = ranging, orange = high-volatility stress.")
        st.caption(f"Bars from the {source}.")

with quality_tab:
    with ui.guard("quality findings"):
        counts = da.quality_counts(p)
        st.subheader("Findings by rule")
        if counts.height:
            st.dataframe(counts, hide_index=True, width="stretch")
        else:
            st.success("No data-quality finding recorded.")
        issues = da.quality_issues(p)
        if issues.height:
            st.subheader("Latest findings")
            st.dataframe(issues, hide_index=True, width="stretch", height=300)
    with ui.guard("quarantine"):
        st.subheader("Quarantine")
        q = da.quarantine(p)
        if q.height:
            st.dataframe(q, hide_index=True, width="stretch", height=300)
            st.caption("Rows held back for review as received; they never reach market.bars.")
        else:
            st.success("No row in quarantine.")
    with ui.guard("ingest batches"):
        st.subheader("Ingest batches")
        batches = da.ingest_batches(p)
        if batches.height:
            st.dataframe(batches, hide_index=True, width="stretch", height=300)
        else:
            ui.empty("No ingest batch yet — `trading ingest sample`.")
