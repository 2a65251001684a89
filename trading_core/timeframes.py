"""Bar timeframes: the one table of names and their length in milliseconds."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

from .errors import InvalidInput

TIMEFRAME_MS: dict[str, int] = {
    "1m": 60_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "4h": 14_400_000,
    "1d": 86_400_000,
}

# Bars per year, used to annualise metrics. Crypto trades around the clock; equities ~252 days
# of 6.5 hours. Keyed by (calendar, timeframe).
_MINUTES = {tf: ms // 60_000 for tf, ms in TIMEFRAME_MS.items()}


def timeframe_ms(timeframe: str) -> int:
    """Length of one bar of ``timeframe`` in milliseconds; refuses unknown names."""
    try:
        return TIMEFRAME_MS[timeframe]
    except KeyError:
        raise InvalidInput(
            f"unknown timeframe {timeframe!r}; expected one of {', '.join(TIMEFRAME_MS)}"
        ) from None


def periods_per_year(timeframe: str, calendar: str = "crypto") -> float:
    """Bars in a year for annualisation: ``crypto`` trades 24/7, ``equity`` 252 x 6.5 h."""
    minutes = timeframe_ms(timeframe) // 60_000
    if calendar == "crypto":
        return 365.0 * 24 * 60 / minutes
    if calendar == "equity":
        if timeframe == "1d":
            return 252.0
        return 252.0 * 390 / minutes
    raise InvalidInput(f"unknown calendar {calendar!r}; expected 'crypto' or 'equity'")


def _check_timeframe(timeframe: str) -> str:
    timeframe_ms(timeframe)
    return timeframe


# Pydantic field type: a known timeframe name.
Timeframe = Annotated[str, AfterValidator(_check_timeframe)]
