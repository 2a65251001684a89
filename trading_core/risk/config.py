"""Risk configuration: frozen pydantic models whose defaults are the documented limits.

Every limit lives here (NautilusTrader's ``RiskEngineConfig`` idea): the checks read a config and
never hard-code a number, so a run's full risk setup can be stored with its results and replayed.
Unknown keys are errors, so a misspelt limit never silently falls back to its default.
``load_risk_config`` turns pydantic's errors into a ``ConfigError`` whose every line names the
field (``risk.breakers.portfolio.daily_loss_halt: ...``). Defaults are listed in docs/risk.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import ConfigError, InvalidInput
from ..yaml_io import load_yaml_file

__all__ = [
    "RiskConfig", "OrderLimits", "SizingConfig", "MarketFilterConfig", "BreakerConfig",
    "StrategyBreakerConfig", "PortfolioBreakerConfig", "SystemBreakerConfig", "MarketBreakerConfig",
    "TrailingStopConfig", "load_risk_config", "load_risk_config_file",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class OrderLimits(_Frozen):
    """Pre-trade order verification limits."""

    max_price_deviation: float = Field(
        default=0.10, gt=0, le=1,
        description="reject an order priced more than this fraction away from the last price")
    max_adv_fraction: float = Field(
        default=0.10, gt=0, le=1,
        description="reject an order larger than this fraction of the average daily volume")
    adv_window_days: int = Field(
        default=20, ge=1, le=250, description="days in the average-daily-volume mean")
    require_volume_history: bool = Field(
        default=False,
        description="reject (no_volume_history) when ADV is unknown; False skips the ADV check then")


class SizingConfig(_Frozen):
    """How a signal becomes a quantity (see trading_core.risk.sizing)."""

    method: Literal["fixed", "percent_equity", "risk"] = "risk"
    fixed_quantity: float = Field(default=1.0, gt=0, description="units per order for 'fixed'")
    equity_fraction: float = Field(default=0.10, gt=0, le=1,
                                   description="share of equity per position for 'percent_equity'")
    risk_per_trade: float = Field(default=0.02, gt=0, le=0.25,
                                  description="capital lost if the stop is hit, for 'risk'")
    default_stop_pct: float = Field(default=0.05, gt=0, lt=1,
                                    description="stop distance used when an order carries none")
    max_position_fraction: float = Field(default=1.0, gt=0, le=10,
                                         description="cap on one position's notional / equity")
    correlation_scaling: bool = Field(default=True,
                                      description="scale new positions down by correlation with exposure")
    correlation_floor: float = Field(default=0.0, ge=0, le=1,
                                     description="correlations at or below this do not scale")


class MarketFilterConfig(_Frozen):
    """Pause new entries while the market is in stress (VIX read from the warehouse)."""

    enabled: bool = True
    vix_threshold: float = Field(default=30.0, gt=0, description="pause entries while VIX > this")
    vix_venue: str = "yahoo"
    vix_symbol: str = "^VIX"
    vix_timeframe: str = "1d"
    max_vix_age_days: int = Field(
        default=5, ge=1,
        description="a VIX close older than this (days) counts as missing")
    on_missing_vix: Literal["pause", "allow"] = Field(
        default="pause", description="no usable VIX close: pause entries (fail closed) or allow")


class StrategyBreakerConfig(_Frozen):
    """Per-strategy breaker: drawdown of its own equity and its run of losing trades."""

    drawdown_reduce: float = Field(default=0.10, gt=0, le=1)
    drawdown_halt: float = Field(default=0.20, gt=0, le=1)
    losing_streak_reduce: int = Field(default=5, ge=1)
    losing_streak_halt: int = Field(default=8, ge=1)
    cooldown_s: float = Field(default=86_400.0, ge=0, description="wait before stepping down a state")

    @model_validator(mode="after")
    def _ordered(self) -> StrategyBreakerConfig:
        if self.drawdown_halt < self.drawdown_reduce:
            raise ValueError("drawdown_halt must be >= drawdown_reduce")
        if self.losing_streak_halt < self.losing_streak_reduce:
            raise ValueError("losing_streak_halt must be >= losing_streak_reduce")
        return self


class PortfolioBreakerConfig(_Frozen):
    """Whole-account breaker: daily loss, drawdown, gross exposure, concentration."""

    daily_loss_reduce: float = Field(default=0.03, gt=0, le=1,
                                     description="loss since the UTC day opened (last equity before it)")
    daily_loss_halt: float = Field(default=0.05, gt=0, le=1)
    max_drawdown_halt: float = Field(default=0.25, gt=0, le=1,
                                     description="latched: only a manual reset clears it")
    max_gross_exposure: float = Field(default=2.0, gt=0, description="sum |position value| / equity")
    max_concentration: float = Field(default=1.0, gt=0,
                                     description="largest |position value| / equity")
    cooldown_s: float = Field(default=86_400.0, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> PortfolioBreakerConfig:
        if self.daily_loss_halt < self.daily_loss_reduce:
            raise ValueError("daily_loss_halt must be >= daily_loss_reduce")
        return self


class SystemBreakerConfig(_Frozen):
    """Platform health: failing calls and stale data halt trading."""

    max_error_rate: float = Field(default=0.25, gt=0, le=1, description="errors / requests")
    min_requests: int = Field(default=10, ge=1, description="fewer requests never trip the rate")
    max_data_age_bars: float = Field(default=3.0, gt=0,
                                     description="halt when the newest bar is this many bars old")
    cooldown_s: float = Field(default=300.0, ge=0)


class MarketBreakerConfig(_Frozen):
    """Market stress: realised-volatility percentile and VIX put the book in reduce-only."""

    vol_percentile_reduce: float = Field(default=0.95, gt=0, le=1)
    vol_percentile_recover: float | None = Field(
        default=0.85, gt=0, le=1,
        description="hysteresis: once tripped by the volatility rank, the breaker stays reduce-only until "
                    "the rank is at or below this (None = the trip level: no hysteresis)")
    vix_reduce: float = Field(default=40.0, gt=0,
                              description="above the market filter's 30: the filter pauses entries first, "
                                          "the breaker marks a deeper stress episode with an audited state")
    vix_recover: float | None = Field(default=35.0, gt=0,
                                      description="hysteresis: a VIX trip holds until VIX is at or below this")
    vix_halt: float | None = Field(default=None, gt=0, description="None: VIX never halts")
    cooldown_s: float = Field(default=86_400.0, ge=0,
                              description="minimum dwell in a tripped state before stepping back (a day)")

    @model_validator(mode="after")
    def _hysteresis_below_trip(self) -> MarketBreakerConfig:
        if self.vol_percentile_recover is not None and self.vol_percentile_recover > self.vol_percentile_reduce:
            raise ValueError("vol_percentile_recover must be <= vol_percentile_reduce")
        if self.vix_recover is not None and self.vix_recover > self.vix_reduce:
            raise ValueError("vix_recover must be <= vix_reduce")
        return self


class BreakerConfig(_Frozen):
    enabled: bool = True
    flatten_on_loss_halt: bool = Field(
        default=True,
        description="a strategy or portfolio breaker that halts (drawdown, daily loss, losing streak) "
                    "closes that account's positions at once (kill switch); system and market halts "
                    "only stop new orders, since their prices cannot be trusted or are in turmoil")
    strategy: StrategyBreakerConfig = StrategyBreakerConfig()
    portfolio: PortfolioBreakerConfig = PortfolioBreakerConfig()
    system: SystemBreakerConfig = SystemBreakerConfig()
    market: MarketBreakerConfig = MarketBreakerConfig()


class TrailingStopConfig(_Frozen):
    """A trailing exit: the stop follows the best price and never moves against the position.

    ``atr``: stop = extreme close - atr_multiple x ATR(atr_period) (Wilder). ``percent``:
    stop = extreme close x (1 - trail_pct) for a long (mirrored for a short).
    """

    kind: Literal["atr", "percent"] = "atr"
    atr_period: int = Field(default=14, ge=1, le=500)
    atr_multiple: float = Field(default=3.0, gt=0, le=50)
    trail_pct: float = Field(default=0.05, gt=0, lt=1)


class RiskConfig(_Frozen):
    """Everything the risk layer needs. ``RiskConfig()`` is the documented default setup."""

    orders: OrderLimits = OrderLimits()
    sizing: SizingConfig = SizingConfig()
    market_filter: MarketFilterConfig = MarketFilterConfig()
    breakers: BreakerConfig = BreakerConfig()
    trailing_stop: TrailingStopConfig | None = Field(
        default=None, description="None: no trailing exit")
    audit: bool = Field(default=True, description="write every decision to risk.risk_decisions")

    # Flat aliases for the limits people ask for most, so code reads like the issue.
    @property
    def max_price_deviation(self) -> float:
        return self.orders.max_price_deviation

    @property
    def max_adv_fraction(self) -> float:
        return self.orders.max_adv_fraction

    @property
    def risk_per_trade(self) -> float:
        return self.sizing.risk_per_trade

    @property
    def vix_threshold(self) -> float:
        return self.market_filter.vix_threshold


def load_risk_config(raw: dict[str, Any] | None, *, source: str = "risk") -> RiskConfig:
    """Validate ``raw`` (the ``risk:`` section of the config); every problem names its field."""
    try:
        return RiskConfig.model_validate(raw or {})
    except ValidationError as e:
        problems = []
        for err in e.errors():
            loc = ".".join(str(p) for p in (source, *err["loc"]))
            problems.append(f"{loc}: {err['msg']}")
        raise ConfigError(source, problems) from None


def load_risk_config_file(path: str | Path) -> RiskConfig:
    """Read and validate a ``--risk-config`` YAML file (a ``risk:`` section or its body).

    The file goes through ``yaml_io`` (regular file, size, UTF-8, no aliases, depth, duplicate
    keys, finite numbers), so every refusal is one ``InvalidInput`` line naming the file."""
    raw, _ = load_yaml_file(path)
    raw = raw or {}
    if not isinstance(raw, dict):
        raise InvalidInput(f"--risk-config {path}: expected a mapping")
    return load_risk_config(raw.get("risk", raw), source=f"{path}: risk")
