"""``trading up``: load the offline data if the warehouse is empty, then run the services.

Starts the Dagster webserver and daemon (``dagster dev``) on the configured loopback host and
prints the URLs. Ctrl-C (or SIGTERM) stops every child cleanly. Services are started as
subprocesses, so trading_core stays free of Dagster imports.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ..config import PROJECT_ROOT, config_path, load_config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("up", help="load offline data if needed and start the services")
    p.add_argument("--no-load", action="store_true", help="skip loading the offline data set")
    p.set_defaults(handler=_up)


def _up(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    bin_dir = Path(sys.executable).parent
    env = dict(os.environ)
    env.setdefault("DAGSTER_HOME", str(PROJECT_ROOT / "dagster_home"))
    env["TRADING_CONFIG"] = str(Path(args.config or config_path()).resolve())
    Path(env["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    if not args.no_load:
        from .ingest import _warehouse

        if _warehouse(cfg).is_empty():
            print("Warehouse is empty: loading the offline default data set ...", flush=True)
            rc = subprocess.call([str(bin_dir / "trading"), "ingest", "sample"], env=env)
            if rc != 0:
                print("trading: loading the sample data failed; see above", file=sys.stderr)
                return rc
    host = cfg.services.host
    services = {
        "Dagster": ([str(bin_dir / "dagster"), "dev", "-w", str(PROJECT_ROOT / "workspace.yaml"),
                     "-h", host, "-p", str(cfg.services.dagster_port)],
                    f"http://{host}:{cfg.services.dagster_port}"),
    }
    procs: list[subprocess.Popen[bytes]] = []
    # SIGTERM (a supervisor, `timeout`, `kill`) must stop the services like Ctrl-C does; they run
    # in their own process groups, so nothing else would reach them.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        for name, (cmd, url) in services.items():
            procs.append(subprocess.Popen(cmd, env=env, cwd=PROJECT_ROOT, start_new_session=True))
            print(f"{name}: {url}", flush=True)
        print("Press Ctrl-C to stop.", flush=True)
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        return next(p.returncode for p in procs if p.poll() is not None) or 0
    except KeyboardInterrupt:
        return 0
    finally:
        _stop(procs)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGINT each service's process group (what Ctrl-C would send), then SIGKILL stragglers.

    The group can outlive its leader: ``dagster dev`` exits while the code servers it started
    are still winding down (their heartbeat timeout is 30-45 s, and they have been seen to
    outlive it). So after the leader is gone the rest of its group gets SIGTERM, then SIGKILL.
    """
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGINT)
    deadline = time.monotonic() + 20
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    for p in procs:
        _reap_group(p.pid)


def _reap_group(pgid: int, grace_s: float = 5.0) -> None:
    """Wait ``grace_s`` for the group to empty by itself, then SIGTERM it, then SIGKILL it."""
    for sig in (None, signal.SIGTERM, signal.SIGKILL):
        try:
            if sig is not None:
                os.killpg(pgid, sig)
            deadline = time.monotonic() + grace_s
            while time.monotonic() < deadline:
                os.killpg(pgid, 0)  # raises once no process is left in the group
                time.sleep(0.2)
        except ProcessLookupError:
            return
        except PermissionError:  # pragma: no cover - the id was reused by another user's group
            return
