"""Signals that need no per-bar rule, as orders in one call: the trading loop's batch form.

The ``Trader`` steps bar by bar when a rule must see each bar (risk gate, breakers, trailing
stops); a run with only entry/exit signals is the same fill logic in one batch call, and the
parity tests pin the two to the same fills. Every caller that turns plain signals into orders --
backtests' batch driver, stress sweeps and Monte Carlo, model evaluation -- comes through here,
so there is one place where signals become orders.
"""

from __future__ import annotations

from typing import Any


def trade_signals(*args: Any, **kwargs: Any) -> Any:
    """Fill entry/exit signals on the bars with the given market model (arguments and result as
    ``trading_core.engine.simulate_signals``: many portfolios in one call)."""
    from ..engine import simulate_signals

    return simulate_signals(*args, **kwargs)
