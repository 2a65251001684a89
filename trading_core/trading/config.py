"""What a Trader is asked to do: accounts and symbols, sizing, filters, risk, protection, allocation."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..risk.config import RiskConfig, TrailingStopConfig
from ..strategies.filter_config import FilterConfig
from ..strategies.position_rules import PositionRules

__all__ = ["Allocation", "Protection", "PositionRules", "TraderConfig"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Protection(_Frozen):
    """Resting exits placed with every position: a fixed stop / take-profit as a fraction of the
    decision price (a YAML strategy's ``stop_loss_pct``/``take_profit_pct``) and a trailing stop
    amended at every close (``risk.trailing_stop``)."""

    stop_loss_pct: float | None = Field(default=None, gt=0, lt=1)
    take_profit_pct: float | None = Field(default=None, gt=0)
    trailing: TrailingStopConfig | None = None

    @property
    def any(self) -> bool:
        return bool(self.stop_loss_pct or self.take_profit_pct or self.trailing)


class Allocation(_Frozen):
    """How an account with several symbols sizes its positions.

    ``signals``: each symbol's signal is sized on its own (``all_in`` = an equal share of equity,
    ``fixed`` units, ``risk`` = equity fraction at risk), shrunk by the risk gate's correlation
    scale against what the account already holds when ``risk.sizing.correlation_scaling`` is on.
    ``markowitz``: the signals choose WHICH symbols are held; every change of that set (and every
    ``rebalance_bars``, 0 = never) re-solves long-only mean-variance weights over the held set
    from the last ``lookback_bars`` returns and trades to them (``risk_aversion`` None =
    minimum variance).
    """

    method: Literal["signals", "markowitz"] = "signals"
    lookback_bars: int = Field(default=252, ge=2)
    risk_aversion: float | None = Field(default=None, gt=0)
    max_weight: float = Field(default=1.0, gt=0, le=1)
    rebalance_bars: int = Field(default=0, ge=0)
    correlation_window: int = Field(default=60, ge=3)


class TraderConfig(BaseModel):
    """One Trader: ``symbol_of[c]`` is the symbol signal column ``c`` trades, ``account_of[c]``
    the account it trades in (default: one account per column); accounts of several columns
    share cash across their symbols. ``model`` is the engine's ``MarketModel``, or one per account
    (same venue rules, own costs: a Monte Carlo path per account)."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    symbols: tuple[str, ...]
    symbol_of: tuple[int, ...]
    account_of: tuple[int, ...] | None = None
    model: Any
    cash: float = Field(default=100_000.0, gt=0, allow_inf_nan=False)
    seed: int = 0
    size_mode: Literal["all_in", "fixed", "risk"] = "all_in"
    size: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    short: bool = False
    strategy: str = "strategy"
    calendar: Literal["crypto", "equity"] = "crypto"
    bar_ms: int = Field(gt=0)
    filters: FilterConfig | None = None
    risk: RiskConfig | None = None
    protection: Protection = Protection()
    allocation: Allocation = Allocation()
    position: PositionRules = PositionRules()
    run_id: str = "run"
    context: str = "backtest"
    device: str = "cpu"
    record_events: bool = True

    @model_validator(mode="after")
    def _layout(self) -> TraderConfig:
        n = len(self.symbols)
        if any(not 0 <= s < n for s in self.symbol_of):
            raise ValueError(f"symbol_of must index the {n} symbols")
        if self.account_of is not None and len(self.account_of) != len(self.symbol_of):
            raise ValueError("account_of needs one account per signal column")
        if self.allocation.method == "markowitz" and self.short:
            raise ValueError("markowitz allocation is long-only: drop short")
        return self
