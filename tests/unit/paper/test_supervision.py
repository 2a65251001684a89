"""The supervisor's decisions: chain a hand-over, replace a dead run, never launch twice, give up."""

from __future__ import annotations

from datetime import UTC, datetime

from trading_core.paper.control import Request
from trading_core.paper.supervision import (
    RunInfo,
    SupervisionPolicy,
    is_finished,
    is_stale,
    next_run_key,
    pending_request,
    request_stamps,
    session_universe,
    supervise,
)

SID = "ps-0123456789ab"
NOW = 1_800_000_000.0
POLICY = SupervisionPolicy(stale_after_s=30)


def _req(seq: int, action: str) -> Request:
    return Request(f"{SID}-r{seq:06d}", SID, seq, action, "cli", NOW - 1000 + seq)


def _status(age: float, run_id: str = "r1", state: str = "running", gen: int = 1) -> dict[str, object]:
    return {"state": state, "run_id": run_id, "generation": gen,
            "heartbeat_ts": datetime.fromtimestamp(NOW - age, tz=UTC).isoformat()}


def _run(run_id: str, phase: str, outcome: str | None = None, **kw: object) -> RunInfo:
    return RunInfo(run_id=run_id, phase=phase, created_at=NOW - 500, start_time=NOW - 490,  # type: ignore[arg-type]
                   request_id=f"{SID}-r000001", outcome=outcome, **kw)  # type: ignore[arg-type]


def test_a_healthy_run_is_left_alone() -> None:
    d = supervise(SID, requests=[_req(1, "start")], status=_status(2), runs=[_run("r1", "started")],
                  policy=POLICY, now=NOW)
    assert not d.launch and not d.cancel and "healthy" in d.reason


def test_a_started_run_with_a_stale_heartbeat_is_cancelled_and_replaced() -> None:
    d = supervise(SID, requests=[_req(1, "start")], status=_status(90), runs=[_run("r1", "started")],
                  policy=POLICY, now=NOW)
    assert d.cancel == ("r1",) and d.launch and d.run_key == f"{SID}:g2" and d.generation == 2


def test_a_run_that_handed_over_is_chained() -> None:
    d = supervise(SID, requests=[_req(1, "start")], status=_status(1), runs=[_run("r1", "succeeded", "chained")],
                  policy=POLICY, now=NOW)
    assert d.launch and d.run_key == f"{SID}:g2" and "budget" in d.reason


def test_finished_paused_or_user_terminated_sessions_are_not_restarted() -> None:
    done = supervise(SID, requests=[_req(1, "start")], status=_status(1, state="completed"),
                     runs=[_run("r1", "succeeded", "completed")], policy=POLICY, now=NOW)
    paused = supervise(SID, requests=[_req(1, "start"), _req(2, "pause")], status=_status(100),
                       runs=[_run("r1", "succeeded", "paused")], policy=POLICY, now=NOW)
    killed = supervise(SID, requests=[_req(1, "start")], status=_status(100), runs=[_run("r1", "canceled")],
                       policy=POLICY, now=NOW)
    assert not done.launch and not paused.launch and not killed.launch and killed.gave_up


def test_repeated_failures_stop_the_restarts() -> None:
    runs = [RunInfo(f"r{k}", "failed", NOW - 100 * k, request_id=f"{SID}-r000001") for k in range(1, 4)]
    d = supervise(SID, requests=[_req(1, "start")], status=_status(100), runs=runs, policy=POLICY, now=NOW)
    assert not d.launch and d.gave_up and "3 runs" in d.reason


def test_run_keys_and_staleness() -> None:
    assert next_run_key(SID, 3) == f"{SID}:g3" and next_run_key(SID, 3, 1) == f"{SID}:g3:a2"
    assert is_stale(None, 30, NOW) and is_stale(_status(31), 30, NOW) and not is_stale(_status(29), 30, NOW)


def test_a_zombie_is_cancelled_whatever_the_desired_state_but_nothing_is_launched() -> None:
    d = supervise(SID, requests=[_req(1, "start"), _req(2, "pause")], status=_status(90),
                  runs=[_run("r1", "started")], policy=POLICY, now=NOW)
    assert d.cancel == ("r1",) and not d.launch and d.settled


