"""The supervisor's decisions: chain a hand-over, replace a dead run, never launch twice, give up."""

from __future__ import annotations

from datetime import UTC, datetime

from trading_core.paper.control import Request
from trading_core.paper.supervision import RunInfo, SupervisionPolicy, is_stale, next_run_key, supervise

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
