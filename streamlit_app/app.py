"""The monitoring app: ``streamlit run streamlit_app/app.py`` (``trading up`` starts it).

A thin shell over ``trading_core``: each page in ``app_pages/`` reads through ``data_access``
(cached, read-only) and writes nothing but session requests (``actions``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

# `streamlit run streamlit_app/app.py` puts streamlit_app/ on sys.path, not the project root.
_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from streamlit_app import data_access as da  # noqa: E402
from streamlit_app import ui  # noqa: E402

st.set_page_config(page_title="Trading platform", page_icon="📈", layout="wide")

_PAGES = Path(__file__).parent / "app_pages"
pages = [
    st.Page(_PAGES / "overview.py", title="Overview", icon="🏠", default=True),
    st.Page(_PAGES / "paper_trading.py", title="Paper trading", icon="🤖"),
    st.Page(_PAGES / "sessions_backtests.py", title="Sessions & backtests", icon="⚖️"),
    st.Page(_PAGES / "markets.py", title="Markets & regimes", icon="🕯️"),
    st.Page(_PAGES / "models.py", title="Models", icon="🧠"),
    st.Page(_PAGES / "stress.py", title="Stress & stability", icon="🌪️"),
]
nav = st.navigation(pages, position="top")

with st.sidebar:
    st.markdown("### 📈 Trading platform")
    with ui.guard("configuration"):
        p = da.paths()
        st.caption(f"data: `{p.data_dir}`")
        if st.button("Refresh data", help="clear the cached reads and load everything again"):
            st.cache_data.clear()

with ui.guard(nav.title):
    nav.run()
