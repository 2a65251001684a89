"""What a Trader says happened on a bar, in the vocabulary traders know (NautilusTrader's names).

Every event carries the bar's ``ts_event`` (epoch ms of the decision instant: the bar's close),
the account and symbol it concerns, a reason code where there is one, and a deterministic ``id``
``"{run_id}:{bar}:{seq}"`` -- the same run replayed gives the same ids, so a ledger that stores
these (paper sessions) never stores one twice. ``to_dict`` is the ledger/JSON form.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

__all__ = [
    "Event", "OrderSubmitted", "OrderDenied", "OrderRejected", "OrderFilled", "OrderCanceled",
    "OrderExpired", "PositionOpened", "PositionChanged", "PositionClosed", "BreakerTripped",
    "BreakerReset", "SignalFiltered", "ModelSwitched", "EVENT_TYPES",
]


@dataclass(frozen=True, kw_only=True, slots=True)
class Event:
    kind: ClassVar[str] = "Event"

    id: str
    ts_event: int
    bar: int
    account: int
    symbol: str | None = None
    reason: str | None = None
    tag: str | None = None  # set by strategies that name what decided (ml_signal: "model@vN")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d.get("tag") is None:
            d.pop("tag", None)  # untagged events keep their historical form
        return {"kind": self.kind, **d}


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderSubmitted(Event):
    """An order passed our risk layer and went to the venue model (the engine)."""

    kind: ClassVar[str] = "OrderSubmitted"
    order_id: int
    side: str  # buy | sell
    order_type: str  # market | market_on_close | stop | take_profit | ...
    size_mode: str  # qty | all_in | risk | close
    qty: float  # a quantity for qty orders; the sizing parameter otherwise
    price: float | None = None  # stop/limit level
    purpose: str = "signal"  # signal | protect | trail | rebalance | kill_switch | scale_in | average_down | scale_out


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderDenied(Event):
    """Our risk layer refused (or cut to zero) an order before it reached the venue model."""

    kind: ClassVar[str] = "OrderDenied"
    side: str
    requested_qty: float
    reason_code: int
    trading_state: str


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderRejected(Event):
    """The venue model refused an order (insufficient cash, min notional, ...)."""

    kind: ClassVar[str] = "OrderRejected"
    order_id: int
    reason_code: int


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderFilled(Event):
    kind: ClassVar[str] = "OrderFilled"
    order_id: int
    side: str
    qty: float
    price: float
    fee: float
    slippage: float
    role: str  # maker | taker
    fill_reason: str  # open | gap | intrabar | close


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderCanceled(Event):
    kind: ClassVar[str] = "OrderCanceled"
    order_id: int


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderExpired(Event):
    kind: ClassVar[str] = "OrderExpired"
    order_id: int


@dataclass(frozen=True, kw_only=True, slots=True)
class PositionOpened(Event):
    kind: ClassVar[str] = "PositionOpened"
    qty: float  # signed
    avg_price: float


@dataclass(frozen=True, kw_only=True, slots=True)
class PositionChanged(Event):
    kind: ClassVar[str] = "PositionChanged"
    qty: float
    previous_qty: float
    avg_price: float


@dataclass(frozen=True, kw_only=True, slots=True)
class PositionClosed(Event):
    kind: ClassVar[str] = "PositionClosed"
    previous_qty: float
    realized_pnl: float  # the round trip's PnL net of its fees


@dataclass(frozen=True, kw_only=True, slots=True)
class BreakerTripped(Event):
    kind: ClassVar[str] = "BreakerTripped"
    level: str
    scope: str
    from_state: str
    to_state: str
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class BreakerReset(Event):
    """A breaker stepped back towards active: a recovery after its cooldown or a manual reset."""

    kind: ClassVar[str] = "BreakerReset"
    level: str
    scope: str
    from_state: str
    to_state: str
    actor: str = "system"


@dataclass(frozen=True, kw_only=True, slots=True)
class SignalFiltered(Event):
    """A raw strategy signal the signal filters suppressed (the reason names the filter)."""

    kind: ClassVar[str] = "SignalFiltered"
    signal: str  # entry | exit
    column: int


@dataclass(frozen=True, kw_only=True, slots=True)
class ModelSwitched(Event):
    """The strategy's model changed at this bar boundary (a paper session following an alias)."""

    kind: ClassVar[str] = "ModelSwitched"
    previous: str
    current: str


EVENT_TYPES: dict[str, type[Event]] = {c.kind: c for c in (
    OrderSubmitted, OrderDenied, OrderRejected, OrderFilled, OrderCanceled, OrderExpired, PositionOpened,
    PositionChanged, PositionClosed, BreakerTripped, BreakerReset, SignalFiltered, ModelSwitched)}
