"""What the app writes: one start request per start, stop/pause/resume requests, and nothing else;
hostile input is refused with a message before anything is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from app_support import Seeded
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[3] / "streamlit_app" / "app.py")


def _files(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def _paper_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("app_pages/paper_trading.py").run()
    assert not at.exception
    return at


def test_start_button_writes_exactly_one_start_request_and_nothing_else(seeded: Seeded) -> None:
    at = _paper_page()
    before = _files(seeded.root)
    at.selectbox(key="start_template").set_value("btc-ma-crossover").run()
    at.text_input(key="start_name").set_value("from-the-app")
    at.button(key="start_go").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    after = _files(seeded.root)
    new = sorted(set(after) - set(before))
    changed = [k for k in before if after.get(k) != before[k]]
    assert changed == []
    assert len(new) == 2, new
    sid = new[0].split("/")[2]
    assert new == [f"paper/sessions/{sid}/requests/000001.json", f"paper/sessions/{sid}/session.json"]
    req = json.loads((seeded.root / new[0]).read_text())
    assert req["action"] == "start" and req["source"] == "app" and req["session_id"] == sid
    config = json.loads((seeded.root / new[1]).read_text())["config"]
    assert config["name"] == "from-the-app" and config["request"]["symbol"] == "BTC/USD"
    assert config["template"] == "btc-ma-crossover" and config["request"]["risk"] is not None
    assert any(sid in s.value for s in at.success)
    assert at.selectbox(key="session_pick").value == sid  # the new session is the one watched


def test_preflight_only_shows_every_check_and_writes_nothing(seeded: Seeded) -> None:
    at = _paper_page()
    before = _files(seeded.root)
    at.button(key="start_check").click().run()
    assert not at.exception and not at.error
    assert any("Pre-flight passed" in s.value for s in at.success)
    checks = at.dataframe[0].value
    assert set(checks["name"]) == {"data", "quality", "model", "risk", "engine", "disk"} and checks["ok"].all()
    assert _files(seeded.root) == before


def test_a_refused_preflight_lists_the_reasons_and_writes_nothing(seeded: Seeded) -> None:
    at = _paper_page()
    before = _files(seeded.root)
    at.selectbox(key="start_template").set_value("btc-ma-crossover").run()
    at.text_input(key="start_symbols").set_value("ETH/USD")  # stored, but outside the default window
    at.text_input(key="start_start").set_value("2019-01-01")
    at.text_input(key="start_end").set_value("2019-02-01")
    at.button(key="start_go").click().run()
    assert not at.exception
    assert any("Refused by the pre-flight" in e.value and "ETH/USD" in e.value for e in at.error)
    assert _files(seeded.root) == before


@pytest.mark.parametrize(("field", "value", "message"), [
    ("start_symbols", "BTC/USD'; DROP TABLE market.bars; --", "invalid symbol"),
    ("start_symbols", "../../etc/passwd", "invalid symbol"),
    ("start_symbols", "<script>alert(1)</script>", "invalid symbol"),
    ("start_venue", "coinbase; rm -rf /", "invalid venue"),
    ("start_name", "../../evil", "name"),
    ("start_params", "fast=10; __import__('os')", "parameters"),
    ("start_speed", "fast", "speed"),
])
def test_hostile_input_is_refused_with_a_message_and_writes_nothing(seeded: Seeded, field: str, value: str,
                                                                   message: str) -> None:
    at = _paper_page()
    before = _files(seeded.root)
    at.selectbox(key="start_template").set_value("btc-ma-crossover").run()
    at.text_input(key=field).set_value(value)
    at.button(key="start_go").click().run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and message in errors[0].lower() and "Traceback" not in errors[0], errors
    assert _files(seeded.root) == before


def test_pause_resume_and_stop_append_requests_for_the_selected_session(seeded: Seeded) -> None:
    at = _paper_page()
    at.selectbox(key="session_pick").set_value(seeded.pending).run()
    for action in ("pause", "resume", "stop"):
        at.button(key=f"req_{action}").click().run()
        assert not at.exception and not at.error, (action, [e.value for e in at.error])
    reqs = sorted((seeded.root / "paper" / "sessions" / seeded.pending / "requests").glob("*.json"))
    docs = [json.loads(p.read_text()) for p in reqs]
    assert [(d["seq"], d["action"], d["source"]) for d in docs] == [
        (1, "start", "cli"), (2, "pause", "app"), (3, "resume", "app"), (4, "stop", "app")]
    assert at.button(key="req_resume").disabled and at.button(key="req_pause").disabled  # a stop is final
