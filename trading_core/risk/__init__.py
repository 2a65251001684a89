"""The risk layer: strategies -> risk -> engine.

* ``orders``: pre-trade checks (price deviation, ADV, invalid/unknown, trading state, market
  filter) -- one Numba rule, vectorised (``verify_orders``/``verify_order_records``) and scalar
  (``verify_order``); a refused order is a reason code (``codes.RiskReason``), never an exception.
* ``sizing``: fixed, percent of equity, risk-based, correlation-aware scaling, Markowitz.
* ``market_filter``: pause entries while VIX > threshold, without look-ahead.
* ``breakers``: strategy/portfolio/system/market circuit breakers, states active/reduce_only/halted.
* ``trailing``: ATR or percent trailing stop levels from bars.
* ``gate``: ``RiskGate`` for paper trading and audit rows for backtests.
* ``config``: ``RiskConfig`` and its documented defaults (docs/risk.md).
"""

from .breakers import STATE_TABLE, BreakerState, BreakerTransition, CircuitBreakers, transition
from .codes import REASON_NAMES, RiskReason, TradingState, decision_of, reason_name
from .config import (
    BreakerConfig,
    MarketFilterConfig,
    OrderLimits,
    RiskConfig,
    SizingConfig,
    TrailingStopConfig,
    load_risk_config,
)
from .gate import OrderRequest, RiskDecision, RiskGate, decision_frame
from .market_filter import (
    entries_paused,
    entries_paused_from_warehouse,
    load_vix,
    market_filter_frame,
    vix_asof,
)
from .orders import (
    OrderCheck,
    Verification,
    adv_asof,
    average_daily_volume,
    verify_order,
    verify_order_records,
    verify_orders,
)
from .sizing import (
    InfeasiblePortfolio,
    correlation_scale,
    fixed_quantity,
    markowitz_weights,
    percent_of_equity,
    position_size,
    risk_based_quantity,
)
from .trailing import trailing_stop_levels, trailing_stops, wilder_atr

__all__ = [
    "RiskConfig", "OrderLimits", "SizingConfig", "MarketFilterConfig", "BreakerConfig",
    "TrailingStopConfig", "load_risk_config", "RiskReason", "TradingState", "REASON_NAMES",
    "reason_name", "decision_of", "verify_orders", "verify_order", "verify_order_records",
    "Verification", "OrderCheck", "average_daily_volume", "adv_asof", "fixed_quantity",
    "percent_of_equity", "risk_based_quantity", "correlation_scale", "position_size",
    "markowitz_weights", "InfeasiblePortfolio", "vix_asof", "entries_paused", "market_filter_frame",
    "load_vix", "entries_paused_from_warehouse", "CircuitBreakers", "BreakerState",
    "BreakerTransition", "STATE_TABLE", "transition", "trailing_stop_levels", "trailing_stops",
    "wilder_atr", "OrderRequest", "RiskDecision", "RiskGate", "decision_frame",
]