def test_a_run_that_never_published_gets_the_start_grace_then_is_replaced() -> None:
    early = supervise(SID, requests=[_req(1, "start")], status=None,
                      runs=[RunInfo("r1", "started", NOW - 20, start_time=NOW - 10, request_id=f"{SID}-r000001")],
                      policy=POLICY, now=NOW)
    late = supervise(SID, requests=[_req(1, "start")], status=None,
                     runs=[RunInfo("r1", "started", NOW - 200, start_time=NOW - 190, request_id=f"{SID}-r000001")],
                     policy=POLICY, now=NOW)
    assert not early.launch and not early.cancel and "healthy" in early.reason
    assert late.cancel == ("r1",) and late.launch and late.run_key == f"{SID}:g1" and "published nothing" in late.reason


def test_a_failed_run_is_replaced_only_once_its_heartbeat_is_stale() -> None:
    fresh = supervise(SID, requests=[_req(1, "start")], status=_status(3), runs=[_run("r1", "failed")],
                      policy=POLICY, now=NOW)
    stale = supervise(SID, requests=[_req(1, "start")], status=_status(31), runs=[_run("r1", "failed")],
                      policy=POLICY, now=NOW)
    assert not fresh.launch and "waiting" in fresh.reason  # a 'failed' run may still be alive (#15325)
    assert stale.launch and stale.run_key == f"{SID}:g2"


def test_a_generation_that_never_took_the_lease_is_retried_under_a_new_key() -> None:
    runs = [_run("r1", "failed"), RunInfo("r2", "failed", NOW - 100, request_id=f"{SID}-r000001", generation=2)]
    d = supervise(SID, requests=[_req(1, "start")], status=_status(100, gen=1), runs=runs,
                  policy=SupervisionPolicy(stale_after_s=30, max_failed_runs=5), now=NOW)
    assert d.launch and d.generation == 2 and d.run_key == f"{SID}:g2:a2"


def test_queued_runs_and_pending_requests_are_waited_for() -> None:
    queued = supervise(SID, requests=[_req(1, "start")], status=_status(100), runs=[_run("r1", "pending")],
                       policy=POLICY, now=NOW)
    resumed = supervise(SID, requests=[_req(1, "start"), _req(2, "pause"), _req(3, "resume")],
                        status=_status(100, state="paused"), runs=[_run("r1", "succeeded", "paused")],
                        policy=POLICY, now=NOW)
    assert not queued.launch and "queued" in queued.reason
    assert not resumed.launch and "requests sensor" in resumed.reason  # its run is the requests sensor's


def test_a_failed_status_older_than_a_resume_does_not_make_it_look_finished() -> None:
    old_failure = _status(999, state="failed")  # published before the resume (NOW - 997)
    assert is_finished(old_failure) and not is_finished(old_failure, since=NOW - 997)
    assert is_finished(_status(1, state="failed"), since=NOW - 997)


def test_pending_request_and_request_stamps(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from paper_support import btc_request

    from trading_core.paper.config import SessionConfig
    from trading_core.paper.control import SessionStore

    store = SessionStore(tmp_path)
    sid, start = store.create(SessionConfig(request=btc_request()))
    assert pending_request(store.requests(sid)) == start
    before = request_stamps(store)[sid]
    store.request(sid, "pause")
    assert pending_request(store.requests(sid)) is None and request_stamps(store)[sid] != before
    resume = store.request(sid, "resume")
    assert pending_request(store.requests(sid)) == resume
    assert list(request_stamps(SessionStore(tmp_path / "none"))) == []


def test_a_live_session_gets_the_configured_universe_of_its_venue() -> None:
    from paper_support import btc_request

    from trading_core.config import load_config
    from trading_core.paper.config import SessionConfig

    md = load_config().market_data
    u = session_universe(SessionConfig(request=btc_request(), feed="live"), md)
    assert (u.venue, u.timeframe, u.symbols, u.providers) == ("coinbase", "1h", ["BTC/USD"], ["ccxt", "sample"])
    other = session_universe(SessionConfig(request=btc_request(timeframe="1d"), feed="live"), md)
    assert other.timeframe == "1d" and other.providers == ["ccxt", "sample"] and other.asset_class == "crypto"
