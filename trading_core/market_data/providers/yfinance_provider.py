"""Live equity and index bars from Yahoo through yfinance, one ticker per request.

Why one ticker at a time (``yf.Ticker(...).history``) and not ``yf.download``: a failure then
names exactly one symbol, and the result has flat columns. ``auto_adjust=False`` keeps the raw
traded OHLC (the validator and the engine decide what to do about splits); ``Adj Close`` is dropped.

yfinance hides network errors by default (it logs them and returns an empty frame, which looks
exactly like an unknown ticker), so calls run with ``yf.config.debug.hide_exceptions = False``
and classify what comes out:

* a missing exchange timezone (``YFTzMissingError``) means Yahoo does not know the ticker ->
  ``UnknownSymbol`` at once;
* Yahoo's own explanation of missing prices (``YFPricesMissingError`` with a reason, e.g. an
  intraday range older than Yahoo keeps) -> ``ProviderError``; no prices and no reason for a known
  ticker (a weekend range) -> an empty frame;
* ``YFRateLimitError``, timeouts/connection errors (``OSError`` covers both curl_cffi's and
  requests' exceptions) and "Yahoo is down" -> retried with backoff until the deadline.

The venue is ``yahoo``. Daily bars are stamped 00:00 UTC of the trading date; intraday bars keep
Yahoo's open time converted to UTC (Yahoo's 1h equity bars open at :30 past the hour).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import yfinance as yf
from yfinance.exceptions import (
    YFDataException,
    YFPricesMissingError,
    YFRateLimitError,
    YFTzMissingError,
)

from ...config import YfinanceConfig
from ...errors import ProviderError
from ..normalize import from_yfinance_history
from ..schema import empty_ohlcv
from .base import (
    CONNECT_TIMEOUT_S,
    Clock,
    Request,
    RetryPolicy,
    Sleep,
    UnknownSymbol,
    UnsupportedTimeframe,
    canonical,
    check_request,
    clip_range,
    unreachable_reason,
)

VENUE = "yahoo"
# Our timeframe -> Yahoo interval. Yahoo has no 4h interval; resampling 1h equity bars into 4h
# buckets would straddle sessions, so 4h is refused rather than invented.
INTERVALS: dict[str, str] = {"1m": "1m", "5m": "5m", "15m": "15m", "30m": "30m", "1h": "1h", "1d": "1d"}
# Yahoo refuses 1m requests spanning more than 8 days: split longer ranges.
MAX_SPAN: dict[str, timedelta] = {"1m": timedelta(days=7)}

History = Callable[[str, datetime, datetime, str], pd.DataFrame]
_CONFIG_LOCK = threading.Lock()


@contextmanager
def _exceptions_visible() -> Iterator[None]:
    """Let yfinance raise instead of log-and-return-empty, restoring the global setting after.

    yfinance's own warnings ("Cookie/crumb fetch failed (DNSError), continuing without crumb")
    are silenced meanwhile: what went wrong comes back as our exception, reported once."""
    with _CONFIG_LOCK:
        before = yf.config.debug.hide_exceptions
        yf_log = logging.getLogger("yfinance")
        level = yf_log.level
        yf.config.debug.hide_exceptions = False
        yf_log.setLevel(logging.CRITICAL)
        try:
            yield
        finally:
            yf.config.debug.hide_exceptions = before
            yf_log.setLevel(level)


def _bounded_session() -> Any:
    """yfinance's default transport (curl_cffi impersonating Chrome) with the connect phase capped
    at ``CONNECT_TIMEOUT_S`` on every request, including the cookie/crumb ones yfinance makes with
    its own 30 s default."""
    from curl_cffi import requests as curl_requests

    class _Session(curl_requests.Session):  # type: ignore[misc]
        def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> Any:
            t = kwargs.get("timeout")
            if isinstance(t, int | float) and not isinstance(t, bool) and t > 0:
                kwargs["timeout"] = (min(CONNECT_TIMEOUT_S, float(t)), float(t))
            return super().request(method, url, *args, **kwargs)

    return _Session(impersonate="chrome")


def _is_transient(e: BaseException) -> bool:
    return isinstance(e, YFRateLimitError | OSError | YFDataException | json.JSONDecodeError) and not (
        isinstance(e, YFPricesMissingError | YFTzMissingError)
    )


class YfinanceProvider:
    """Bars for Yahoo tickers (``^GSPC``, ``AAPL``, ``EURUSD=X``) on venue ``yahoo``."""

    name = "yfinance"

    def __init__(
        self,
        config: YfinanceConfig,
        session: Any | None = None,
        *,
        cache_dir: Path | str | None = None,
        history: History | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        """``session``: a curl_cffi or requests Session handed to every ``yf.Ticker`` (yfinance keeps
        a process singleton, so the last session passed wins: pass it every time). ``history``: a
        fake ``(symbol, start, end, interval) -> DataFrame`` for tests. ``cache_dir``: where
        yfinance keeps its timezone/cookie SQLite caches (instead of the user's home)."""
        self.config = config
        self.session = session
        self._history = history or self._yf_history
        self._clock, self._sleep = clock, sleep
        self._rng = rng or random.Random()
        self.requests = 0
        self.retries = 0
        if cache_dir is not None:
            loc = Path(cache_dir) / "yfinance-tz"
            loc.mkdir(parents=True, exist_ok=True)
            yf.set_tz_cache_location(str(loc))

    def supports(self, venue: str, symbol: str, timeframe: str) -> bool:
        return venue == VENUE and timeframe in INTERVALS

    def fetch_ohlcv(self, venue: str, symbol: str, timeframe: str, start: datetime,
                    end: datetime) -> pl.DataFrame:
        """Bars with open time in [start, end), one ``history`` call per span Yahoo accepts."""
        req = check_request(venue, symbol, timeframe, start, end)
        if venue != VENUE:
            raise ProviderError(f"yfinance: venue {venue!r} is not served; Yahoo tickers use venue 'yahoo'")
        if timeframe not in INTERVALS:
            raise UnsupportedTimeframe(self.name, venue, symbol, timeframe, ", ".join(INTERVALS))
        if req.start >= req.end:
            return empty_ohlcv()
        frames = [self._fetch_span(req, s, e) for s, e in _spans(req.start, req.end, MAX_SPAN.get(timeframe))]
        frames = [f for f in frames if f.height]
        if not frames:
            return empty_ohlcv()
        df = pl.concat(frames).unique("ts", keep="last", maintain_order=True)
        return clip_range(df, req.start, req.end)

    # ----------------------------------------------------------------------------------------

    def _fetch_span(self, req: Request, start: datetime, end: datetime) -> pl.DataFrame:
        interval = INTERVALS[req.timeframe]
        policy = RetryPolicy(deadline_s=self.config.retry_deadline_s, max_retries=self.config.max_retries,
                             clock=self._clock, sleep=self._sleep, rng=self._rng)

        def call() -> pd.DataFrame:
            self.requests += 1
            return self._history(req.symbol, start, end, interval)

        def counted(_attempt: int, _e: BaseException, _d: float) -> None:
            self.retries += 1

        try:
            pdf = policy.run(
                call, describe=f"yfinance: history {req.symbol} {interval} {start:%Y-%m-%d}..{end:%Y-%m-%d}",
                is_transient=_is_transient,
                is_slow=lambda e: isinstance(e, YFRateLimitError),
                on_retry=counted,
                is_unreachable=unreachable_reason,
            )
        except YFTzMissingError as e:
            raise UnknownSymbol(self.name, req.venue, req.symbol, "Yahoo knows no such ticker") from e
        except YFPricesMissingError as e:
            if e.yahoo_reason:
                raise ProviderError(f"yfinance: no bars for {req.symbol!r} {interval}: {e.yahoo_reason}") from e
            return empty_ohlcv()
        return _from_history(pdf, daily=req.timeframe == "1d")

    def _yf_history(self, symbol: str, start: datetime, end: datetime, interval: str) -> pd.DataFrame:
        """The real call. An empty frame here (no exception) means Yahoo had no bars in range."""
        if self.session is None:
            self.session = _bounded_session()
        with _exceptions_visible():
            t = yf.Ticker(symbol, session=self.session)
            _resolve_timezone(t, self.config.timeout_s)
            return t.history(start=start, end=end, interval=interval, auto_adjust=False, actions=False,
                             timeout=self.config.timeout_s)


def _resolve_timezone(ticker: Any, timeout: float) -> None:
    """Probe the ticker's exchange timezone ourselves, so "unknown ticker" is decided by one chart
    call. Left to ``history``, a failed probe falls back to ``Ticker.info`` (other endpoints, a
    process-global attempt counter), which makes the outcome depend on what ran before. The probe
    response is memoised by yfinance for the process, so this costs one request per ticker."""
    fetch = getattr(ticker, "_fetch_ticker_tz", None)
    if fetch is None or not hasattr(ticker, "_tz"):  # another yfinance layout: let history decide
        return
    tz = fetch(timeout)
    if tz is None:
        raise YFTzMissingError(ticker.ticker)
    ticker._tz = tz


def _spans(start: datetime, end: datetime, max_span: timedelta | None) -> list[tuple[datetime, datetime]]:
    if max_span is None:
        return [(start, end)]
    out, s = [], start
    while s < end:
        e = min(end, s + max_span)
        out.append((s, e))
        s = e
    return out


def _from_history(pdf: pd.DataFrame, *, daily: bool) -> pl.DataFrame:
    """yfinance's frame to canonical columns through the shared normaliser (daily bars land on
    00:00 UTC of the exchange-local trading date; intraday keep their exact UTC open)."""
    if pdf is None or len(pdf) == 0:
        return empty_ohlcv()
    return canonical(from_yfinance_history(pdf, daily=daily))
