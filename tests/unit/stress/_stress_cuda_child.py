"""Run in a subprocess with NUMBA_ENABLE_CUDASIM=1: Monte Carlo chunks (pickled by the test) run on
the CUDA kernel (simulated) must give exactly the CPU kernel's paths."""

from __future__ import annotations

import dataclasses
import os
import pickle
import sys

import numpy as np

assert os.environ.get("NUMBA_ENABLE_CUDASIM") == "1", "set NUMBA_ENABLE_CUDASIM=1 before numba is imported"

from trading_core.stress.montecarlo import run_chunk  # noqa: E402

with open(sys.argv[1], "rb") as f:
    chunks = pickle.load(f)
for ch in chunks:
    cpu = run_chunk(dataclasses.replace(ch, device="cpu"))
    gpu = run_chunk(dataclasses.replace(ch, device="cuda"))
    assert gpu.device == "cuda", gpu.device
    assert np.array_equal(cpu.equity, gpu.equity), (cpu.final_equity, gpu.final_equity)
    assert np.array_equal(cpu.draws, gpu.draws) and np.unique(cpu.draws[:, 1]).size == len(cpu.draws)  # own draw each
print(f"STRESS CUDA-SIM PARITY OK {len(chunks)}")
