"""Sessions, the append-only request log and the published status (the control plane)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from paper_support import btc_request

from trading_core.errors import InvalidInput
from trading_core.paper.config import SessionConfig, check_session_id, new_session_id
from trading_core.paper.control import SessionStore, desired_state


def _store(tmp_path: Path) -> tuple[SessionStore, str]:
    store = SessionStore(tmp_path / "paper")
    sid, req = store.create(SessionConfig(name="t", request=btc_request()))
    assert req.action == "start" and req.request_id == f"{sid}-r000001"
    return store, sid


def test_requests_are_appended_never_rewritten_and_fold_to_the_desired_state(tmp_path: Path) -> None:
    store, sid = _store(tmp_path)
    assert store.desired(sid) == "running"
    store.request(sid, "pause")
    assert store.desired(sid) == "paused"
    store.request(sid, "resume", source="app")
    assert store.desired(sid) == "running"
    store.request(sid, "stop")
    assert store.desired(sid) == "stopped"
    reqs = store.requests(sid)
    assert [r.action for r in reqs] == ["start", "pause", "resume", "stop"]
    assert [r.seq for r in reqs] == [1, 2, 3, 4] and reqs[2].source == "app"
    with pytest.raises(InvalidInput, match="stopped"):
        store.request(sid, "resume")  # a stop is final
    assert len(store.requests(sid)) == 4


def test_two_writers_of_the_same_sequence_number_both_land(tmp_path: Path) -> None:
    store, sid = _store(tmp_path)
    # a writer that read the log before another one wrote: the exclusive link makes it take seq 3
    (store.requests_dir(sid) / "000002.json").write_text(json.dumps(
        {"request_id": f"{sid}-r000002", "session_id": sid, "seq": 2, "action": "pause", "source": "app",
         "requested_at": 0.0, "reason": ""}))
    original = store.requests
    store.requests = lambda s: original(s)[:1]  # type: ignore[method-assign]
    r = store.request(sid, "resume")
    store.requests = original  # type: ignore[method-assign]
    assert r.seq == 3 and [q.action for q in store.requests(sid)] == ["start", "pause", "resume"]


@pytest.mark.parametrize("bad", ["", "ps-", "ps-XYZ000000000", "../ps-000000000000", "ps-000000000000\n",
                                 "ps-0000000000001", "ps-00000000000g"])
def test_malformed_session_ids_are_refused_before_any_path_is_built(bad: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="session id"):
        check_session_id(bad)
    with pytest.raises(InvalidInput):
        SessionStore(tmp_path).request(bad, "stop")


def test_unknown_actions_and_sessions_are_clear_errors(tmp_path: Path) -> None:
    store, sid = _store(tmp_path)
    with pytest.raises(InvalidInput, match="expected one of"):
        store.request(sid, "restart")
    with pytest.raises(InvalidInput, match="no paper session"):
        store.request(new_session_id("other"), "stop")
    with pytest.raises(InvalidInput, match="already started"):
        store.request(sid, "start")


def test_status_is_swapped_in_whole_and_sessions_list_oldest_first(tmp_path: Path) -> None:
    store, a = _store(tmp_path)
    b, _ = store.create(SessionConfig(name="u", request=btc_request()))
    assert store.session_ids() == [a, b]
    assert store.status(a) is None
    store.write_status(a, {"state": "running", "bars_processed": 3})
    assert store.status(a) == {"state": "running", "bars_processed": 3}
    assert not list((tmp_path / "paper" / "sessions" / a).glob(".*.tmp"))


def test_session_config_round_trips_and_rejects_a_heartbeat_slower_than_the_stale_limit() -> None:
    c = SessionConfig(name="x", request=btc_request(), speed=5)
    assert SessionConfig.from_json(c.to_json()) == c
    assert c.config_hash() == SessionConfig(name="other-name", request=btc_request(), speed=5).config_hash()
    with pytest.raises(ValueError, match="heartbeat"):
        SessionConfig(request=btc_request(), heartbeat_s=20, stale_after_s=30)
    with pytest.raises(ValueError, match="name"):
        SessionConfig(name="../x", request=btc_request())


def test_desired_state_of_no_request_is_new() -> None:
    assert desired_state([]) == "new"
