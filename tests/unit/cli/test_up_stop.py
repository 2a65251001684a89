"""``trading up`` stops every process of a service's group, including those that outlive the leader."""

from __future__ import annotations

import os
import subprocess
import time

from trading_core.cli.up import _reap_group


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by init) counts as gone
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[-1].split()[0] != "Z"


def test_a_group_that_outlives_its_leader_is_terminated() -> None:
    # the leader starts a child that ignores SIGINT/SIGTERM (like a server winding down), then exits
    leader = subprocess.Popen(
        ["bash", "-c", "trap '' INT TERM; sleep 120 & echo $!; exit 0"], stdout=subprocess.PIPE,
        start_new_session=True, text=True)
    assert leader.stdout is not None
    child = int(leader.stdout.readline())
    leader.wait(timeout=10)
    assert _alive(child)
    t0 = time.monotonic()
    _reap_group(leader.pid, grace_s=0.5)
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child)
    assert time.monotonic() - t0 < 5  # SIGTERM is ignored, so SIGKILL ended it after the graces


def test_an_empty_group_returns_at_once() -> None:
    p = subprocess.Popen(["true"], start_new_session=True)
    p.wait(timeout=10)
    t0 = time.monotonic()
    _reap_group(p.pid, grace_s=5)
    assert time.monotonic() - t0 < 1
