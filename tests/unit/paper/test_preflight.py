"""Pre-flight: the trading loop compiles through the Trader, and each failure has its reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from paper_support import PaperEnv, btc_request

from trading_core.paper.config import SessionConfig
from trading_core.paper.preflight import failing, preflight


def test_a_clean_session_passes_every_check_and_the_trader_is_compiled(
        tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    env = PaperEnv(tmp_path, tmp_path_factory.getbasetemp())
    checks = preflight(SessionConfig(request=btc_request()), env.warehouse, data_dir=tmp_path)
    assert failing(checks) == []
    assert {c.name for c in checks} == {"data", "quality", "model", "risk", "engine", "disk"}
    assert next(c for c in checks if c.name == "engine").detail.startswith("compiled in")


def test_a_trading_loop_that_cannot_be_built_is_a_verdict_not_a_crash(
        tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    env = PaperEnv(tmp_path, tmp_path_factory.getbasetemp())
    import trading_core.backtest.runner as runner

    def broken(_: object) -> object:
        raise RuntimeError("no such fee tier")

    monkeypatch.setattr(runner, "build_market_model", broken)
    bad = failing(preflight(SessionConfig(request=btc_request()), env.warehouse, data_dir=tmp_path))
    assert bad == ["engine: the trading loop did not compile: RuntimeError: no such fee tier"]
