"""Ordered failover across providers: the first one that answers wins.

Why per request and not "switch once and stay": an outage of one venue API should cost only the
requests made during it, and a provider that does not carry a symbol (the sample data hold a few
series) must not stop the others from serving theirs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from ...errors import ProviderError, TransientProviderError
from .base import MarketDataProvider, ProviderUnreachable, check_request

# How long a provider found unreachable is skipped without a call (a long-lived instance, such as
# one Dagster run, asks it again after this), and how many fallbacks an instance remembers.
DOWN_FOR_S = 60.0
MAX_FALLBACKS = 1000


class NotServed(ProviderError):
    """The provider's ``supports`` said no, so it was skipped without a call."""


class AllProvidersFailed(ProviderError):
    """Every provider refused or failed; ``failures`` lists ``(provider name, exception)``."""

    def __init__(self, what: str, failures: list[tuple[str, BaseException]], *,
                 series: str | None = None) -> None:
        self.failures = failures
        self.what = what
        self.series = series or what  # "venue symbol timeframe", for a one-line report
        super().__init__(_describe(what, failures))


class AllProvidersUnavailable(TransientProviderError):
    """Every provider failed with a transient error: worth trying again later."""

    def __init__(self, what: str, failures: list[tuple[str, BaseException]], *,
                 series: str | None = None) -> None:
        self.failures = failures
        self.what = what
        self.series = series or what  # "venue symbol timeframe", for a one-line report
        super().__init__(_describe(what, failures))


def _describe(what: str, failures: list[tuple[str, BaseException]]) -> str:
    parts = "; ".join(f"[{i}] {name}: {type(e).__name__}: {e}" for i, (name, e) in enumerate(failures, 1))
    return f"all {len(failures)} provider(s) failed for {what}: {parts}"


@dataclass(frozen=True)
class Fallback:
    """One request a provider failed that a later provider then served (``served_by``)."""

    provider: str
    venue: str
    symbol: str
    timeframe: str
    error: BaseException
    served_by: str

    @property
    def reason(self) -> str:
        """A short, one-line reason (``ProviderUnreachable.reason`` or the error's first line)."""
        return failure_reason(self.error)


def failure_reason(e: BaseException) -> str:
    reason = getattr(e, "reason", None)
    if isinstance(reason, str) and reason:
        return reason
    lines = str(e).strip().splitlines()
    return (lines[0] if lines else type(e).__name__)[:300]


class FailoverProvider:
    """Tries each provider in order; ``last_source`` names the one that served the last request.

    ``InvalidInput`` (a malformed request) is not a provider failure and propagates at once: no
    provider could serve it. A provider whose ``supports`` says no is skipped without a call and
    listed in the combined error.

    A provider that raised ``ProviderUnreachable`` (no DNS, connection refused) is not asked again
    by this instance for ``DOWN_FOR_S`` seconds: the next symbols fail over at once instead of each
    paying for the attempt.
    ``fallbacks`` lists every request a provider failed and a later one served, so a caller can
    say which provider failed, why, and what was used instead.
    """

    def __init__(self, providers: Sequence[MarketDataProvider]) -> None:
        if not providers:
            raise ValueError("FailoverProvider needs at least one provider")
        self.providers = list(providers)
        self.name = "failover(" + ",".join(p.name for p in self.providers) + ")"
        self.last_source: str | None = None
        self.fallbacks: list[Fallback] = []
        self._down: dict[int, tuple[float, ProviderUnreachable]] = {}

    def supports(self, venue: str, symbol: str, timeframe: str) -> bool:
        return any(p.supports(venue, symbol, timeframe) for p in self.providers)

    def fetch_ohlcv(self, venue: str, symbol: str, timeframe: str, start: datetime,
                    end: datetime) -> pl.DataFrame:
        """Bars from the first provider that answers; see ``fetch_with_source`` for the name."""
        return self.fetch_with_source(venue, symbol, timeframe, start, end)[0]

    def fetch_with_source(self, venue: str, symbol: str, timeframe: str, start: datetime,
                          end: datetime) -> tuple[pl.DataFrame, str]:
        """Like ``fetch_ohlcv`` but also returns the serving provider's name (thread-safe form)."""
        check_request(venue, symbol, timeframe, start, end)
        self.last_source = None
        failures: list[tuple[str, BaseException]] = []
        for p in self.providers:
            if not p.supports(venue, symbol, timeframe):
                failures.append((p.name, NotServed(f"does not serve {venue}:{symbol} {timeframe}")))
                continue
            down = self._down.get(id(p))
            if down is not None and time.monotonic() - down[0] < DOWN_FOR_S:
                failures.append((p.name, down[1]))
                continue
            try:
                df = p.fetch_ohlcv(venue, symbol, timeframe, start, end)
            except (ProviderError, TransientProviderError) as e:
                if isinstance(e, ProviderUnreachable):
                    self._down[id(p)] = (time.monotonic(), e)
                failures.append((p.name, e))
                continue
            self.last_source = p.name
            self._down.pop(id(p), None)
            self.fallbacks.extend(Fallback(name, venue, symbol, timeframe, e, p.name)
                                  for name, e in failures if not isinstance(e, NotServed))
            del self.fallbacks[:-MAX_FALLBACKS]
            return df, p.name
        what = f"{venue}:{symbol} {timeframe} [{start.isoformat()}, {end.isoformat()})"
        tried = [e for _, e in failures if not isinstance(e, NotServed)]
        series = f"{venue} {symbol} {timeframe}"
        if tried and all(isinstance(e, TransientProviderError) for e in tried):
            raise AllProvidersUnavailable(what, failures, series=series)
        raise AllProvidersFailed(what, failures, series=series)

