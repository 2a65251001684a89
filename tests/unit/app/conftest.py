"""The app's tests: a seeded data directory (built once per test session, copied per test)."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from app_support import Seeded, seeded_copy


@pytest.fixture(scope="session")
def _seed_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("app-seed")


@pytest.fixture
def seeded(tmp_path: Path, _seed_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Seeded:
    s = seeded_copy(tmp_path / "data", _seed_cache)
    monkeypatch.setenv("TRADING_DATA_DIR", str(s.root))
    st.cache_data.clear()
    return s


@pytest.fixture
def empty_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "empty"
    d.mkdir()
    monkeypatch.setenv("TRADING_DATA_DIR", str(d))
    st.cache_data.clear()
    return d


@pytest.fixture(scope="session")
def models_seeded(tmp_path_factory: pytest.TempPathFactory, _seed_cache: Path) -> tuple[Seeded, dict]:
    """A seeded data dir whose MLflow store (``<data>/mlflow``) holds a really trained champion
    (the logistic baseline, walk-forward on the sample ^GSPC history, SHAP summary logged) and a
    second version whose run logged no SHAP summary. Built once; the tests only read it."""
    import logging

    from trading_core.config import load_config
    from trading_core.ml import lifecycle as lc
    from trading_core.ml.config import WalkForwardConfig
    from trading_core.ml.registry import Registry
    from trading_core.warehouse import Warehouse

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    s = seeded_copy(tmp_path_factory.mktemp("app-models") / "data", _seed_cache)
    cfg = load_config().models.model_copy(update={
        "models": ("logistic",), "walk_forward": WalkForwardConfig(folds=2, train_bars=1000, test_bars=400)})
    reg = Registry.from_config(cfg, s.root)
    first = lc.ensure_champion(cfg, Warehouse(s.root / "warehouse.duckdb"), reg)
    bare = reg.client.create_run(reg.experiment_id(), tags={"mlflow.runName": "no-shap"}).info.run_id
    reg.client.set_terminated(bare, "FINISHED")
    reg.client.create_model_version(reg.name, f"runs:/{bare}/model", run_id=bare)
    return s, {"name": reg.name, "champion": first["version"], "bare_run": bare}
