"""The risk layer: strategies -> risk -> engine.

* ``orders``: pre-trade checks (price deviation, ADV, invalid/unknown, trading state, market
  filter) -- one Numba rule, vectorised (``verify_orders``/``verify_order_records``) and scalar
  (``verify_order``); a refused order is a reason code (``codes.RiskReason``), never an exception.
* ``sizing``: fixed, percent of equity, risk-based, correlation-aware scaling, Markowitz.
* ``market_filter``: pause entries while VIX > threshold, without look-ahead.
* ``breakers``: strategy/portfolio/system/market circuit breakers, states active/reduce_only/halted.
* ``trailing``: ATR or percent trailing stop levels from bars.
* ``gate``: ``RiskGate`` for paper trading and audit rows for backtests.
* ``config``: ``RiskConfig`` and its documented defaults (docs/risk.md)."""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "STATE_TABLE": "breakers",
    "BreakerState": "breakers",
    "BreakerTransition": "breakers",
    "CircuitBreakers": "breakers",
    "transition": "breakers",
    "REASON_NAMES": "codes",
    "RiskReason": "codes",
    "TradingState": "codes",
    "decision_of": "codes",
    "reason_name": "codes",
    "BreakerConfig": "config",
    "MarketFilterConfig": "config",
    "OrderLimits": "config",
    "RiskConfig": "config",
    "SizingConfig": "config",
    "TrailingStopConfig": "config",
    "load_risk_config": "config",
    "load_risk_config_file": "config",
    "OrderRequest": "gate",
    "RiskDecision": "gate",
    "RiskGate": "gate",
    "decision_frame": "gate",
    "entries_paused": "market_filter",
    "entries_paused_from_warehouse": "market_filter",
    "load_vix": "market_filter",
    "market_filter_frame": "market_filter",
    "vix_asof": "market_filter",
    "OrderCheck": "orders",
    "Verification": "orders",
    "adv_asof": "orders",
    "average_daily_volume": "orders",
    "verify_order": "orders",
    "verify_order_records": "orders",
    "verify_orders": "orders",
    "InfeasiblePortfolio": "sizing",
    "correlation_scale": "sizing",
    "fixed_quantity": "sizing",
    "markowitz_weights": "sizing",
    "percent_of_equity": "sizing",
    "position_size": "sizing",
    "risk_based_quantity": "sizing",
    "trailing_stop_levels": "trailing",
    "trailing_stops": "trailing",
    "wilder_atr": "trailing",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
