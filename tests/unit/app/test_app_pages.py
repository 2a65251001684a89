"""Every page of the monitoring app under AppTest, on a seeded data directory and on an empty one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from app_support import Seeded
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[3] / "streamlit_app" / "app.py")
PAGES = ("overview", "paper_trading", "sessions_backtests", "markets", "models", "stress")


def _app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    return at


def _page(at: AppTest, page: str) -> AppTest:
    at.switch_page(f"app_pages/{page}.py").run()
    return at


def _text(at: AppTest) -> str:
    parts = [str(e.value) for kind in ("markdown", "caption", "info", "success", "error", "warning", "title",
                                       "subheader") for e in getattr(at, kind)]
    return "\n".join(parts)


def _frames(at: AppTest) -> list:
    return [d.value for d in at.dataframe]


def _shown(at: AppTest, text: str) -> bool:
    """``text`` appears in some cell or column name of a table on the page."""
    return any(text in f.astype(str).to_csv() for f in _frames(at))


def test_overview_shows_freshness_batches_findings_alerts_and_sessions(seeded: Seeded) -> None:
    at = _app()
    assert not at.exception and not at.error
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Series stored"] == "4"  # BTC/USD, ETH/USD, ^GSPC, ^VIX
    assert int(metrics["Bars stored"].replace(",", "")) > 20_000
    assert int(next(v for k, v in metrics.items() if k.startswith("Warning alerts"))) > 0  # the seeded replay tripped breakers
    assert metrics["Active sessions (of 2)"] == "1"  # the requested one; the replay has completed
    assert seeded.pending in _text(at)
    frames = _frames(at)
    assert _shown(at, "ohlc.high_below_low")  # the seeded finding, counted
    alerts = next(f for f in frames if "kind" in f.columns and "severity" in f.columns)
    assert "BreakerTripped" in set(alerts["kind"]) and set(alerts["session"]) == {seeded.completed}


def test_overview_shows_latest_runs_failures_and_checks_failing_first(seeded: Seeded) -> None:
    at = _app()
    assert not at.exception and not at.error
    frames = _frames(at)
    runs = next(f for f in frames if "job" in f.columns and "duration (s)" in f.columns)
    status = dict(zip(runs["job"], runs["status"], strict=True))
    assert status == {"prices_job": "🟢 SUCCESS", "broken_job": "🔴 FAILURE"}
    assert "s-health-1" in set(runs["session"])
    failures = next(f for f in frames if "failing step" in f.columns)
    assert list(failures["failing step"]) == ["explode"]
    assert "provider answered 503" in failures["message"].iloc[0]
    assert any("1 run(s) failed in the last 24 h" in w.value for w in at.warning)
    checks = next(f for f in frames if "name" in f.columns and "severity" in f.columns)
    assert list(checks["name"]) == ["no_gaps", "rows_positive"]  # the warning first
    assert list(checks["check"]) == ["🟠 warning", "🟢 passed"]
    assert any(c.value.startswith("as of ") for c in at.caption)


def test_paper_trading_lists_sessions_and_shows_the_selected_one_live(seeded: Seeded) -> None:
    at = _page(_app(), "paper_trading")
    assert not at.exception and not at.error
    assert at.selectbox(key="session_pick").value == seeded.completed  # nothing runs: the latest that traded
    metrics = {m.label: m.value for m in at.metric}
    assert "completed" in metrics["State"]
    assert metrics["Bars"] == "744 / 744"
    assert float(metrics["Equity"].replace(",", "")) > 0
    assert at.get("plotly_chart"), "the portfolio chart"
    names = {t.get("name") for c in at.get("plotly_chart") for t in json.loads(c.proto.spec)["data"]}
    assert "buy & hold BTC/USD" in names, names  # the benchmark names the symbol it holds
    assert _shown(at, "OrderFilled")  # the activity panel
    assert _shown(at, "entry allowed")  # a signal verdict with its reason
    assert _shown(at, "reduce_only")  # a risk denial's reason
    assert _shown(at, "fill_id")
    at.selectbox(key="session_pick").set_value(seeded.pending).run()
    assert not at.exception and not at.error
    assert "No bar traded yet" in _text(at)


def test_sessions_and_backtests_compares_side_by_side_with_exports(seeded: Seeded) -> None:
    at = _page(_app(), "sessions_backtests")
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert "total_return" in list(table["metric"])
    assert any("bt-seede" in c for c in table.columns) and any(seeded.completed in c for c in table.columns)
    final = table[table["metric"] == "final_equity"].iloc[0]
    shown = [c for c in table.columns if seeded.completed in c or "bt-seede" in c]
    assert len(shown) == 2 and all(float(final[c].replace(",", "")) > 0 for c in shown)
    assert not any(seeded.pending in c for c in table.columns)  # never traded: not picked by default
    at.multiselect(key="cmp_sessions").select(seeded.pending).run()
    table = at.dataframe[0].value
    pending = next(c for c in table.columns if seeded.pending in c)
    assert table[table["metric"] == "final_equity"].iloc[0][pending] == ""  # blank, not a made-up number
    labels = [b.label for b in at.get("download_button")]
    assert "Comparison (CSV)" in labels and "Comparison (JSON)" in labels


def test_markets_draws_candles_with_regimes_and_quality_tables(seeded: Seeded) -> None:
    at = _page(_app(), "markets")
    assert not at.exception and not at.error
    assert at.get("plotly_chart")
    assert "Current regime" in _text(at)
    assert _shown(at, "high_below_low")  # findings and quarantine
    assert _shown(at, "ETH/USD")


@pytest.mark.parametrize("page", ["models", "stress"])
def test_models_and_stress_say_how_to_produce_their_data(seeded: Seeded, page: str) -> None:
    at = _page(_app(), page)
    assert not at.exception and not at.error
    assert "trading" in "\n".join(i.value for i in at.info)


def test_every_page_on_an_empty_data_dir_shows_empty_states(empty_dir: Path) -> None:
    at = _app()
    for page in PAGES:
        _page(at, page)
        assert not at.exception, page
        assert not at.error, (page, [e.value for e in at.error])
        assert at.info or at.success, page
    assert "No session yet" in _text(_page(at, "paper_trading"))
    assert "Dagster has not reported yet" in _text(_page(at, "overview"))
    assert not any(empty_dir.iterdir()), "reading an empty data dir creates nothing"


def test_a_broken_configuration_is_a_message_not_a_traceback(empty_dir: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("data_dir: data\nwarehouse: {pth: x}\n")
    monkeypatch.setenv("TRADING_CONFIG", str(bad))
    at = _app()
    assert not at.exception
    assert any("bad.yaml" in e.value for e in at.error)


def test_models_page_charts_the_selected_versions_shap_summary(models_seeded: tuple[Seeded, dict],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import streamlit as st

    s, reg = models_seeded
    monkeypatch.setenv("TRADING_DATA_DIR", str(s.root))
    st.cache_data.clear()
    at = _page(_app(), "models")
    assert not at.exception and not at.error
    pick = at.selectbox(key="mdl_shap_version")
    assert pick.value == (reg["name"], reg["champion"])  # the champion by default
    chart = next(c for c in at.get("plotly_chart") if "mean |SHAP|" in c.proto.spec)
    import base64

    import numpy as np

    bars = json.loads(chart.proto.spec)["data"][0]
    x = bars["x"] if isinstance(bars["x"], list) else np.frombuffer(base64.b64decode(bars["x"]["bdata"]), "<f8")
    assert len(bars["y"]) == len(x) > 5 and list(x) == sorted(x)  # highest impact drawn on top
    assert any("mean absolute SHAP" in c.value for c in at.caption)
    pick.set_value((reg["name"], reg["champion"] + 1)).run()
    assert not at.exception and not at.error
    assert any("No SHAP summary stored" in i.value for i in at.info)


def test_session_list_shows_a_state_change_made_elsewhere_on_its_next_refresh(seeded: Seeded) -> None:
    """The list is its own ``st.fragment(run_every=2s)`` over a 2 s cache: a stop requested from
    the CLI shows on the next refresh, with no cache clear and no click in the app. (AppTest
    cannot fire a fragment's timer, so the refresh here is the rerun the timer would make.)"""
    import time

    from trading_core.paper.control import SessionStore

    at = _page(_app(), "paper_trading")

    def row() -> dict:
        table = next(f for f in _frames(at) if "desired" in f.columns)
        return table[table["session"] == seeded.pending].iloc[0].to_dict()

    assert row()["desired"] == "running"
    SessionStore(seeded.root / "paper").request(seeded.pending, "stop", source="cli")
    time.sleep(2.1)  # the list's refresh period
    at.run()
    assert not at.exception and not at.error
    assert row()["desired"] == "stopped"
    at.selectbox(key="session_pick").set_value(seeded.pending).run()
    assert at.button(key="req_stop").disabled  # the live panel's controls follow the new state


def test_markets_names_the_command_when_a_series_has_no_features_yet(seeded: Seeded) -> None:
    at = _page(_app(), "markets")
    at.selectbox(key="mkt_series").set_value(("coinbase", "ETH/USD", "1h")).run()  # bars only, never featurised
    assert not at.exception and not at.error
    assert at.get("plotly_chart"), "the candles still show"
    msg = next(i.value for i in at.info if "No indicators or regimes stored for ETH/USD" in i.value)
    assert "trading features update --symbol 'ETH/USD' --venue coinbase --timeframe 1h" in msg


def test_stress_shows_a_crisis_run_with_monte_carlo_and_what_its_outcome_is_sensitive_to(seeded: Seeded) -> None:
    """A `trading stress --paths N` / Dagster stress run (kind crisis+montecarlo) fills both the
    survival and the Monte Carlo sections."""
    from trading_core.config import load_config
    from trading_core.stress.suite import run_stress, select_crises
    from trading_core.warehouse import Warehouse

    cfg = load_config().model_copy(update={"data_dir": seeded.root})
    run_stress(cfg, Warehouse(seeded.root / "warehouse.duckdb"), crises=select_crises(cfg.stress, ["q4_selloff_2018"]),
               symbol="^GSPC", venue="yahoo", montecarlo=True, paths=20, persist=True, figures=False)
    at = _page(_app(), "stress")
    assert not at.exception and not at.error
    assert "What the outcome is sensitive to" in _text(at)
    survival = next(f for f in _frames(at) if "survived" in f.columns)
    assert set(survival["crisis"]) == {"q4_selloff_2018"}
    assert next(f for f in _frames(at) if "prob_ruin" in f.columns)["paths"].tolist() == [20]
    table = next(f for f in _frames(at) if "assumption" in f.columns)
    assert set(table["assumption"]) == {"slippage_bps", "fee_bps", "latency_ms", "fill_prob"}
    fee = table[table["assumption"] == "fee_bps"]
    assert fee["rank corr with return"].notna().all()  # drawn per path, so it ranks against the returns
    assert table[table["assumption"] == "latency_ms"]["rank corr with return"].isna().all()  # fixed by default
