"""T10 under a real ``dagster-daemon``: the requests sensor launches the session's run, its worker
is SIGKILLed mid-session, the supervisor launches the next generation, which resumes from the
checkpoint, and the finished ledger equals an uninterrupted run's of the same session config.

Slow (about a minute and a half). The daemon runs with a temporary DAGSTER_HOME holding the
project's dagster.yaml (the paper tag limits, run monitoring) with shorter poll intervals,
and a code location holding only the paper job, its two sensors and the real resources (the
ingest and automation sensors would launch catch-up runs against the test warehouse and compete
for the two cores this runs on). The supervisor's tick is shortened through
``TRADING_PAPER_SUPERVISOR_INTERVAL_S``; the session's own ``stale_after_s`` is the threshold.

What kills the worker: the pid the op records as the run tag ``trading/worker_pid`` (the
default launcher's run worker is a ``multiprocessing`` child of the code server whose command
line does not name the run), checked to be a descendant of the daemon before it is killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
import yaml
from paper_support import FakeTime, PaperEnv, btc_request

from pipelines.defs.trading.jobs import PID_TAG, TRIGGER_TAG
from trading_core.config import PROJECT_ROOT

pytestmark = pytest.mark.slow
SID = "ps-00000000da10"
SPEED, HEARTBEAT_S, STALE_S = 20.0, 1.0, 10.0  # 1008 bars at 20/s: a 50 s session
SUPERVISOR_S = 5  # the supervisor's tick here (30 s by default)
KILL_AT_BAR = 100
# a dead worker is replaced within: the heartbeat going stale + one supervisor tick + the sensor
# loop (5 s) + the queue's dequeue + a run worker's start (imports, lease, rebuild); measured ~20 s
TAKEOVER_BOUND_S = STALE_S + SUPERVISOR_S + 5 + 30


def _location(tmp: Path) -> Path:
    """A workspace with one code location: the paper definitions of ``pipelines`` and nothing else."""
    (tmp / "paper_location.py").write_text(textwrap.dedent("""
        import dagster as dg

        from pipelines.defs.resources import MarketDataResource, PaperResource, TradingConfigResource
        from pipelines.defs.trading.jobs import paper_trading_job
        from pipelines.defs.trading.sensors import paper_requests_sensor, paper_supervisor_sensor

        config = TradingConfigResource()
        defs = dg.Definitions(
            jobs=[paper_trading_job], sensors=[paper_requests_sensor, paper_supervisor_sensor],
            resources={"paper": PaperResource(trading_config=config, market_data=MarketDataResource())})
    """))
    ws = tmp / "workspace.yaml"
    ws.write_text(yaml.safe_dump({"load_from": [{"python_file": {
        "relative_path": str(tmp / "paper_location.py"), "working_directory": str(PROJECT_ROOT),
        "location_name": "trading"}}]}))
    return ws


def _dagster_home(home: Path) -> Path:
    """The project's dagster.yaml with short polling (the limits and monitoring kept as they are)."""
    home.mkdir()
    cfg = yaml.safe_load((PROJECT_ROOT / "dagster_home" / "dagster.yaml").read_text())
    assert cfg["run_monitoring"]["enabled"] is True
    assert {t["key"] for t in cfg["concurrency"]["runs"]["tag_concurrency_limits"]} >= {"trading/loop"}
    cfg["run_monitoring"].update(poll_interval_seconds=5, start_timeout_seconds=60)
    cfg["run_queue"] = {"dequeue_interval_seconds": 1}
    (home / "dagster.yaml").write_text(yaml.safe_dump(cfg))
    return home


