"""The simulation core: one Numba fill engine for backtests, stress tests and paper trading.

Public API (stable):

- ``simulate_signals(ts, open, high, low, close, volume, *, entries, exits, symbol_of, model, cash,
  size_mode, size, short, device, seed) -> SimResult`` — batch backtest of P signal portfolios.
- ``simulate_orders(..., orders=ORDER_DTYPE array, n_portfolios=P, ...) -> SimResult`` — batch order stream.
- ``Engine`` — streaming: submit/cancel/replace, ``step`` one bar, snapshot/restore.
- ``MarketModel`` / ``FeeTier`` / ``VenueConfig`` — execution assumptions (``MarketModel.from_venue_config``).
- Enums (NamedTuple-of-ints, usable in kernels): ``OrderType``, ``Side``, ``TimeInForce``, ``SizeMode``,
  ``Action``, ``Role``, ``RejectReason``, ``EventKind``, ``FillReason``; record dtypes ``FILL_DTYPE``,
  ``ORDER_DTYPE``, ``EVENT_DTYPE``.
- ``warmup()`` compiles/loads every kernel; ``resolve_device`` says which device ``"auto"`` picks.

Layout: ``rules`` (scalar rules: costs, venue checks, order book, fills) and ``bar`` (one bar of one
portfolio, the time-major block loop) are compiled for the CPU and, from the same source, for CUDA
(``cuda``); they pass the state as two NamedTuple packs of arrays (``packs``: ``Market``, ``Book``);
``cpu`` holds the CPU batch kernels and record packing; host side: ``state`` (input and
state arrays), ``dispatch`` (device choice), ``batch``, ``stream`` (``Engine``), ``results``, ``warmup``.

See docs/simulation.md for the fill rules and every model parameter.
"""

from trading_core.engine.batch import simulate_orders, simulate_signals
from trading_core.engine.dispatch import cuda_available, resolve_device
from trading_core.engine.enums import (
    EVENT_DTYPE,
    FILL_DTYPE,
    ORDER_DTYPE,
    Action,
    EventKind,
    FillReason,
    OrderStatus,
    OrderType,
    RejectReason,
    Role,
    Side,
    SizeMode,
    TimeInForce,
)
from trading_core.engine.model import FeeTier, MarketModel, PortfolioModels, VenueConfig
from trading_core.engine.results import SimResult
from trading_core.engine.stream import Engine
from trading_core.engine.warmup import warmup
from trading_core.trading.trips import Trade  # the one round-trip type (SimResult.trades builds it)

__all__ = [
    "EVENT_DTYPE", "FILL_DTYPE", "ORDER_DTYPE", "Action", "Engine", "EventKind", "FeeTier", "FillReason",
    "MarketModel", "OrderStatus", "PortfolioModels", "OrderType", "RejectReason", "Role", "Side", "SimResult", "SizeMode",
    "TimeInForce", "Trade", "VenueConfig", "cuda_available", "resolve_device", "simulate_orders",
    "simulate_signals", "warmup",
]
