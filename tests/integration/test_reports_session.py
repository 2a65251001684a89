"""The HTML report of a real paper session (replay of the sample BTC/USD bars): its equity and
trades from the ledger, and the buy-and-hold benchmark."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from paper_support import PaperEnv, btc_request

from trading_core.analytics.report import render_report
from trading_core.analytics.report_data import session_report_data
from trading_core.paper.reports import session_events, trades_table


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> tuple[PaperEnv, str]:
    root = tmp_path_factory.mktemp("paper-report")
    env = PaperEnv(root / "data", root)
    sid = env.session(btc_request(end=datetime(2019, 2, 1, tzinfo=UTC)), name="btc-report")
    out = env.run(sid)
    assert out.state == "completed"
    return env, sid


def test_a_session_report_shows_its_ledger(session: tuple[PaperEnv, str]) -> None:
    from report_html_checks import facts, parse_report, table_with_header

    env, sid = session
    data = session_report_data(env.store, env.ledger, env.warehouse, sid)
    with env.ledger.connect(read_only=True) as con:
        eq = env.ledger.equity(con, sid)
    assert data.equity.size == eq["bar_index"].n_unique() and data.equity[-1] == pytest.approx(
        float(eq.filter(eq["bar_index"] == eq["bar_index"].max())["equity"].sum()))
    assert data.benchmark is not None and data.metrics["benchmark_return"] is not None
    trades = trades_table(session_events(env.ledger, sid))
    page = render_report(data, inline_js=False)
    p = parse_report(page)
    assert p.title == f"Paper session {sid}"
    kv = facts(p)
    assert kv["name"] == "btc-report" and kv["state"] == "completed" and kv["symbols"] == "BTC/USD"
    rows = table_with_header(p, "symbol")  # the trade list (by-asset is headed the same: the longest)
    assert len(rows) - 1 in (trades.height, 1)
    assert "Alerts" in p.headings and "Monthly returns" in p.headings


def test_an_unknown_session_says_how_to_list_them(tmp_path: Path, session: tuple[PaperEnv, str]) -> None:
    from trading_core.errors import InvalidInput

    env, _ = session
    with pytest.raises(InvalidInput, match="trading paper list"):
        session_report_data(env.store, env.ledger, env.warehouse, "ps-0123456789ab")
