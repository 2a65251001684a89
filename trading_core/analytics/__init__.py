"""Performance analytics: metrics of equity curves, trades, costs and benchmark comparison."""

from .metrics import DrawdownInfo, PerformanceMetrics, compute_metrics, drawdown_info, simple_returns

__all__ = ["DrawdownInfo", "PerformanceMetrics", "compute_metrics", "drawdown_info", "simple_returns"]
