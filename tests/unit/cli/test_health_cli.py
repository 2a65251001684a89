"""`trading health --json`: warehouse, Dagster, MLflow, sessions' heartbeats; exit 1 naming what is down."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from paper_support import sample_warehouse
from pytest_httpserver import HTTPServer

from trading_core.cli import main
from trading_core.cli.health import health
from trading_core.config import ServicesConfig, load_config


def test_health_json_says_what_is_down(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGSTER_HOME", "/nonexistent-dagster-home")
    rc = main(["health", "--json", "--timeout", "0.2"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 1 and doc["healthy"] is False
    assert set(doc) >= {"warehouse", "dagster", "mlflow", "sessions", "alerts", "down"}
    assert doc["warehouse"]["exists"] is False and doc["dagster"]["dagster_home_exists"] is False
    assert any(d.startswith("warehouse ") for d in doc["down"])
    assert any(d.startswith("dagster: http://127.0.0.1:") for d in doc["down"])
    assert doc["alerts"]["channels"] == ["log"]


def test_health_is_green_when_everything_answers(tmp_path: Path, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/server_info").respond_with_json({"dagster_version": "1.13"})
    httpserver.expect_request("/health").respond_with_data("OK")
    sample_warehouse(Path(os.environ["TRADING_DATA_DIR"]) / "warehouse.duckdb", tmp_path)
    cfg = load_config()
    cfg = cfg.model_copy(update={"services": ServicesConfig(dagster_port=httpserver.port,
                                                            mlflow_port=httpserver.port)})
    doc = health(cfg, timeout=2.0)
    assert doc["down"] == [] and doc["healthy"]
    assert doc["warehouse"]["rows"]["market.bars"] == sum(s["bars"] for s in doc["warehouse"]["series"]) > 10_000
    series = {s["symbol"]: s for s in doc["warehouse"]["series"]}
    assert series["BTC/USD"]["last_bar"].startswith("2019-10") and series["BTC/USD"]["age_h"] > 24 * 365
    assert doc["dagster"]["status"] == 200 and doc["mlflow"]["up"]


def test_a_running_session_with_a_stale_heartbeat_is_down(tmp_path: Path, httpserver: HTTPServer) -> None:
    from paper_support import PaperEnv

    httpserver.expect_request("/server_info").respond_with_data("ok")
    httpserver.expect_request("/health").respond_with_data("OK")
    data = Path(os.environ["TRADING_DATA_DIR"])
    env = PaperEnv(data, tmp_path)
    sid = env.session()
    env.store.write_status(sid, {"state": "running", "heartbeat_ts": "2026-01-01T00:00:00+00:00"})
    cfg = load_config().model_copy(update={"services": ServicesConfig(dagster_port=httpserver.port,
                                                                      mlflow_port=httpserver.port)})
    doc = health(cfg, timeout=2.0, now=1767225600.0 + 600)
    (row,) = doc["sessions"]
    assert row["session_id"] == sid and row["stale"] and row["heartbeat_age_s"] == 600.0
    assert doc["down"] == [f"session {sid} (test): heartbeat 600.0s old (stale after 30s)"]
