"""Where chunks of work run: in this process (default) or on a Dask ``distributed`` cluster.

A chunk is a plain picklable value and its function a module-level one, so the same call runs
in-process, on a ``LocalCluster`` or on a real scheduler (``compute.dask_scheduler``). Every chunk
carries its own seed, so results do not depend on where or in which order chunks run; they come
back in submission order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ..errors import TradingError

__all__ = ["ComputeUnavailable", "map_chunks"]

C = TypeVar("C")
R = TypeVar("R")


class ComputeUnavailable(TradingError):
    """The configured Dask scheduler could not be reached or a chunk failed on it."""


def map_chunks(fn: Callable[[C], R], chunks: Sequence[C], *, scheduler: str | None = None, client: Any = None,
               timeout_s: float = 600.0) -> list[R]:
    """``[fn(c) for c in chunks]``, on ``client`` (a ``distributed.Client``) or the scheduler at
    ``scheduler`` when given, else in-process; on a cluster, all chunks must finish within
    ``timeout_s``. A client made here is closed before returning."""
    if client is None and scheduler is None:
        return [fn(c) for c in chunks]
    from distributed import Client

    own = client is None
    if own:
        try:
            client = Client(scheduler, timeout=min(timeout_s, 60.0), set_as_default=False)
        except (OSError, TimeoutError) as e:
            raise ComputeUnavailable(f"compute.dask_scheduler {scheduler}: cannot connect ({e})") from None
    try:
        from distributed import wait

        futures = client.map(fn, list(chunks), pure=False)
        wait(futures, timeout=timeout_s)  # a lost or stuck cluster is an error, not a hang
        return list(client.gather(futures, errors="raise"))  # submission order
    except (OSError, TimeoutError) as e:
        raise ComputeUnavailable(f"dask cluster {scheduler or client}: {e}") from None
    finally:
        if own:
            client.close()
