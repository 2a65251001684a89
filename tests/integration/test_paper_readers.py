"""Readers against the paper writer (reliability-and-security.md §8 T9, the ledger side).

A child process runs a replay session (the real BTC/USD 1h history) while readers poll the
ledger every 100 ms through the production read path, ``PaperLedger.connect(read_only=True)``
and a checkpoint + counts query: three threads of this process (the app's situation) and one
process of their own (the CLI's). The rule: no lock error reaches a reader (``connect``
retries conflicts up to its deadline). Reader latency p50/p99 and the writer's progress and
longest stall (from its status file) are printed (``-s``).

Negative control and premise: a reader that holds its connection stalls the writer, and a held
read-only connection keeps a second process from opening the file read-write (DuckDB's rule,
the reason every reader must be short).

Findings pinned here: at max speed readers are starved for seconds (the writer leaves the file
free only between closing and reopening it, ~once a second); a paced replay faster than 4
bars/s never closes its connection, so a reader cannot get in at all.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from paper_child import Child, poll_ledger, spawn
from paper_support import PaperEnv, btc_request

from trading_core.errors import WarehouseBusy
from trading_core.warehouse.paper import PaperLedger

SID = "ps-0000000000d9"
HISTORY = (datetime(2017, 8, 1, tzinfo=UTC), datetime(2019, 10, 1, tzinfo=UTC))  # ~19,000 bars of BTC/USD 1h
THREADS = 3
POLL_S = 0.1
T9_P99_S = 0.25


@dataclass
class Watch:
    """What a window of reads saw."""

    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    reads_per_reader: list[int] = field(default_factory=list)
    writer: list[tuple[float, int]] = field(default_factory=list)  # (monotonic s, bars_processed) changes
    seconds: float = 0.0
    child: Any = None  # the writer's ChildResult
    counts: dict[str, int] = field(default_factory=dict)  # the ledger's at the end

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) if self.latencies else float("nan")

    @property
    def writer_stall_s(self) -> float:
        ts = [t for t, _ in self.writer]
        return max((b - a for a, b in zip(ts, ts[1:], strict=False)), default=float("nan"))

    @property
    def writer_bars(self) -> int:
        return self.writer[-1][1] - self.writer[0][1] if self.writer else 0

    def summary(self, label: str) -> str:
        return (f"{label}: {len(self.latencies)} reads by {len(self.reads_per_reader)} readers "
                f"({self.reads_per_reader}) in {self.seconds:.1f} s, {len(self.errors)} errors; reader latency p50 "
                f"{self.pct(50) * 1e3:.0f} ms, p99 {self.pct(99) * 1e3:.0f} ms, max "
                f"{max(self.latencies, default=float('nan')) * 1e3:.0f} ms (T9 target p99 < {T9_P99_S * 1e3:.0f} ms); "
                f"writer {self.writer_bars} bars in the window ({self.writer_bars / max(self.seconds, 1e-9):.0f} bars/s), "
                f"longest gap between its published commits {self.writer_stall_s:.2f} s")


def _status_bars(env: PaperEnv, run_id: str) -> int | None:
    try:
        st = env.store.status(SID) or {}
    except (OSError, ValueError):
        return None
    if st.get("run_id") != run_id or st.get("state") != "running":
        return None
    return int(st.get("bars_processed") or 0)


def _wait_trading(env: PaperEnv, child: Child, run_id: str, timeout: float = 120.0) -> None:
    t0 = time.monotonic()
    while (_status_bars(env, run_id) or 0) <= 0:
        assert child.proc.poll() is None, child.wait().tail()
        assert time.monotonic() - t0 < timeout, "the writer never started trading"
        time.sleep(0.02)


def watch_readers(env: PaperEnv, child: Child, run_id: str, window_s: float, *, deadline_s: float = 30.0,
                  stop_writer: bool = True) -> Watch:
    """Readers (``THREADS`` threads + one process) poll while ``child`` trades, for ``window_s``
    or until it exits; then the writer is asked to stop (``stop_writer``) and waited for."""
    _wait_trading(env, child, run_id)
    w = Watch()
    done = threading.Event()
    results: list[tuple[list[float], list[str]]] = []

    def reader() -> None:
        results.append(poll_ledger(env.ledger.path, SID, done.is_set, poll_s=POLL_S, deadline_s=deadline_s))

    threads = [threading.Thread(target=reader, daemon=True) for _ in range(THREADS)]
    proc = spawn(env.root, SID, "reader", read_for=window_s) if deadline_s == 30.0 else None
    t0 = time.monotonic()
    for t in threads:
        t.start()
    last = None
    while time.monotonic() - t0 < window_s and child.proc.poll() is None:
        bars = _status_bars(env, run_id)
        if bars is not None and bars != last:
            w.writer.append((time.monotonic(), bars))
            last = bars
        time.sleep(0.02)
    w.seconds = time.monotonic() - t0
    done.set()
    if stop_writer and child.proc.poll() is None:
        env.store.request(SID, "stop")
    w.child = child.wait(timeout=300)
    for t in threads:
        t.join(timeout=120)
        assert not t.is_alive(), "a reader never came back"
    if proc is not None:
        res = proc.wait(timeout=120)
        assert res.returncode == 0 and res.outcome is not None, res.tail()
        results.append((res.outcome["latencies"], res.outcome["errors"]))
    for lat, errors in results:
        w.latencies += lat
        w.errors += errors
        w.reads_per_reader.append(len(lat))
    return w


def _env(root: Path, cache: Path, **cfg: Any) -> PaperEnv:
    env = PaperEnv(root, cache)
    env.session(btc_request(*HISTORY), session_id=SID, **cfg)
    return env


@pytest.fixture(scope="module")
def max_speed(tmp_path_factory: pytest.TempPathFactory) -> Watch:
    env = _env(tmp_path_factory.mktemp("readers"), tmp_path_factory.getbasetemp())
    w = watch_readers(env, spawn(env.root, SID, "writer"), "writer", 15.0)
    print("\n" + w.summary("T9 max speed, 15 s"))
    with env.ledger.connect(read_only=True) as con:
        w.counts = env.ledger.counts(con, SID)
    return w


def test_no_lock_error_reaches_a_reader_while_the_writer_trades_at_max_speed(max_speed: Watch) -> None:
    w = max_speed
    assert w.child.returncode == 0 and w.child.outcome["state"] in ("stopped", "completed"), w.child.tail()
    assert not w.errors, w.errors[:5]
    assert len(w.reads_per_reader) == THREADS + 1 and all(n > 0 for n in w.reads_per_reader), w.reads_per_reader
    assert w.writer_bars > 0, "the writer made no progress while read"
    assert w.counts["rows"] == w.counts["ids"]


@pytest.mark.xfail(strict=False, reason=(
    "open finding: at max speed on 2 cores the writer holds paper.duckdb for 0.25 s windows; readers "
    "get in within p50 ~30 ms but p99 ~0.5 s, over T9's 250 ms (a shorter window cost throughput and "
    "did not help under CPU contention); readers that must not wait read the status file instead"))
def test_reader_latency_meets_the_t9_target_at_max_speed(max_speed: Watch) -> None:
    assert max_speed.pct(99) < T9_P99_S, max_speed.summary("max speed")


@pytest.mark.slow
def test_readers_for_a_whole_max_speed_replay(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The whole ~19,000-bar history with four readers polling throughout: 0 errors, completed."""
    env = _env(tmp_path, tmp_path_factory.getbasetemp())
    w = watch_readers(env, spawn(env.root, SID, "writer"), "writer", 600.0, stop_writer=False)
    print("\n" + w.summary("T9 max speed, whole replay"))
    assert w.child.returncode == 0 and w.child.outcome["state"] == "completed", w.child.tail()
    assert not w.errors, w.errors[:5]


