"""Which device runs a simulation: ``auto`` / ``cpu`` / ``cuda`` resolved honestly (``cuda``
without a usable GPU is refused with ``InvalidInput``; ``auto`` says why it fell back), and the
kernel that runs on it."""

from __future__ import annotations

import os
from collections.abc import Callable

from trading_core.engine import cpu
from trading_core.errors import InvalidInput


def _simulator_on() -> bool:
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


def cuda_unavailable_reason() -> str | None:
    """Why no real CUDA device is usable, in one line; None when one is (or the simulator is on)."""
    if _simulator_on():
        return None
    try:
        from numba import cuda

        if cuda.is_available():
            return None
        from numba.cuda.cudadrv.driver import driver

        err = getattr(driver, "initialization_error", None)
    except Exception as e:  # noqa: BLE001 - driver problems mean "no GPU"; say which
        err = str(e) or type(e).__name__
    first = next((line.strip() for line in str(err or "").splitlines() if line.strip()), "")
    return first or "no CUDA device found"


def cuda_available() -> bool:
    """A real CUDA device (never the simulator) is usable."""
    return not _simulator_on() and cuda_unavailable_reason() is None


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when a real GPU is present, else 'cpu'; 'cuda' is honoured when a GPU is
    usable or the CUDA simulator is on, and otherwise refused with ``InvalidInput`` saying why."""
    if device == "auto":
        return "cuda" if cuda_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise InvalidInput(f"device must be auto|cpu|cuda, got {device!r}")
    if device == "cuda":
        reason = cuda_unavailable_reason()
        if reason is not None:
            raise InvalidInput(f"device cuda requested but no usable CUDA GPU: {reason}")
    return device


def resolve_with_note(device: str) -> tuple[str, dict[str, str]]:
    """``resolve_device`` plus, when ``auto`` fell back to the CPU, why (``meta["device_fallback"]``)."""
    dev = resolve_device(device)
    if device == "auto" and dev == "cpu":
        why = "auto never picks the CUDA simulator" if _simulator_on() else cuda_unavailable_reason()
        return dev, {"device_fallback": f"auto fell back to cpu: {why or 'no usable CUDA GPU'}"}
    return dev, {}


def kernel_for(device: str, P: int) -> Callable[..., None]:
    if device == "cuda":
        from trading_core.engine.cuda import simulate_cuda

        return simulate_cuda
    return cpu.simulate_parallel_nb if P > 1 else cpu.simulate_serial_nb
