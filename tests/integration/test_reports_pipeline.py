"""Dagster: the daily summary asset materialises into ops.daily_summary (and its HTML) in a
temporary instance; the alerts sensor forwards a real session's breaker alerts to a local webhook
once per key."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
from paper_support import PaperEnv, btc_request
from pytest_httpserver import HTTPServer

from pipelines.definitions import defs
from pipelines.defs.reports.assets import alerts_sensor, daily_summary
from pipelines.defs.resources import TradingConfigResource, WarehouseResource
from trading_core.alerts.channels import KEY_HEADER
from trading_core.config import PROJECT_ROOT
from trading_core.warehouse.reports import read_daily_summary


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A data dir with the sample warehouse and one completed replay session (it tripped breakers)."""
    root = tmp_path_factory.mktemp("ops")
    data = root / "data"
    env = PaperEnv(data, root)
    env.warehouse.migrate()
    sid = env.session(btc_request(end=datetime(2019, 2, 1, tzinfo=UTC)), name="ops-test")
    assert env.run(sid).state == "completed"
    yield data, sid


def _config(tmp_path: Path) -> Path:
    text = (PROJECT_ROOT / "config" / "trading.yaml").read_text(encoding="utf-8")
    text += ("\nalerts:\n  channels:\n    - {name: log}\n"
             "    - {name: hook, kind: webhook, url_env: TRADING_TEST_ALERT_URL, min_severity: warning}\n")
    path = tmp_path / "trading.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_definitions_pin_the_reports_names() -> None:
    d = defs()
    assert "daily_summary" in {k.to_user_string() for k in d.resolve_asset_graph().get_all_asset_keys()}
    assert d.resolve_sensor_def("alerts_sensor").name == "alerts_sensor"
    assert d.resolve_schedule_def("daily_summary_schedule").cron_schedule == "50 23 * * *"


def test_daily_summary_materialises_into_ops(platform: tuple[Path, str], monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    data, sid = platform
    monkeypatch.setenv("TRADING_DATA_DIR", str(data))
    config = TradingConfigResource(config_path=str(_config(tmp_path)))
    with dg.instance_for_test() as inst:
        res = dg.materialize([daily_summary], instance=inst, resources={
            "trading_config": config, "warehouse": WarehouseResource(trading_config=config)})
        assert res.success
        meta = res.asset_materializations_for_node("daily_summary")[0].metadata
    day = datetime.now(UTC).date()
    from trading_core.warehouse import Warehouse

    with Warehouse(data / "warehouse.duckdb").connect(read_only=True) as con:
        head, per = read_daily_summary(con, day)
    assert head is not None and head["sessions"] == 1 and head["fills"] > 0
    assert per["session_id"].to_list() == [sid] and per["day_fills"][0] == per["fills"][0]
    assert head["stalest_series"] is not None and head["freshness"]
    assert Path(meta["html"].value).read_text(encoding="utf-8").count(sid) >= 1


def test_alerts_sensor_delivers_session_alerts_once(platform: tuple[Path, str], monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path, httpserver: HTTPServer) -> None:
    data, sid = platform
    httpserver.expect_request("/alerts", method="POST").respond_with_data("ok")
    monkeypatch.setenv("TRADING_DATA_DIR", str(data))
    monkeypatch.setenv("TRADING_TEST_ALERT_URL", f"json://127.0.0.1:{httpserver.port}/alerts")
    (data / "alerts").mkdir(exist_ok=True)
    for f in (data / "alerts").glob("deliveries.*"):
        f.unlink()
    config = TradingConfigResource(config_path=str(_config(tmp_path)))
    with dg.instance_for_test() as inst:
        ctx = dg.build_sensor_context(instance=inst, resources={"trading_config": config})
        first = alerts_sensor(ctx)
        n = len(httpserver.log)
        assert n > 0 and "sent now" in str(first.skip_message)
        ctx2 = dg.build_sensor_context(instance=inst, resources={"trading_config": config})
        second = alerts_sensor(ctx2)
    assert len(httpserver.log) == n  # the second tick delivered nothing again
    assert " 0 sent now" in str(second.skip_message)
    keys = [r.headers[KEY_HEADER] for r, _ in httpserver.log]
    assert len(set(keys)) == len(keys)
    bodies = [r.get_json()["title"] for r, _ in httpserver.log]
    assert all(sid in b for b in bodies) and any("breaker_tripped" in b for b in bodies)
    assert os.environ["TRADING_DATA_DIR"] == str(data)
