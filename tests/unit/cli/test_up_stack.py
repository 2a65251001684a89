"""`trading up`'s stack: one per data folder, ports checked before anything starts, one URL block."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from trading_core.cli import main
from trading_core.cli.up import LOCK_NAME, _take_lock, read_running, stack_services
from trading_core.config import PROJECT_ROOT, load_config
from trading_core.errors import InvalidInput


def test_second_up_when_one_holds_the_lock_then_refuses_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "run" / LOCK_NAME
    held = _take_lock(path)
    held.write(json.dumps({"pid": 4242, "started": "2026-12-02 10:00:00", "Dagster": "http://127.0.0.1:3000"}))
    held.flush()
    try:
        with pytest.raises(InvalidInput) as e:
            _take_lock(path)
        msg = str(e.value)
        assert "already up" in msg and "pid 4242" in msg and "http://127.0.0.1:3000" in msg and "\n" not in msg
        assert read_running(tmp_path) == {"pid": 4242, "started": "2026-12-02 10:00:00",
                                          "Dagster": "http://127.0.0.1:3000"}
    finally:
        held.close()
    assert read_running(tmp_path) is None  # released with the process (flock), no stale file to clean
    _take_lock(path).close()


def test_lock_when_holder_process_killed_then_released(tmp_path: Path) -> None:
    path = tmp_path / "run" / LOCK_NAME
    code = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from trading_core.cli.up import _take_lock
        f = _take_lock(Path({str(path)!r}))
        print("held", flush=True)
        time.sleep(60)
    """)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        with pytest.raises(InvalidInput):
            _take_lock(path)
    finally:
        child.kill()
        child.wait()
    _take_lock(path).close()


def test_up_when_a_port_is_taken_then_one_line_and_nothing_started(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import trading_core.cli.up as up

    started: list[object] = []
    monkeypatch.setattr(up.subprocess, "Popen", lambda *a, **k: started.append(a))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        rc = main(["up", "--no-load", "--mlflow-port", str(port)])
    out, err = capsys.readouterr()
    assert rc == 2 and started == []
    assert err.count("\n") == 1 and f"port {port}" in err and "MLflow" in err and "--mlflow-port" in err


def test_up_when_two_services_share_a_port_then_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["up", "--no-load", "--dagster-port", "5000"]) == 2
    assert "share a port" in capsys.readouterr().err


def test_up_port_flag_when_out_of_range_then_argument_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["up", "--streamlit-port", "70000"])
    assert e.value.code == 2 and "outside 1..65535" in capsys.readouterr().err


def test_stack_services_bind_the_configured_host_and_log_under_data_logs() -> None:
    cfg = load_config(None)
    services = stack_services(cfg, Path("/bin"), PROJECT_ROOT, {"dagster": 3001, "streamlit": 8502, "mlflow": 5001})
    by = {s.name: s for s in services}
    assert set(by) == {"Dagster", "MLflow", "Streamlit"}
    assert by["Dagster"].cmd[by["Dagster"].cmd.index("-h") + 1] == "127.0.0.1"
    assert by["MLflow"].cmd[by["MLflow"].cmd.index("--host") + 1] == "127.0.0.1"
    assert by["Streamlit"].cmd[by["Streamlit"].cmd.index("--server.address") + 1] == "127.0.0.1"
    assert [s.url for s in services] == ["http://127.0.0.1:3001", "http://127.0.0.1:5001", "http://127.0.0.1:8502"]
    assert all(s.log.parent == Path(cfg.data_dir) / "logs" for s in services)
    mlflow = by["MLflow"].cmd
    assert mlflow[mlflow.index("--backend-store-uri") + 1].endswith("/mlflow/mlflow.db")
    # MLflow's server sits out SIGINT: it is stopped with SIGTERM, the others as Ctrl-C would
    assert {s.name: s.stop_signal for s in services} == {"Dagster": signal.SIGINT, "MLflow": signal.SIGTERM,
                                                       "Streamlit": signal.SIGINT}


def test_up_starts_the_warm_up_once_mlflow_answers_and_a_dying_service_prints_its_log_tail(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # CI saw only "MLflow stopped (exit 1); see <a log nobody can open>": the reason must be in up's output.
    # The reason was the warm-up opening the MLflow store (reading the champion) while the server was
    # still creating it: two processes migrating one fresh SQLite file race and the server dies.
    import trading_core.cli.up as up

    monkeypatch.setenv("TRADING_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", raising=False)
    logs = tmp_path / "data" / "logs"
    dies = ["sh", "-c", "sleep 3; echo job execution=$MLFLOW_SERVER_ENABLE_JOB_EXECUTION; "
                        "echo 'alembic.util.exc.CommandError: Online migration expected to match one row' >&2; exit 1"]
    stand_ins = [up.Service("Dagster", ["sleep", "60"], "http://127.0.0.1:1", 1, logs / "dagster.log"),
                 up.Service("MLflow", dies, "http://127.0.0.1:2", 2, logs / "mlflow.log"),
                 up.Service("Streamlit", ["sleep", "60"], "http://127.0.0.1:3", 3, logs / "streamlit.log")]
    polls = {"mlflow": 0}
    seen: list[int] = []

    def answers(host: str, port: int, timeout_s: float = 0.5) -> bool:
        if port != 2:
            return False
        polls["mlflow"] += 1
        return polls["mlflow"] > 3  # the pre-start port check, then two polls without an answer

    def warm(*a: object, **k: object) -> subprocess.Popen[bytes]:
        seen.append(polls["mlflow"])
        return subprocess.Popen(["true"], start_new_session=True)

    monkeypatch.setattr(up, "stack_services", lambda *a, **k: stand_ins)
    monkeypatch.setattr(up, "_answers", answers)
    monkeypatch.setattr(up, "start_warmup", warm)
    monkeypatch.setattr(up.signal, "signal", lambda *a: None)
    assert main(["up", "--no-load", "--no-models"]) == 1
    out, err = capsys.readouterr()
    assert seen == [4]  # started once, right after MLflow first answered
    assert "MLflow stopped (exit 1)" in err and "expected to match one row" in err
    # MLflow's job runner (GenAI scorers; it needs a writable /dev/shm) is off
    assert "job execution=false" in err
    assert "did not stop" not in err  # the sleeping stand-ins stopped on their signal