def test_no_lock_error_reaches_a_reader_while_a_paced_replay_runs(tmp_path: Path,
                                                                  tmp_path_factory: pytest.TempPathFactory) -> None:
    env = _env(tmp_path, tmp_path_factory.getbasetemp(), speed=20.0)
    # readers give up after 3 s instead of 30 s: the same failure, sooner (the writer never lets go)
    w = watch_readers(env, spawn(env.root, SID, "writer"), "writer", 8.0, deadline_s=3.0)
    print("\n" + w.summary("paced 20 bars/s, 8 s, reader deadline 3 s"))
    assert w.child.returncode == 0 and w.child.outcome["state"] == "stopped", w.child.tail()
    assert not w.errors, f"{len(w.errors)} errors reached readers, e.g. {w.errors[0]}"


def test_negative_control_a_reader_holding_its_connection_stalls_the_writer(
        tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    env = _env(tmp_path, tmp_path_factory.getbasetemp())
    child = spawn(env.root, SID, "writer")
    _wait_trading(env, child, "writer")
    hold_s = 3.0
    t0 = time.monotonic()
    with env.ledger.connect(read_only=True):  # gets in at one of the writer's windows, then stays
        got_in = time.monotonic() - t0
        time.sleep(0.5)  # the writer's commit in flight when we got in has been published
        before = _status_bars(env, "writer")
        time.sleep(hold_s)
        after = _status_bars(env, "writer")
    env.store.request(SID, "stop")
    res = child.wait(timeout=300)
    print(f"\nnegative control: the holder got in after {got_in:.2f} s; the writer stood at bar {before} "
          f"-> {after} over the {hold_s:.0f} s hold; it then stopped cleanly ({res.outcome and res.outcome['state']})")
    assert before is not None and before == after, "the writer kept committing past a held reader"
    assert res.returncode == 0 and res.outcome and res.outcome["state"] == "stopped", res.tail()


def test_premise_a_held_read_only_connection_blocks_a_second_process_from_writing(tmp_path: Path) -> None:
    import subprocess
    import sys

    led = PaperLedger(tmp_path / "paper.duckdb")
    led.migrate()
    code = ("import sys; from trading_core.warehouse.paper import PaperLedger; "
            "led = PaperLedger(sys.argv[1], deadline_s=1.0)\n"
            "with led.connect() as con: con.execute('SELECT count(*) FROM paper.events').fetchall()")

    def writer() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", code, str(led.path)], capture_output=True, text=True, timeout=60)

    with led.connect(read_only=True):
        blocked = writer()
    assert blocked.returncode != 0 and WarehouseBusy.__name__ in blocked.stderr, blocked.stderr[-800:]
    free = writer()
    assert free.returncode == 0, free.stderr[-800:]
