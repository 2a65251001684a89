"""Reason codes and decision kinds of the risk layer.

Codes are plain ints in a NamedTuple (the engine's convention) so the Numba order check can return
them; ``REASON_NAMES`` maps each to the stable lower-case name stored in the audit table. A code's
number and name never change once released: stored decisions must stay readable.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

__all__ = ["RiskReason", "REASON_NAMES", "reason_name", "Decision", "DECISION_OF_REASON", "decision_of",
           "TradingState", "STATE_NAMES", "STATE_CODES"]


class RiskReasonT(NamedTuple):
    NONE: int = 0  # passed every check
    UNKNOWN_SYMBOL: int = 1  # symbol index outside the known universe, or no last price for it
    INVALID_QUANTITY: int = 2  # quantity NaN, infinite, zero or negative
    INVALID_PRICE: int = 3  # order price NaN, infinite, zero or negative
    PRICE_DEVIATION: int = 4  # |price / last - 1| > max_price_deviation
    ADV_EXCEEDED: int = 5  # quantity > max_adv_fraction x average daily volume
    NO_VOLUME_HISTORY: int = 6  # average daily volume unknown (NaN) or zero: size cannot be judged
    TRADING_HALTED: int = 7  # a circuit breaker is HALTED: no new orders at all
    REDUCE_ONLY: int = 8  # a circuit breaker is REDUCE_ONLY: the order would add exposure
    MARKET_FILTER: int = 9  # new entries paused by the market filter (VIX above threshold)
    SIZE_ZERO: int = 10  # sizing produced no tradable quantity (e.g. correlation scale 0)
    RESIZED: int = 11  # allowed with a smaller quantity than requested (sizing / correlation)


RiskReason = RiskReasonT()

REASON_NAMES: dict[int, str] = {v: k.lower() for k, v in RiskReason._asdict().items()}


def reason_name(code: int) -> str:
    """Stable audit name of a reason code (``price_deviation``, ...); unknown codes raise."""
    try:
        return REASON_NAMES[int(code)]
    except KeyError:
        raise ValueError(f"unknown risk reason code {code}") from None


Decision = Literal["allowed", "resized", "rejected", "halted"]

# What an order decision is called, given its reason: a halt is reported apart from a plain
# rejection so an operator sees at a glance that the breaker, not the order, was the cause.
DECISION_OF_REASON: dict[int, Decision] = {
    RiskReason.NONE: "allowed",
    RiskReason.RESIZED: "resized",
    RiskReason.TRADING_HALTED: "halted",
}


def decision_of(code: int) -> Decision:
    """``allowed`` / ``resized`` / ``halted`` for those codes, ``rejected`` for every other."""
    return DECISION_OF_REASON.get(int(code), "rejected")


class TradingStateT(NamedTuple):
    """NautilusTrader's trading states: what a circuit breaker lets through."""

    ACTIVE: int = 0  # every check applies, new entries allowed
    REDUCE_ONLY: int = 1  # only orders that shrink an existing position pass
    HALTED: int = 2  # no new orders at all (cancels are never checked)


TradingState = TradingStateT()
STATE_NAMES: dict[int, str] = {v: k.lower() for k, v in TradingState._asdict().items()}
STATE_CODES: dict[str, int] = {v: k for k, v in STATE_NAMES.items()}