def _is_descendant(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # the field after the (comm) is state, then ppid
    return False


def _wait(what: str, cond: Callable[[], object], timeout: float, env: PaperEnv) -> object:
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; status: {env.store.status(SID)}")


def test_a_killed_run_worker_is_replaced_and_the_ledger_equals_the_reference(
        tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    cache = tmp_path_factory.getbasetemp()
    request = btc_request(start=datetime(2019, 2, 1, tzinfo=UTC), end=datetime(2019, 3, 15, tzinfo=UTC))
    kw = {"speed": SPEED, "heartbeat_s": HEARTBEAT_S, "stale_after_s": STALE_S}
    # the reference: the same session config, uninterrupted, in this process (a fake clock paces it;
    # ~40 s of one commit per bar, so it runs in a thread while the daemon does its part)
    ref = PaperEnv(tmp_path / "reference", cache)
    ref.session(request, session_id=SID, **kw)
    ft = FakeTime()
    pool = ThreadPoolExecutor(1)
    reference = pool.submit(lambda: ref.run(SID, clock=ft.clock, sleep=ft.sleep))

    env = PaperEnv(tmp_path / "data", cache)
    env.session(request, session_id=SID, **kw)  # its start request waits for the sensor
    home = _dagster_home(tmp_path / "dagster_home")
    penv = {**os.environ, "DAGSTER_HOME": str(home), "TRADING_DATA_DIR": str(env.root),
            "TRADING_WAREHOUSE": str(env.warehouse.path), "TRADING_PAPER_SUPERVISOR_INTERVAL_S": str(SUPERVISOR_S),
            "TRADING_PAPER_REQUESTS_INTERVAL_S": "1"}
    log = (tmp_path / "daemon.log").open("wb")
    t0 = time.time()
    daemon = subprocess.Popen([str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w",
                               str(_location(tmp_path))], env=penv, cwd=PROJECT_ROOT, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        first = _wait(f"the sensor-launched run to trade {KILL_AT_BAR} bars", lambda: (
            (st := env.store.status(SID) or {}).get("state") == "running"
            and int(st.get("bars_processed") or 0) >= KILL_AT_BAR and st), 150, env)
        assert isinstance(first, dict)
        t_first = time.time() - t0
        run = instance.get_run_by_id(first["run_id"])
        assert run is not None and run.tags[TRIGGER_TAG] == "request" and run.tags.get("dagster/run_key") in (
            None, f"{SID}-r000001")
        pid = int(run.tags[PID_TAG])
        assert _is_descendant(pid, daemon.pid), f"pid {pid} is not a process of this daemon"
        os.kill(pid, signal.SIGKILL)
        killed_at = time.time()
        killed_bar = int((env.store.status(SID) or {}).get("bars_processed") or 0)

        second = _wait("the next generation", lambda: (
            int((st := env.store.status(SID) or {}).get("generation") or 0) >= 2 and st), TAKEOVER_BOUND_S + 30, env)
        assert isinstance(second, dict)
        takeover_s = time.time() - killed_at
        new_run = instance.get_run_by_id(second["run_id"])
        record = instance.get_run_record_by_id(second["run_id"])
        assert record is not None
        launched_s = record.create_timestamp.timestamp() - killed_at  # the supervisor's RunRequest
        assert new_run is not None and new_run.tags[TRIGGER_TAG] == "supervisor"
        assert new_run.tags["trading/generation"] == "2" and new_run.tags["trading/request_id"] == f"{SID}-r000001"
        old = instance.get_run_by_id(first["run_id"])
        assert old is not None and old.status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)

        _wait("the session to complete", lambda: (env.store.status(SID) or {}).get("state") == "completed", 120, env)
        t_done = time.time() - t0
        done = _wait("the last run to end", lambda: (r := instance.get_run_by_id(second["run_id"])) is not None
                     and r.is_finished and r, 30, env)
        assert isinstance(done, dg.DagsterRun) and done.status == dg.DagsterRunStatus.SUCCESS and done.tags["trading/outcome"] == "completed"
        runs = instance.get_runs(filters=dg.RunsFilter(tags={"trading/session_id": SID}))
        assert len(runs) == 2  # one per request, one per takeover: nothing launched twice
    finally:
        try:
            os.killpg(daemon.pid, signal.SIGTERM)
            daemon.wait(20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait(10)
        instance.dispose()
        log.close()
    assert reference.result(timeout=120).state == "completed"
    pool.shutdown()
    counts = env.counts(SID)
    assert counts["rows"] == counts["ids"] and counts["fills"] > 0  # no duplicate event
    assert counts == ref.counts(SID)
    assert env.ledger_hash(SID) == ref.ledger_hash(SID)  # byte-identical events (provenance aside)
    with env.ledger.connect(read_only=True) as con:
        ev = env.ledger.events(con, SID)
    reconstructed = int(ev["reconstructed"].sum())
    print(f"\nT10 (daemon): first run trading after {t_first:.1f}s; worker killed at bar {killed_bar}; "
          f"generation 2 requested {launched_s:.1f}s and published {takeover_s:.1f}s after the kill (old run "
          f"{old.status.value}); "
          f"{reconstructed} events caught up as reconstructed; completed {t_done:.1f}s after the daemon started; "
          f"{counts['fills']} fills, ledger hash equal to the reference")
    assert takeover_s <= TAKEOVER_BOUND_S, f"takeover took {takeover_s:.1f}s (bound {TAKEOVER_BOUND_S}s)"
