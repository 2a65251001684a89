"""Allowlist checks for symbols and venues, applied before a value reaches a query or a path."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

from .errors import InvalidInput

# Accepts BTC/USDT, BTC/USDT:USDT, AAPL, BRK-B, BRK.B, ^GSPC, ^VIX, EURUSD=X, ES=F; rejects quotes,
# ';', '--', '../', lower case, non-ASCII and parts over 15 characters. fullmatch, never match+$.
SYMBOL_PATTERN = re.compile(r"\^?[A-Z0-9]{1,15}([./:=-][A-Z0-9]{1,15}){0,2}")
VENUE_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,31}")


def check_symbol(symbol: str) -> str:
    """Return ``symbol`` if it matches the allowlist pattern, else raise ``InvalidInput``."""
    if not isinstance(symbol, str) or not SYMBOL_PATTERN.fullmatch(symbol):
        shown = repr(symbol)[:60]
        raise InvalidInput(
            f"invalid symbol {shown}: expected upper-case letters/digits like BTC/USD, ^GSPC, BRK-B"
        )
    return symbol


def check_venue(venue: str) -> str:
    """Return ``venue`` if it is a lower-case identifier (ccxt exchange ids, 'yahoo', ...)."""
    if not isinstance(venue, str) or not VENUE_PATTERN.fullmatch(venue):
        raise InvalidInput(f"invalid venue {repr(venue)[:60]}: expected a lower-case id like 'coinbase'")
    return venue


# Pydantic field types, so every model validates symbols and venues the same way.
Symbol = Annotated[str, AfterValidator(check_symbol)]
Venue = Annotated[str, AfterValidator(check_venue)]
