"""`trading up` (what `make run` calls): offline data loaded, Dagster, MLflow and Streamlit serving
on loopback only, ingest assets visible in the UI's API, a second `up` refused naming the first,
a finished background warm-up collected (no zombie child), and a clean stop on SIGTERM -- also when a
second SIGTERM arrives while it stops."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from trading_core.config import DEFAULT_CONFIG_PATH, PROJECT_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening_addresses(port: int) -> set[str]:
    """Local addresses in LISTEN state on ``port`` (from /proc, IPv4 and IPv6)."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, p = local.split(":")
            if state == "0A" and int(p, 16) == port:
                found.add(addr)
    return found


def _graphql(port: int, query: str) -> dict:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def test_up_serves_the_stack_on_loopback_refuses_a_second_up_and_stops_on_sigterm_even_twice(tmp_path: Path) -> None:
    port, st_port, ml_port = _free_port(), _free_port(), _free_port()
    cfg = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    cfg["services"].update(dagster_port=port, streamlit_port=st_port, mlflow_port=ml_port)
    config = tmp_path / "config" / "trading.yaml"
    config.parent.mkdir()
    config.write_text(yaml.safe_dump(cfg))
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((PROJECT_ROOT / "dagster_home" / "dagster.yaml").read_text())
    env = {**os.environ, "TRADING_DATA_DIR": str(tmp_path / "data"), "DAGSTER_HOME": str(home),
           "TRADING_SAMPLE_DIR": str(PROJECT_ROOT / ".cache" / "sample-packages")}
    trading = str(Path(sys.executable).parent / "trading")
    log = tmp_path / "up.log"
    # Output goes to a file: run workers inherit it, and a pipe would stay open as long as they live.
    with log.open("w") as out_file:
        proc = subprocess.Popen([trading, "--config", str(config), "up", "--no-models"], env=env, stdout=out_file,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        assets: list[str] = []
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                data = _graphql(port, "{ assetNodes { assetKey { path } } }")
                assets = sorted("/".join(a["assetKey"]["path"]) for a in data["data"]["assetNodes"])
                break
            except OSError:
                time.sleep(2)
        assert proc.poll() is None, log.read_text()
        assert {"crypto_bars", "equities_bars", "serving_snapshot"} <= set(assets)
        for p in (port, st_port, ml_port):
            _wait_http(f"http://127.0.0.1:{p}/", deadline)
            listening = _listening_addresses(p)
            assert listening and listening <= {"0100007F", "00000000000000000000000001000000"}, (p, listening)
        second = subprocess.run([trading, "--config", str(config), "up"], env=env, capture_output=True, text=True,
                                timeout=60)
        assert second.returncode == 2 and second.stderr.count("\n") == 1, second.stderr
        assert "already up" in second.stderr and f"http://127.0.0.1:{port}" in second.stderr
        warm_log = Path(env["TRADING_DATA_DIR"]) / "logs" / "numba-warmup.log"
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and not re.search(r"Numba warm-up (done|finished)", _text(warm_log)):
            time.sleep(1)
        assert re.search(r"Numba warm-up (done|finished)", _text(warm_log)), _text(warm_log)[-2000:]
        time.sleep(2.0)  # the supervisor loop polls twice a second
        assert not _zombie_children(proc.pid), "a finished background job was left as a zombie"
    finally:
        proc.send_signal(signal.SIGTERM)
        time.sleep(1.0)  # a second one while it stops (make forwards SIGTERM; people press Ctrl-C twice)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=90)
    out = log.read_text()
    assert "Traceback" not in out, out[-3000:]  # the second signal did not abort the stop
    assert "did not stop within" not in out, out[-2000:]  # every service stopped on its own stop signal
    assert re.search(rf"Dagster +http://127\.0\.0\.1:{port}", out), out
    assert re.search(rf"Streamlit +http://127\.0\.0\.1:{st_port}", out) and "Logs" in out
    assert "dagster.log" in out and (Path(env["TRADING_DATA_DIR"]) / "logs" / "dagster.log").stat().st_size > 0
    assert "loading the offline default data set" in out
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (any(_listening_addresses(p) for p in (port, st_port, ml_port))
                                           or _survivors(home)):
        time.sleep(1)
    assert not any(_listening_addresses(p) for p in (port, st_port, ml_port)), "still listening after SIGTERM"
    assert not _survivors(home), f"processes survived the stop: {_survivors(home)}"


def _wait_http(url: str, deadline: float) -> None:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                assert r.status == 200
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def _text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _zombie_children(pid: int) -> list[int]:
    """Children of ``pid`` that have exited but were never waited for (state Z in /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == "Z" and int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _survivors(home: Path) -> list[str]:
    return subprocess.run(["pgrep", "-f", str(home)], capture_output=True, text=True).stdout.split()
