"""Device honesty (cuda refused without a GPU, auto says why it fell back) and explicit rule signatures."""

from __future__ import annotations

import numpy as np
import pytest

from tests.unit.engine.conftest import bars_from
from trading_core.engine import Engine, MarketModel, cuda_available, simulate_signals
from trading_core.errors import InvalidInput

no_gpu = pytest.mark.skipif(cuda_available(), reason="a usable CUDA GPU is present")


def _one_trade(device: str):
    ts, o, h, lo, c, v = bars_from([(100, 101, 99, 100), (100, 102, 99, 101), (101, 103, 100, 102)])
    ent = np.array([[True], [False], [False]])
    ex = np.array([[False], [False], [True]])
    return simulate_signals(ts, o, h, lo, c, v, entries=ent, exits=ex, model=MarketModel(fill_at="close"),
                            device=device)


@no_gpu
def test_simulate_when_device_cuda_without_gpu_then_invalid_input_says_why() -> None:
    with pytest.raises(InvalidInput, match="device cuda requested but no usable CUDA GPU: "):
        _one_trade("cuda")
    with pytest.raises(InvalidInput, match="device cuda requested"):
        Engine(1, 1, device="cuda")


@no_gpu
def test_simulate_when_device_auto_without_gpu_then_cpu_and_result_says_so() -> None:
    res = _one_trade("auto")
    assert res.device == "cpu"
    assert res.meta["device_fallback"].startswith("auto fell back to cpu: ")
    assert len(res.fills) == 2
    assert Engine(1, 1, device="auto").device_fallback.startswith("auto fell back to cpu: ")


def test_simulate_when_device_cpu_then_no_fallback_note() -> None:
    res = _one_trade("cpu")
    assert res.device == "cpu" and "device_fallback" not in res.meta
    assert Engine(1, 1, device="cpu").device_fallback is None


def test_rule_when_types_do_not_match_parameters_then_refused_at_definition() -> None:
    from trading_core.engine.rules import F0, I0, rule

    def two(a, b):
        return a + b

    with pytest.raises(TypeError, match="rule two: 1 types for 2 parameters"):
        rule(I0)(two)
    assert rule(I0, F0)(two)(1, 2.5) == 3.5
