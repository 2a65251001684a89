"""A promoted champion starts a paper session: the real MLflow SQLite registry in a temporary
folder, the real ^GSPC sample history, real Dagster sensor ticks on a test instance, and the
``trading paper auto-start`` command on the same store."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from paper_support import sample_warehouse  # type: ignore[import-not-found]

from pipelines.defs.models.resources import MlflowResource
from pipelines.defs.resources import MarketDataResource, PaperResource, TradingConfigResource
from pipelines.defs.trading.auto_start import paper_auto_start_sensor
from pipelines.defs.trading.sensors import paper_requests_sensor
from trading_core.cli import main
from trading_core.config import PROJECT_ROOT
from trading_core.features.pipeline import update_features
from trading_core.ml import lifecycle as lc
from trading_core.ml.config import ModelsConfig, PromotionConfig, WalkForwardConfig
from trading_core.ml.registry import Registry
from trading_core.paper.control import SessionStore

logging.getLogger("mlflow").setLevel(logging.ERROR)

# logistic only, two folds: a version in seconds (the lifecycle has its own tests)
CFG = ModelsConfig(models=("logistic",), walk_forward=WalkForwardConfig(folds=2, train_bars=1000, test_bars=400),
                   promotion=PromotionConfig(min_trades=1, max_calibration_gap=0.3))


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A data directory (warehouse with features, empty registry) and a folder of templates:
    the shipped spx-ml-auto switched on, and a template that does not opt in."""
    root = tmp_path_factory.mktemp("auto")
    wh = sample_warehouse(root / "warehouse.duckdb", tmp_path_factory.mktemp("tpl"))
    wh.migrate()
    update_features(wh, "yahoo", "^GSPC", "1d", calendar="equity")
    tpl = root / "sessions"
    tpl.mkdir()
    shipped = (PROJECT_ROOT / "config" / "sessions" / "spx-ml-auto.yaml").read_text()
    assert "enabled: false" in shipped
    (tpl / "spx-ml-auto.yaml").write_text(shipped.replace("enabled: false", "enabled: true"))
    (tpl / "spx-ml-champion.yaml").write_text((PROJECT_ROOT / "config" / "sessions" / "spx-ml-champion.yaml").read_text())
    return {"root": root, "wh": wh, "tpl": tpl, "reg": Registry.from_config(CFG, root)}


@pytest.fixture
def env(lab: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("TRADING_DATA_DIR", str(lab["root"]))  # the default registry and warehouse live there
    monkeypatch.setenv("TRADING_SESSION_TEMPLATES", str(lab["tpl"]))
    config = TradingConfigResource()
    return {**lab, "store": SessionStore(lab["root"] / "paper"),
            "resources": {"paper": PaperResource(trading_config=config, market_data=MarketDataResource()),
                          "mlflow": MlflowResource(trading_config=config)}}


def _requests(store: SessionStore) -> list[tuple[str, str, str]]:
    return sorted((sid, r.action, r.source) for sid in store.session_ids() for r in store.requests(sid))


def test_promotions_start_one_pinned_session_per_champion_and_stop_the_previous(env: dict[str, Any]) -> None:
    store, reg, wh, res = env["store"], env["reg"], env["wh"], env["resources"]
    with dg.instance_for_test() as inst:
        def tick() -> str:
            with dg.build_sensor_context(instance=inst, resources=res) as ctx:
                data = paper_auto_start_sensor.evaluate_tick(ctx)
            assert not data.run_requests  # it writes start requests; paper_requests_sensor launches
            return str(data.skip_message)

        assert "no champion yet" in tick() and store.session_ids() == []
        first = lc.ensure_champion(CFG, wh, reg)  # v1 promoted by the rule
        assert first["champion"] == 1
        assert "spx-ml-auto: started" in tick()
        (sid1,) = store.session_ids()
        assert _requests(store) == [(sid1, "start", "champion")]
        config = store.load(sid1)
        assert config.template == "spx-ml-auto" and config.name == "spx-ml-auto-v1"
        assert config.request.params["version"] == "1" and config.request.params["model"] == "ml_signal"
        assert "already started for version 1" in tick()
        assert len(_requests(store)) == 1
        # the paper job is launched once for that start request (run key = the request id)
        with dg.build_sensor_context(instance=inst, resources=res) as ctx:
            launched = paper_requests_sensor.evaluate_tick(ctx).run_requests or []
        assert [r.run_key for r in launched] == [f"{sid1}-r000001"]

        second = lc.train(CFG, wh, reg)  # same data: refused by the rule, then promoted by hand
        assert not second["decision"]["promoted"] and "spx-ml-auto: nothing to do" in tick()
        lc.promote(CFG, wh, reg, second["version"], force=True)
        assert reg.alias_version("champion") == 2
        message = tick()
        assert "started" in message and f"stopped {sid1}" in message
        sid2 = next(s for s in store.session_ids() if s != sid1)
        assert _requests(store) == sorted([(sid1, "start", "champion"), (sid1, "stop", "champion"),
                                           (sid2, "start", "champion")])
        assert store.load(sid2).request.params["version"] == "2"
        tick()
        tick()  # repeated ticks (or a restarted daemon) add nothing
        assert len(_requests(store)) == 3
        # the template that does not opt in never got a session
        assert {store.load(s).template for s in store.session_ids()} == {"spx-ml-auto"}


def test_the_cli_runs_the_same_check_once_and_says_what_it_did(env: dict[str, Any],
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    store, reg = env["store"], env["reg"]
    if reg.alias_version("champion") is None:  # run alone: give the registry its first champion
        lc.ensure_champion(CFG, env["wh"], reg)
    champion = reg.alias_version("champion")
    before = len(_requests(store))
    assert main(["paper", "auto-start"]) == 0
    first = capsys.readouterr().out
    assert main(["paper", "auto-start", "--json"]) == 0
    (doc,) = json.loads(capsys.readouterr().out)
    assert doc["action"] == "already_started" and doc["version"] == champion
    assert f"already started for version {champion}" in first or f"started {doc['session_id']}" in first
    assert len(_requests(store)) <= before + 1
    assert store.load(doc["session_id"]).request.params["version"] == str(champion)


def test_the_sensor_is_on_in_the_code_location_and_idle_with_the_shipped_templates(tmp_path: Path) -> None:
    from pipelines.definitions import defs

    sensor = defs().resolve_sensor_def("paper_auto_start_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    config = TradingConfigResource()
    # the registry's URI names a file that does not exist: an idle tick must not open it
    res = {"paper": PaperResource(trading_config=config, market_data=MarketDataResource()),
           "mlflow": MlflowResource(trading_config=config, tracking_uri=f"sqlite:///{tmp_path / 'absent' / 'm.db'}")}
    with dg.instance_for_test() as inst, dg.build_sensor_context(instance=inst, resources=res) as ctx:
        data = paper_auto_start_sensor.evaluate_tick(ctx)
    assert "no session template opts in" in str(data.skip_message) and not data.run_requests
    assert not (tmp_path / "absent").exists()
