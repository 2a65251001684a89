"""One way to wire a session's runner: the Dagster job and `trading paper run` both call it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.paper_support import PaperEnv
from trading_core.config import load_config
from trading_core.paper.runner import build_runner


def test_live_session_when_default_mode_offline_then_polls_live_providers_with_the_configured_guard(
        tmp_path: Path, tmp_path_factory: Any) -> None:
    env = PaperEnv(tmp_path / "data", tmp_path_factory.mktemp("cache"))
    sid = env.session(feed="live")
    md = load_config(None).market_data
    md = md.model_copy(update={"mode": "offline",
                               "validation": md.validation.model_copy(update={"stale_bars": 7})})
    built: list[tuple[Any, Any]] = []

    def build(universe: Any, config: Any, *, now: Any) -> str:
        built.append((universe, config))
        return "provider"

    runner = build_runner(sid, store=env.store, ledger=env.ledger, warehouse=env.warehouse, run_id="r",
                          market_data=md, data_dir=env.root, build_provider=build)

    assert runner.provider == "provider" and runner.validation is not None
    (universe, config), = built
    assert config.mode == "live" and list(universe.symbols) == ["BTC/USD"]
    assert runner.stale_bars == 7


def test_replay_session_then_no_provider(tmp_path: Path, tmp_path_factory: Any) -> None:
    env = PaperEnv(tmp_path / "data", tmp_path_factory.mktemp("cache"))
    sid = env.session()
    runner = build_runner(sid, store=env.store, ledger=env.ledger, warehouse=env.warehouse, run_id="r",
                          market_data=load_config(None).market_data, data_dir=env.root,
                          build_provider=lambda *a, **k: (_ for _ in ()).throw(AssertionError("built")))
    assert runner.provider is None and runner.validation is None
