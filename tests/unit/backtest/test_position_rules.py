"""A YAML strategy's ``position:`` rules run in backtests through the Trader, as engine orders."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from trading_core.backtest import BacktestRequest, run_backtest
from trading_core.strategies.yaml_builder import YamlStrategyError, file_sha256, load_yaml_strategy

RULE = ("name: trend\nindicators:\n  sma_50: {fn: sma, window: 50}\n"
        "entry: \"crosses_above(close, sma_50)\"\nexit: \"crosses_below(close, sma_50)\"\n")


def _req(rule: Path, **kw: Any) -> BacktestRequest:
    base: dict[str, Any] = dict(strategy="yaml", params={"file": str(rule), "sha256": file_sha256(rule)},
                                symbol="^GSPC", venue="yahoo", timeframe="1d", start=datetime(2003, 1, 1, tzinfo=UTC),
                                end=datetime(2008, 1, 1, tzinfo=UTC), fee_bps=0.0, slippage="none", persist=False,
                                sizing="fixed", size=10.0)
    base.update(kw)
    return BacktestRequest(**base)


def test_scale_in_rules_add_to_a_winning_position_up_to_the_limit(spx_warehouse: Any, tmp_path: Path) -> None:
    plain, scaled = tmp_path / "plain.yaml", tmp_path / "scaled.yaml"
    plain.write_text(RULE)
    scaled.write_text(RULE + "position: {scale_in_step_pct: 0.02, scale_in_fraction: 0.5, scale_in_max: 2}\n")
    a, b = run_backtest(_req(plain), spx_warehouse), run_backtest(_req(scaled), spx_warehouse)
    assert (a.driver, b.driver) == ("batch", "stepped")
    buys_a = a.fills[a.fills["side"] == 0]
    buys_b = b.fills[b.fills["side"] == 0]
    adds = buys_b[buys_b["qty"] == 5.0]  # half the opening 10 units, each time the trip gains 2 % more
    assert len(adds) >= 2 and len(buys_b) == len(buys_a) + len(adds)
    # never more than two adds per round trip: at most 10 + 5 + 5 held
    pos = np.cumsum(np.where(b.fills["side"] == 0, b.fills["qty"], -b.fills["qty"]))
    assert pos.max() <= 20.0 + 1e-9
    assert any(t.quantity > 10.0 for t in b.portfolios[0].trades)


def test_position_rules_with_an_unknown_key_are_refused_with_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(RULE + "position:\n  scale_in_stepp: 0.02\n")
    with pytest.raises(YamlStrategyError) as e:
        load_yaml_strategy(bad)
    assert "position.scale_in_stepp" in str(e.value) and "line 7" in str(e.value)
