"""Live crypto bars from any ccxt exchange: paginated, paced, retried only where retrying helps.

Our venue name *is* the ccxt exchange id (``coinbase``, ``binance``, ...), so a provider serves
exactly one venue: the exchange in ``CcxtConfig.exchange_id`` (or the injected instance). One
exchange instance is shared per process and configuration because ccxt's rate limiter lives on the
instance (reliability-and-security.md section 6).

Error policy: ccxt's ``NetworkError`` family (``RequestTimeout``, ``DDoSProtection``,
``RateLimitExceeded``, ``ExchangeNotAvailable``, ``OnMaintenance``, ...) plus ``BadResponse`` /
``NullResponse`` are retried with capped exponential backoff, full jitter and an overall deadline;
everything in the ``ExchangeError`` family (``BadSymbol``, ``AuthenticationError``,
``NotSupported``, ...) recurs with the same input, so it fails at once as ``ProviderError``.
"""

from __future__ import annotations

import random
import time
from datetime import datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any

import ccxt
import polars as pl
import requests

from ...config import CcxtConfig, secret_from_env
from ...errors import ProviderError
from .base import (
    CONNECT_TIMEOUT_S,
    Clock,
    Request,
    RetryPolicy,
    Sleep,
    UnknownSymbol,
    UnsupportedTimeframe,
    check_request,
    rows_to_frame,
    unreachable_reason,
)

_TRANSIENT = (ccxt.NetworkError, ccxt.BadResponse)  # BadResponse covers NullResponse
_SLOW = (ccxt.DDoSProtection, ccxt.RateLimitExceeded)  # older ccxt nests one in the other: both
# After this many consecutive empty pages the range is taken as exhausted. Windowed venues
# (coinbase) answer an empty page for a gap; cursor-style venues (binance) for "no more bars".
MAX_EMPTY_PAGES = 3


@lru_cache(maxsize=8)
def _shared_exchange(exchange_id: str, enable_rate_limit: bool, timeout_ms: int,
                     key_env: str | None, secret_env: str | None) -> ccxt.Exchange:
    """One instance per process and settings, so ccxt's per-instance rate limiter actually limits."""
    if exchange_id not in ccxt.exchanges:
        raise ProviderError(f"ccxt: unknown exchange id {exchange_id!r}")
    opts: dict[str, Any] = {"enableRateLimit": enable_rate_limit, "timeout": timeout_ms}
    key, secret = secret_from_env(key_env), secret_from_env(secret_env)
    if key:
        opts["apiKey"] = key
    if secret:
        opts["secret"] = secret
    ex = getattr(ccxt, exchange_id)(opts)
    ex.session = ConnectBoundedSession()
    return ex


