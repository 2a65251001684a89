"""Run one paper session once in its own process (the crash and reader tests' child).

    python tests/paper_child.py <data_dir> <session_id> <run_id> [--budget-s S]
    python tests/paper_child.py <data_dir> <session_id> <name> --read-for S   (a reader instead)

``<data_dir>`` holds what a job sees (``warehouse.duckdb``, ``paper/``, ``paper.duckdb``, as
``tests/paper_support.PaperEnv`` lays it out). The run is a plain ``SessionRunner.run()``, so
``TRADING_PAPER_CRASH=<point>:<bar>`` in the environment makes it SIGKILL itself at that commit
point (``runner.crash_from_env``). On a normal end it prints ONE line of JSON on stdout: the
``RunOutcome`` plus wall-clock stamps (epoch s) -- ``t_exec`` (this script started, before the
heavy imports), ``t_runner`` (the runner was built: ``recovery_s`` counts from here) -- and exits
0; an exception exits 1 with the traceback on stderr, a ``LeaseHeld`` exits 3.

With ``--read-for S`` the process is a ledger reader instead (``poll_ledger`` for S seconds: the
production read path, ``PaperLedger.connect(read_only=True)`` + a checkpoint and counts query,
every 100 ms) and prints ``{"latencies": [...], "errors": [...]}``.

The parent side (``spawn``, ``ChildResult``, ``poll_ledger``) lives here too and imports nothing heavy, so a test
importing it stays cheap. A child's stdout and stderr go to files under ``<data_dir>/children``
(a pipe nobody reads while the child runs could fill and block it).
"""

from __future__ import annotations

import time

T_EXEC = time.time()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

CHILD = Path(__file__).resolve()
PROJECT = CHILD.parents[1]
LEASE_HELD_RC = 3


@dataclass
class Child:
    """A running child: its process and where its output goes."""

    proc: subprocess.Popen[bytes]
    out: Path
    err: Path
    started: float  # time.monotonic() just before the spawn

    def wait(self, timeout: float = 300.0) -> ChildResult:
        rc = self.proc.wait(timeout=timeout)
        text = self.out.read_text(encoding="utf-8").strip()
        outcome = json.loads(text.splitlines()[-1]) if rc == 0 and text else None
        return ChildResult(rc, outcome, self.err.read_text(encoding="utf-8", errors="replace"))


@dataclass
class ChildResult:
    returncode: int
    outcome: dict[str, Any] | None
    stderr: str

    def tail(self, n: int = 1500) -> str:
        return self.stderr[-n:]


def spawn(data_dir: Path, session_id: str, run_id: str, *, crash: str | None = None,
          budget_s: float | None = None, read_for: float | None = None) -> Child:
    """Start the child on ``data_dir`` (``crash``: a ``TRADING_PAPER_CRASH`` spec, else none)."""
    env = dict(os.environ)
    env.pop("TRADING_PAPER_CRASH", None)
    if crash:
        env["TRADING_PAPER_CRASH"] = crash
    logs = Path(data_dir) / "children"
    logs.mkdir(parents=True, exist_ok=True)
    n = len(list(logs.glob("*.out")))
    out, err = logs / f"{n:03d}-{run_id}.out", logs / f"{n:03d}-{run_id}.err"
    cmd = [sys.executable, str(CHILD), str(data_dir), session_id, run_id]
    if budget_s is not None:
        cmd += ["--budget-s", str(budget_s)]
    if read_for is not None:
        cmd += ["--read-for", str(read_for)]
    with out.open("wb") as fo, err.open("wb") as fe:
        started = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=PROJECT, env=env, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL)
    return Child(proc, out, err, started)


def run_once(data_dir: Path, session_id: str, run_id: str, *, crash: str | None = None,
             budget_s: float | None = None, timeout: float = 300.0) -> ChildResult:
    return spawn(data_dir, session_id, run_id, crash=crash, budget_s=budget_s).wait(timeout)


def poll_ledger(ledger_path: Path, session_id: str, stop: Any, *, poll_s: float = 0.1,
                deadline_s: float = 30.0) -> tuple[list[float], list[str]]:
    """Read the ledger every ``poll_s`` until ``stop()``: each read's seconds (open + query + close)
    and every error that reached the reader (a lock conflict is retried inside ``connect`` up to
    ``deadline_s``, so one here is a ``WarehouseBusy``)."""
    from trading_core.warehouse.paper import PaperLedger

    led = PaperLedger(ledger_path, deadline_s=deadline_s)
    latencies: list[float] = []
    errors: list[str] = []
    while not stop():
        t0 = time.perf_counter()
        try:
            with led.connect(read_only=True) as con:
                led.checkpoint(con, session_id)
                led.counts(con, session_id)
            latencies.append(time.perf_counter() - t0)
        except Exception as e:  # noqa: BLE001 -- counting what reaches a reader is the point
            errors.append(f"{type(e).__name__}: {str(e)[:200]}")
        time.sleep(poll_s)
    return latencies, errors


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("session_id")
    ap.add_argument("run_id")
    ap.add_argument("--budget-s", type=float, default=None, help="end the run 'chained' after this many seconds")
    ap.add_argument("--read-for", type=float, default=None, help="be a ledger reader for this many seconds")
    args = ap.parse_args(argv)
    if args.read_for is not None:
        end = time.monotonic() + args.read_for
        lat, errors = poll_ledger(args.data_dir / "paper.duckdb", args.session_id, lambda: time.monotonic() >= end)
        print(json.dumps({"latencies": lat, "errors": errors}), flush=True)
        return 0

    from trading_core.paper.control import SessionStore
    from trading_core.paper.runner import SessionRunner
    from trading_core.warehouse import Warehouse
    from trading_core.warehouse.paper import LeaseHeld, PaperLedger

    root: Path = args.data_dir
    runner = SessionRunner(args.session_id, store=SessionStore(root / "paper"), ledger=PaperLedger(root / "paper.duckdb"),
                           warehouse=Warehouse(root / "warehouse.duckdb"), run_id=args.run_id,
                           budget_s=args.budget_s, data_dir=root)
    t_runner = time.time()
    try:
        out = runner.run()
    except LeaseHeld as e:
        print(f"LeaseHeld: {e}", file=sys.stderr)
        return LEASE_HELD_RC
    doc = {**out.to_dict(), "t_exec": T_EXEC, "t_runner": t_runner, "t_end": time.time()}
    print(json.dumps(doc, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
