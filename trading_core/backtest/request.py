"""What a backtest run is asked to do: one validated, frozen, JSON-serialisable request.

The request is stored whole with every result (``backtest.runs.config``), so anything that changes
an outcome must be a field here.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from ..risk.config import RiskConfig
from ..strategies.filter_config import FilterConfig  # the pydantic model alone: no Numba filter kernels
from ..symbols import Symbol, Venue
from ..timeframes import Timeframe

SizingMode = Literal["all_in", "fixed", "risk"]
AllocationMethod = Literal["signals", "markowitz"]
FillAt = Literal["next_open", "close"]
Calendar = Literal["crypto", "equity"]

# none | fixed:<bps> | sqrt | sqrt:<coef>
_SLIPPAGE = re.compile(r"none|fixed:(?P<bps>\d+(\.\d+)?)|sqrt(:(?P<coef>\d+(\.\d+)?))?")
DEFAULT_SQRT_IMPACT = 0.1
MAX_SLIPPAGE_BPS = 1000.0  # 10 %, as the fee's limit
MAX_IMPACT_COEF = 10.0

# Bar times are int64 epoch milliseconds and pass through int64-nanosecond libraries (polars,
# NumPy datetime64[ns]); those end at 2262-04-11, and no market history starts before 1900.
MIN_START = datetime(1900, 1, 1, tzinfo=UTC)
MAX_END = datetime(2262, 4, 11, tzinfo=UTC)
DATE_RANGE = f"{MIN_START.date()} .. {(MAX_END - timedelta(days=1)).date()}"  # as --start/--end dates
MAX_CASH = 1e15
MAX_SIZE = 1e12
MAX_BARS_PARAM = 100_000  # rebalance_bars and the like: bars, not a count that can overflow


def parse_slippage(model: str) -> tuple[float, float]:
    """``"none"`` -> (0, 0); ``"fixed:5"`` -> 5 bps; ``"sqrt[:k]"`` -> impact coefficient k.

    Returns (slippage_bps, impact_coef) for the engine's ``MarketModel``. The square-root model
    charges ``k x volatility x sqrt(order qty / bar volume)`` (the engine's impact rule).
    """
    m = _SLIPPAGE.fullmatch(model.strip()) if isinstance(model, str) else None
    if not m:
        raise ValueError(f"slippage model {model!r}: expected none, fixed:<bps> (e.g. fixed:5), sqrt or sqrt:<k>")
    if m.group("bps") is not None:
        bps = float(m.group("bps"))
        if bps > MAX_SLIPPAGE_BPS:
            raise ValueError(f"slippage model {model!r}: fixed bps must be <= {MAX_SLIPPAGE_BPS:g}")
        return bps, 0.0
    if model.strip().startswith("sqrt"):
        coef = float(m.group("coef")) if m.group("coef") is not None else DEFAULT_SQRT_IMPACT
        if coef > MAX_IMPACT_COEF:
            raise ValueError(f"slippage model {model!r}: sqrt coefficient must be <= {MAX_IMPACT_COEF:g}")
        return 0.0, coef
    return 0.0, 0.0


def _utc(v: Any) -> Any:
    if isinstance(v, datetime):
        return v if v.tzinfo else v.replace(tzinfo=UTC)
    if isinstance(v, date):
        return datetime(v.year, v.month, v.day, tzinfo=UTC)
    return v


class BacktestRequest(BaseModel):
    """One backtest: strategy and parameters on one series, with money, costs, fills and sizing.

    ``start`` is inclusive and ``end`` exclusive on bar open time (the CLI turns an ``--end`` date
    into the next midnight so the named day is included). ``fee_bps`` None uses the venue's fee
    schedule; a number replaces it with one flat maker=taker tier. ``size`` is units for ``fixed``,
    the fraction of equity at risk (stop at ``risk_stop_pct``) for ``risk``, ignored for
    ``all_in``. ``venue_config`` is the ``venues.<venue>`` section of the config (fee tiers, lot
    and tick size, ...). ``calendar`` None derives it from the venue (yahoo -> equity, else crypto).

    ``symbols`` (two or more, the first equal to ``symbol``) makes each strategy variant ONE
    account holding all of them with shared cash, on the bars all of them have; ``all_in`` then
    gives each symbol an equal share of equity, and ``allocation="markowitz"`` lets the signals
    pick the held set and mean-variance weights size it (``rebalance_bars`` > 0 also rebalances
    on a schedule). See ``stepped.Allocation``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    strategy: str = Field(min_length=1)
    params: dict[str, str | float | int] = Field(default_factory=dict)
    symbol: Symbol
    venue: Venue
    timeframe: Timeframe
    start: datetime
    end: datetime
    cash: float = Field(default=100_000.0, gt=0, le=MAX_CASH, allow_inf_nan=False)
    fee_bps: float | None = Field(default=None, ge=0, le=1000, allow_inf_nan=False)
    slippage: str = "none"
    fill: FillAt = "next_open"
    sizing: SizingMode = "all_in"
    size: float = Field(default=1.0, gt=0, le=MAX_SIZE, allow_inf_nan=False)
    short: bool = False
    calendar: Calendar | None = None
    venue_config: dict[str, Any] = Field(default_factory=dict)
    device: Literal["auto", "cpu", "cuda"] = "cpu"
    seed: int = 0
    persist: bool = True
    # Risk and filters change outcomes, so they are part of the stored request. None = off: a
    # request built in code without them behaves exactly as before they existed; the CLI fills
    # them from the config (``risk:`` with --risk or the backtest.risk profile; filters when configured).
    risk: RiskConfig | None = None
    filters: FilterConfig | None = None
    symbols: tuple[Symbol, ...] = ()
    # One venue per ``universe`` symbol when they trade on different venues (a crypto exchange and
    # a stock venue in one portfolio, stepped on the union of their bars); () = all on ``venue``.
    venues: tuple[Venue, ...] = ()
    allocation: AllocationMethod = "signals"
    rebalance_bars: int = Field(default=0, ge=0, le=MAX_BARS_PARAM)
    markowitz_lookback: int = Field(default=252, ge=10, le=5000)
    markowitz_risk_aversion: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    max_weight: float = Field(default=1.0, gt=0, le=1, allow_inf_nan=False)
    # Bars before ``start`` the strategy's indicators are fed before the first decision (no trade
    # on them): a paper session warms up this way, and a backtest with the same number gives the
    # same fills. 0 = the strategy starts cold at ``start`` (vectorbt's behaviour).
    warmup_bars: int = Field(default=0, ge=0, le=MAX_BARS_PARAM)

    @field_validator("start", "end", mode="before")
    @classmethod
    def _dates(cls, v: Any) -> Any:
        return _utc(v)

    @field_validator("start", "end")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        try:
            return _utc(v).astimezone(UTC)  # type: ignore[no-any-return]
        except OverflowError:
            raise ValueError(f"{v.isoformat()} is outside the supported range {DATE_RANGE}") from None

    @field_validator("start", "end")
    @classmethod
    def _in_range(cls, v: datetime, info: ValidationInfo) -> datetime:
        if not MIN_START <= v <= MAX_END:
            raise ValueError(f"{info.field_name} {v.isoformat()} is outside the supported range {DATE_RANGE}")
        return v

    @field_validator("slippage")
    @classmethod
    def _slippage(cls, v: str) -> str:
        parse_slippage(v)
        return v.strip()

    @model_validator(mode="after")
    def _range(self) -> BacktestRequest:
        if self.end <= self.start:
            raise ValueError(f"end {self.end.date()} must be after start {self.start.date()}")
        if self.symbols:
            if len(self.symbols) < 2 or len(set(self.symbols)) != len(self.symbols):
                raise ValueError("symbols must name two or more different symbols")
            if self.symbols[0] != self.symbol:
                raise ValueError(f"symbols must start with symbol {self.symbol!r}")
        if self.venues:
            if len(self.venues) != len(self.universe):
                raise ValueError(f"venues names {len(self.venues)} venue(s) for {len(self.universe)} symbol(s)")
            if self.venues[0] != self.venue:
                raise ValueError(f"venues must start with venue {self.venue!r}")
        if self.allocation == "markowitz":
            if not self.symbols:
                raise ValueError("allocation markowitz needs two or more symbols")
            if self.short:
                raise ValueError("allocation markowitz is long-only: drop short")
        return self

    @property
    def universe(self) -> tuple[str, ...]:
        """Every symbol the run trades (one unless ``symbols`` names several)."""
        return tuple(self.symbols) if self.symbols else (self.symbol,)

    def venue_of(self, symbol: str) -> str:
        """The venue ``symbol`` trades on (``venues`` when given, else ``venue``)."""
        if self.venues:
            return self.venues[self.universe.index(symbol)]
        return self.venue

    def calendar_of(self, symbol: str) -> str:
        """The trading calendar of ``symbol``'s venue: crypto (24/7) or equity (weekdays)."""
        if not self.venues:
            return self.resolved_calendar()
        return calendar_for_venue(self.venue_of(symbol))

    def resolved_calendar(self) -> str:
        """The trading calendar that sets annualisation: explicit, else by venue. A portfolio across
        venues steps on the union of their bars: crypto (every day) when any of them is 24/7."""
        if self.calendar:
            return self.calendar
        if self.venues:
            return "crypto" if any(calendar_for_venue(v) == "crypto" for v in self.venues) else "equity"
        return calendar_for_venue(self.venue)


def calendar_for_venue(venue: str, asset_classes: dict[str, str] | None = None) -> str:
    """``equity`` for stock venues (yahoo, or a venue the config lists as equity), else ``crypto``."""
    if asset_classes and venue in asset_classes:
        return "equity" if asset_classes[venue] == "equity" else "crypto"
    return "equity" if venue in {"yahoo", "nyse", "nasdaq", "sample_equity"} else "crypto"
