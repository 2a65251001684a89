"""Exceptions that cross module boundaries.

Each carries a message meant for a user: what was wrong and where, so the CLI can print it as a
single line and exit non-zero.
"""

from __future__ import annotations


class TradingError(Exception):
    """Base class of the platform's own, expected errors (bad input, busy store, ...)."""


class InvalidInput(TradingError, ValueError):
    """Input at a boundary (file, CLI argument, config, provider response) was refused."""


class ConfigError(TradingError):
    """The configuration file has problems; ``problems`` lists each as ``path: message``."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s): " + "; ".join(problems))


class WarehouseBusy(TradingError):
    """The DuckDB file stayed locked by another process past the retry deadline."""


class ProviderError(TradingError):
    """A market-data provider failed in a way retrying will not fix (bad symbol, auth, ...)."""


class TransientProviderError(TradingError):
    """A network-class failure: worth retrying with backoff until a deadline."""