class ConnectBoundedSession(requests.Session):
    """ccxt passes one number as the requests timeout, so connecting could take as long as reading
    (``timeout_ms``, 15 s by default) on every retry. This splits it: at most ``connect_s`` to
    connect (an unreachable host fails over in seconds), the configured timeout to read."""

    def __init__(self, connect_s: float = CONNECT_TIMEOUT_S) -> None:
        super().__init__()
        self.connect_s = connect_s

    def request(self, method: str, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        t = kwargs.get("timeout")
        if isinstance(t, int | float) and not isinstance(t, bool):
            kwargs["timeout"] = (min(self.connect_s, float(t)), float(t))
        return super().request(method, url, *args, **kwargs)


def _retry_after_s(exchange: Any, err: BaseException) -> float | None:
    """A server's Retry-After hint in seconds: from the error (fakes, wrappers) or the last response."""
    hint = getattr(err, "retry_after", None)
    if hint is None:
        headers = getattr(exchange, "last_response_headers", None) or {}
        hint = next((v for k, v in dict(headers).items() if str(k).lower() == "retry-after"), None)
    if hint is None:
        return None
    try:
        return max(0.0, float(hint))
    except (TypeError, ValueError):
        pass
    try:
        when = parsedate_to_datetime(str(hint))
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class CcxtProvider:
    """Bars from one ccxt exchange, fetched page by page over [start, end)."""

    name = "ccxt"

    def __init__(
        self,
        config: CcxtConfig,
        exchange: ccxt.Exchange | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self._exchange = exchange
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._last_request_at: float | None = None
        self.requests = 0  # pages requested (incl. retries): tests and logs read it
        self.retries = 0

    @property
    def exchange(self) -> ccxt.Exchange:
        """The injected exchange, or the process-wide shared one for this config (built lazily)."""
        if self._exchange is None:
            c = self.config
            self._exchange = _shared_exchange(c.exchange_id, c.enable_rate_limit, c.timeout_ms,
                                              c.api_key_env, c.api_secret_env)
        return self._exchange

    @property
    def exchange_id(self) -> str:
        return str(getattr(self._exchange, "id", None) or self.config.exchange_id)

    def supports(self, venue: str, symbol: str, timeframe: str) -> bool:
        """Venue must be this exchange; timeframe one it lists; symbol known if markets are loaded."""
        if venue != self.exchange_id:
            return False
        try:
            ex = self.exchange
        except ProviderError:  # an exchange id ccxt does not know
            return False
        tfs = getattr(ex, "timeframes", None)
        if tfs and timeframe not in tfs:
            return False
        markets = getattr(ex, "markets", None)
        return not markets or symbol in markets

    def fetch_ohlcv(self, venue: str, symbol: str, timeframe: str, start: datetime,
                    end: datetime) -> pl.DataFrame:
        """Page through [start, end): each page starts one bar after the last bar received.

        Overlapping pages (an exchange that ignores ``since`` precision, or re-sends the last bar)
        are merged by open time, the later page winning, so no duplicate rows come back.
        """
        req = check_request(venue, symbol, timeframe, start, end)
        if venue != self.exchange_id:
            raise ProviderError(
                f"ccxt: venue {venue!r} is not served by this provider (exchange {self.exchange_id!r}); "
                f"venue names are ccxt exchange ids"
            )
        ex = self.exchange
        tfs = getattr(ex, "timeframes", None)
        if tfs and timeframe not in tfs:
            raise UnsupportedTimeframe(self.name, venue, symbol, timeframe, ", ".join(tfs))
        if req.start_ms >= req.end_ms:
            return _frame({})
        return _frame(self._paginate(ex, req))

    # ----------------------------------------------------------------------------------------

    def _paginate(self, ex: ccxt.Exchange, req: Request) -> dict[int, list[Any]]:
        limit = self.config.page_limit
        since, end_ms, tf = req.start_ms, req.end_ms, req.tf_ms
        bars: dict[int, list[Any]] = {}
        empty_run = 0
        while since < end_ms:
            page = self._page(ex, req, since, limit)
            rows = [r for r in page if r and r[0] is not None and since <= int(r[0]) < end_ms]
            if not rows:
                later = [int(r[0]) for r in page if r and r[0] is not None and int(r[0]) >= end_ms]
                empty_run += 1
                if later or empty_run >= MAX_EMPTY_PAGES:
                    break
                since += limit * tf  # skip a gap on windowed venues
                continue
            empty_run = 0
            for r in rows:
                bars[int(r[0])] = list(r[:6])
            nxt = max(int(r[0]) for r in rows) + tf
            if nxt <= since:  # no progress: never loop forever on a misbehaving venue
                break
            since = nxt
        return bars

    def _page(self, ex: ccxt.Exchange, req: Request, since: int, limit: int) -> list[list[Any]]:
        what = f"ccxt {self.exchange_id}: fetch_ohlcv {req.symbol} {req.timeframe} since={since}"
        policy = RetryPolicy(
            deadline_s=self.config.retry_deadline_s, max_retries=self.config.max_retries,
            clock=self._clock, sleep=self._sleep, rng=self._rng,
            slow_floor_s=max(2.0, float(getattr(ex, "rateLimit", 0) or 0) / 1000.0),
        )

        def call() -> list[list[Any]]:
            self._pace(ex)
            self.requests += 1
            return ex.fetch_ohlcv(req.symbol, req.timeframe, since=since, limit=limit)

        def counted(_attempt: int, _e: BaseException, _d: float) -> None:
            self.retries += 1

        try:
            return policy.run(
                call, describe=what,
                is_transient=lambda e: isinstance(e, _TRANSIENT),
                is_slow=lambda e: isinstance(e, _SLOW),
                retry_after=lambda e: _retry_after_s(ex, e),
                on_retry=counted,
                is_unreachable=unreachable_reason,
            )
        except ccxt.BadSymbol as e:
            raise UnknownSymbol(self.name, req.venue, req.symbol, str(e)) from e
        except ccxt.AuthenticationError as e:
            raise ProviderError(
                f"ccxt {self.exchange_id}: authentication failed while fetching {req.symbol!r} "
                f"(keys come from ${self.config.api_key_env or '<api_key_env unset>'}): {e}"
            ) from e
        except ccxt.NotSupported as e:
            raise ProviderError(
                f"ccxt {self.exchange_id}: OHLCV for {req.symbol!r} {req.timeframe} not supported: {e}"
            ) from e
        except ccxt.BaseError as e:  # ExchangeError and anything else ccxt says is not transient
            raise ProviderError(
                f"ccxt {self.exchange_id}: {type(e).__name__} fetching {req.symbol!r} {req.timeframe}: {e}"
            ) from e

    def _pace(self, ex: ccxt.Exchange) -> None:
        """Keep at least ``exchange.rateLimit`` ms between our requests (on top of ccxt's limiter,
        which is per instance and can be switched off): the request rate never exceeds the limit."""
        gap = float(getattr(ex, "rateLimit", 0) or 0) / 1000.0
        now = self._clock()
        if self._last_request_at is not None and gap > 0:
            wait = self._last_request_at + gap - now
            if wait > 0:
                self._sleep(wait)
                now = self._clock()
        self._last_request_at = now


def _frame(bars: dict[int, list[Any]]) -> pl.DataFrame:
    """Merged pages, sorted by open time. (Switch to ``normalize.from_ccxt_ohlcv`` once it lands.)"""
    return rows_to_frame([bars[k] for k in sorted(bars)])
