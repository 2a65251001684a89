"""The CUDA kernel, run under the CUDA simulator in a subprocess, equals the CPU kernel bit for bit.

A subprocess because NUMBA_ENABLE_CUDASIM is only read when numba is first imported, and this
pytest process has already imported numba normally.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from trading_core.config import PROJECT_ROOT


def _run(n: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", PYTHONPATH=str(PROJECT_ROOT))
    return subprocess.run([sys.executable, "-m", "tests.unit.engine._cuda_parity", n], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def test_cuda_kernel_under_simulator_matches_cpu_kernel() -> None:
    r = _run("2")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "CUDA-SIM PARITY OK 2" in r.stdout


@pytest.mark.slow
def test_cuda_kernel_under_simulator_matches_cpu_kernel_many_seeds() -> None:
    r = _run("20")
    assert r.returncode == 0, r.stdout + r.stderr


def test_auto_device_is_cpu_without_a_gpu() -> None:
    from trading_core.engine import cuda_available, resolve_device

    if not cuda_available():
        assert resolve_device("auto") == "cpu"
