"""The model lifecycle against a real MLflow SQLite store in a temporary folder, on the real
^GSPC sample history: runs logged, versions registered with aliases, the promotion rule applied
and stored, rollback, tamper detection, and ``ml_signal`` trading the champion."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from paper_support import sample_warehouse  # type: ignore[import-not-found]

from trading_core.features.pipeline import update_features
from trading_core.ml import lifecycle as lc
from trading_core.ml.config import ModelsConfig, PromotionConfig, WalkForwardConfig
from trading_core.ml.registry import Registry, UntrustedModel
from trading_core.strategies.ml_signal import MlSignal, MlSignalParams
from trading_core.strategies.streaming import stream_signals
from trading_core.warehouse import ml as store

logging.getLogger("mlflow").setLevel(logging.ERROR)

CFG = ModelsConfig(models=("logistic", "xgboost"), xgb_rounds=30, rf_trees=10,
                   walk_forward=WalkForwardConfig(folds=2, train_bars=1000, test_bars=400),
                   promotion=PromotionConfig(min_trades=1, max_calibration_gap=0.3))


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("models")
    wh = sample_warehouse(root / "warehouse.duckdb", tmp_path_factory.mktemp("tpl"))
    wh.migrate()
    update_features(wh, "yahoo", "^GSPC", "1d", calendar="equity")
    reg = Registry.from_config(CFG, root)
    first = lc.ensure_champion(CFG, wh, reg, dagster_run_id="dagster-run-1")
    return {"root": root, "wh": wh, "reg": reg, "first": first}


def test_bootstrap_registers_a_champion_with_provenance_and_is_idempotent(lab: dict[str, Any]) -> None:
    reg, first = lab["reg"], lab["first"]
    assert first["status"] == "trained" and first["champion"] == first["version"] == 1
    assert lc.ensure_champion(CFG, lab["wh"], reg) == {"status": "exists", "model": "ml_signal", "champion": 1}
    run = reg.client.get_run(first["run_id"])
    assert run.data.tags["dagster_run_id"] == "dagster-run-1"
    assert run.data.tags["dataset_hash"] == first["dataset"]["content_hash"]
    assert run.data.tags["git_commit"] and run.data.tags["feature_version"].endswith(first["dataset"]["feature_version"][-8:])
    assert {"logistic.auc", "xgboost.auc", "wf.balanced_accuracy", "logistic.trading.total_return"} <= set(run.data.metrics)
    assert "walk_forward" in run.data.params
    mv = reg.version(1)
    assert mv.tags["artifact_sha256"] and mv.tags["trading.registered_by"] == "trading_core"
    arts = {a.path for a in reg.client.list_artifacts(first["run_id"])}
    assert {"evaluation.json", "shap_summary.json", "dataset.json"} <= arts
    with lab["wh"].connect(read_only=True) as con:
        runs = store.read_training_runs(con, "ml_signal")
        decisions = store.read_decisions(con, "ml_signal")
        folds = store.read_fold_scores(con, first["train_id"])
    assert runs.height == 1 and runs["version"][0] == 1
    assert decisions["promoted"].to_list() == [True] and folds.height == 2 * 2


def test_second_version_refused_then_forced_then_rollback_restores_previous_champion(lab: dict[str, Any]) -> None:
    reg, wh = lab["reg"], lab["wh"]
    second = lc.train(CFG, wh, reg)
    assert second["version"] == 2
    # same data, same folds: it cannot beat the champion's walk-forward score by the margin
    assert not second["decision"]["promoted"]
    assert any("does not beat the champion" in r for r in second["decision"]["reasons"])
    assert reg.aliases() == {"champion": 1, "challenger": 2}
    forced = lc.promote(CFG, wh, reg, force=True)
    assert forced["promoted"] and reg.aliases() == {"champion": 2}
    assert reg.version(2).tags["previous_champion"] == "1"
    back = lc.rollback(CFG, wh, reg)
    assert back["action"] == "rollback" and reg.alias_version("champion") == 1
    with wh.connect(read_only=True) as con:
        actions = store.read_decisions(con, "ml_signal")["action"].to_list()
    assert actions == ["promote", "refuse", "promote", "rollback"]


def test_loading_verifies_the_hash_and_refuses_a_tampered_artifact(lab: dict[str, Any]) -> None:
    reg = lab["reg"]
    pin = reg.resolve(1)
    model = reg.load_verified(pin)
    assert model.predict_proba(np.zeros((1, 18))).shape == (1, 2)
    files = sorted(Path(reg.artifact_dir).rglob("model.skops"))
    target = next(f for f in files if reg.version(1).source.removeprefix("models:/") in str(f))
    original = target.read_bytes()
    try:
        target.write_bytes(original + b"\0")
        with pytest.raises(UntrustedModel, match="tampered or corrupted"):
            reg.load_verified(pin)
    finally:
        target.write_bytes(original)
    assert reg.load_verified(pin) is not None


def test_ml_signal_trades_the_champion_and_stream_equals_batch(lab: dict[str, Any], sp500: Any) -> None:
    from trading_core.strategies.base import Bars

    reg = lab["reg"]
    s = MlSignal(MlSignalParams(), registry=reg)
    bars = Bars.from_frame(sp500.sort("ts").slice(3000, 500), "^GSPC")
    ent, ex = s.signals(bars)
    assert s.variants()[0]["model_version"] == "ml_signal@v1" == s.event_tag
    assert ent.any() and ex.any()
    stream = s.stream(1)
    got = stream_signals(stream, bars)
    np.testing.assert_array_equal(got[0], ent)
    np.testing.assert_array_equal(got[1], ex)


def test_ml_signal_reload_switches_at_a_bar_boundary_and_reports_it_once(lab: dict[str, Any], sp500: Any) -> None:
    from trading_core.strategies.base import Bars
    from trading_core.strategies.streaming import bar_slices

    reg = lab["reg"]
    s = MlSignal(MlSignalParams(reload=True), registry=reg)
    stream = s.stream(1)
    slices = bar_slices(Bars.from_frame(sp500.sort("ts").slice(3000, 40), "^GSPC"))
    start = s.event_tag
    for b in slices[:20]:
        stream.update(b)
    assert stream.take_switch() is None
    other = 2 if reg.alias_version("champion") == 1 else 1
    previous = reg.alias_version("champion")
    reg.set_alias("champion", other)
    try:
        stream.update(slices[20])
        assert stream.take_switch() == (start, f"ml_signal@v{other}")
        assert stream.take_switch() is None and s.event_tag == f"ml_signal@v{other}"
    finally:
        reg.set_alias("champion", previous)



def test_ml_signal_stream_state_round_trip_continues_identically(lab: dict[str, Any], sp500: Any) -> None:
    from trading_core.strategies.base import Bars
    from trading_core.strategies.streaming import bar_slices

    s = MlSignal(MlSignalParams(), registry=lab["reg"])
    slices = bar_slices(Bars.from_frame(sp500.sort("ts").slice(3000, 330), "^GSPC"))
    a = s.stream(1)
    for b in slices[:300]:
        a.update(b)
    b_ = MlSignal(MlSignalParams(), registry=lab["reg"]).stream(1)
    b_.load_state(a.state())
    for bar in slices[300:]:
        ea, xa = a.update(bar)
        eb, xb = b_.update(bar)
        assert (ea == eb).all() and (xa == xb).all()
    assert a.state()["ring"].shape == (a.W, 6, 1)  # bounded: the last W bars only


def test_paper_preflight_loads_the_champion_and_refuses_a_tampered_one(
        lab: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC, datetime

    from trading_core.backtest import BacktestRequest
    from trading_core.paper.config import SessionConfig
    from trading_core.paper.preflight import preflight
    from trading_core.risk.config import RiskConfig

    monkeypatch.setenv("TRADING_DATA_DIR", str(lab["root"]))  # where the default registry lives
    request = BacktestRequest(strategy="ml_signal", params={}, symbol="^GSPC", venue="yahoo", timeframe="1d",
                              start=datetime(2016, 1, 1, tzinfo=UTC), end=datetime(2018, 12, 1, tzinfo=UTC),
                              risk=RiskConfig())
    config = SessionConfig(name="ml", request=request)

    def model_check() -> Any:
        checks = preflight(config, lab["wh"], data_dir=lab["root"], compile_engine=False)
        return next(c for c in checks if c.name == "model")

    ok = model_check()
    champion = lab["reg"].alias_version("champion")
    assert ok.ok and f"@v{champion}" in ok.detail and "verified" in ok.detail
    target = next(f for f in sorted(Path(lab["reg"].artifact_dir).rglob("model.skops"))
                  if lab["reg"].version(champion).source.removeprefix("models:/") in str(f))
    original = target.read_bytes()
    try:
        target.write_bytes(original + b"\0")
        bad = model_check()
    finally:
        target.write_bytes(original)
    assert not bad.ok and "tampered or corrupted" in bad.detail
