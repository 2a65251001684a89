"""The one trading loop (``Trader``): strategy stream -> signal filters -> risk gate -> engine.

Stepped backtests, paper sessions and stress tests all call it; see ``trader`` and
docs/trading-loop.md.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "Allocation": "config",
    "PositionRules": "config",
    "Protection": "config",
    "TraderConfig": "config",
    "Event": "events",
    "EVENT_TYPES": "events",
    "AdvTracker": "inputs",
    "AtrTracker": "inputs",
    "BarClock": "inputs",
    "ReturnWindow": "inputs",
    "VixAsOf": "inputs",
    "VolPercentileTracker": "inputs",
    "ReplaySignals": "replay",
    "bar_slices": "replay",
    "decode_state": "state",
    "encode_state": "state",
    "Trader": "trader",
    "Trade": "trips",
    "TripBook": "trips",
    "round_trips": "trips",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
