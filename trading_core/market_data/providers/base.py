"""The one interface every market-data provider implements, and what providers share.

Ingestion, failover and caching only ever see ``MarketDataProvider``: a provider answers "bars of
(venue, symbol, timeframe) whose open time lies in [start, end)" with a raw polars frame in the
canonical column names. Validation is deliberately *not* done here: the ingest layer judges every
batch by one contract whatever its source, so providers return what the source said (sorted,
de-duplicated, clipped to the range) and leave repairs to the validator.

Errors tell the caller what to do next:

* ``InvalidInput`` - the request itself is malformed (symbol pattern, naive datetime): no provider
  can help, so failover does not try the next one.
* ``ProviderError`` - this provider cannot serve it and retrying will not change that (unknown
  symbol, unsupported timeframe, authentication): fail at once, failover moves on.
* ``TransientProviderError`` - network-class failures persisted until the retry deadline.
* ``ProviderUnreachable`` (a ``TransientProviderError``) - the host could not be reached at all
  (DNS lookup failed, connection refused, no route to the network): retrying within seconds does
  not help, so it fails at once and failover moves on without waiting out the deadline. A connect
  *timeout* may be congestion and is retried, each attempt capped at ``CONNECT_TIMEOUT_S``.
"""

from __future__ import annotations

import errno
import random
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, TypeVar, runtime_checkable

import polars as pl

from ...errors import InvalidInput, ProviderError, TransientProviderError
from ...symbols import check_symbol, check_venue
from ...timeframes import timeframe_ms
from ..schema import OHLCV_COLUMNS, OHLCV_SCHEMA, empty_ohlcv

T = TypeVar("T")

# Seconds to wait for a TCP/TLS connection before calling the host unreachable (the read timeout
# stays the provider's configured one): a black-holed network then costs seconds, not minutes.
CONNECT_TIMEOUT_S = 5.0


class ProviderUnreachable(TransientProviderError):
    """The provider's host could not be reached (no DNS, connection refused, no route).

    ``reason`` is a short phrase ("cannot reach api.coinbase.com: DNS lookup failed") for a
    one-line report; the message adds what was being fetched.
    """

    def __init__(self, describe: str, reason: str) -> None:
        self.reason = reason
        super().__init__(f"{describe}: {reason}")


_HOST_PATTERNS = (
    re.compile(r"host='([^']+)'"),
    re.compile(r"[Cc]ould not resolve (?:host|proxy): ([A-Za-z0-9.\-]+?)\.?(?:\s|$)"),
    re.compile(r"Failed to resolve '([^']+)'"),
    re.compile(r"Failed to connect to (\[[^\]]+\]|[^\s:\[]+)(?::\d+|\s+port\s+\d+)"),
    re.compile(r"https?://\[?([A-Za-z0-9.\-:]+?)\]?(?::\d+)?(?:/|\s|$)"),
)


def _chain(e: BaseException) -> list[BaseException]:
    """``e`` and everything it was raised from (``__cause__``/``__context__``/urllib3 ``reason``)."""
    out: list[BaseException] = []
    todo: list[BaseException | None] = [e]
    while todo and len(out) < 32:
        x = todo.pop(0)
        if x is None or any(x is y for y in out):
            continue
        out.append(x)
        reason = getattr(x, "reason", None)
        todo.extend([x.__cause__, x.__context__, reason if isinstance(reason, BaseException) else None])
        todo.extend(a for a in getattr(x, "args", ()) if isinstance(a, BaseException))
    return out


def _host_of(chain: list[BaseException]) -> str | None:
    for x in chain:
        text = str(x)
        for pat in _HOST_PATTERNS:
            m = pat.search(text)
            if m:
                return m.group(1).rstrip(".")
    return None


def unreachable_reason(e: BaseException) -> str | None:
    """A short reason when ``e`` means the host could not be reached at all, else None.

    Works on the exception chains of requests/urllib3 (ccxt) and curl_cffi (yfinance) without
    importing either: it looks at exception types from the standard library, class names and
    the messages those libraries are known to produce.
    """
    chain = _chain(e)
    names = {type(x).__name__ for x in chain}
    text = " | ".join(str(x) for x in chain)
    low = text.lower()
    what: str | None = None
    if (any(isinstance(x, socket.gaierror) for x in chain) or names & {"NameResolutionError", "DNSError"}
            or "could not resolve host" in low or "failed to resolve" in low
            or "name or service not known" in low or "temporary failure in name resolution" in low
            or "nodename nor servname" in low):
        what = "DNS lookup failed"
    elif any(isinstance(x, ConnectionRefusedError) for x in chain) or "connection refused" in low:
        what = "connection refused"
    elif "couldn't connect to server" in low or "could not connect to server" in low:
        what = "could not connect"  # curl error 7: refused or no route, curl does not say which
    elif (any(isinstance(x, OSError) and x.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH) for x in chain)
          or "network is unreachable" in low or "no route to host" in low):
        what = "network unreachable"
    if what is None:
        return None
    host = _host_of(chain)
    return f"cannot reach {host}: {what}" if host else f"cannot reach the server: {what}"



@runtime_checkable
class MarketDataProvider(Protocol):
    """A source of OHLCV bars. ``name`` is recorded as the batch's source in the warehouse."""

    name: str

    def fetch_ohlcv(self, venue: str, symbol: str, timeframe: str, start: datetime,
                    end: datetime) -> pl.DataFrame:
        """Bars whose open time ``ts`` is in [start, end), canonical column names, sorted by ts."""
        ...

    def supports(self, venue: str, symbol: str, timeframe: str) -> bool:
        """Cheap, offline guess whether ``fetch_ohlcv`` could serve this series (no network)."""
        ...


class UnknownSymbol(ProviderError):
    """The provider does not know ``symbol`` on ``venue``: retrying cannot help."""

    def __init__(self, provider: str, venue: str, symbol: str, detail: str = "") -> None:
        self.provider, self.venue, self.symbol = provider, venue, symbol
        extra = f": {detail}" if detail else ""
        super().__init__(f"{provider}: unknown symbol {symbol!r} on venue {venue!r}{extra}")


class UnsupportedTimeframe(ProviderError):
    """The provider cannot produce bars of this timeframe (e.g. Yahoo has no 4h interval)."""

    def __init__(self, provider: str, venue: str, symbol: str, timeframe: str, served: str = "") -> None:
        self.provider, self.venue, self.symbol, self.timeframe = provider, venue, symbol, timeframe
        extra = f"; it serves {served}" if served else ""
        super().__init__(
            f"{provider}: timeframe {timeframe!r} is not available for {symbol!r} on {venue!r}{extra}"
        )


@dataclass(frozen=True)
class Request:
    """A checked request: symbols/venues passed the allowlist, times are aware UTC, ms precomputed."""

    venue: str
    symbol: str
    timeframe: str
    start: datetime
    end: datetime
    tf_ms: int

    @property
    def start_ms(self) -> int:
        return to_ms(self.start)

    @property
    def end_ms(self) -> int:
        return to_ms(self.end)


def check_request(venue: str, symbol: str, timeframe: str, start: datetime, end: datetime) -> Request:
    """Refuse malformed requests before they reach a network call or a file path.

    Naive datetimes are refused rather than guessed: a silent local-time reading would shift every
    bar by the machine's UTC offset.
    """
    check_venue(venue)
    check_symbol(symbol)
    tf_ms = timeframe_ms(timeframe)
    for label, t in (("start", start), ("end", end)):
        if not isinstance(t, datetime) or t.tzinfo is None or t.utcoffset() is None:
            raise InvalidInput(f"{label} must be a timezone-aware datetime (UTC), got {t!r}")
    return Request(venue, symbol, timeframe, start.astimezone(UTC), end.astimezone(UTC), tf_ms)


def to_ms(t: datetime) -> int:
    """Epoch milliseconds of an aware datetime (exact integer arithmetic, no float rounding)."""
    delta = t.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def rows_to_frame(rows: list[list[float]] | list[tuple[float, ...]]) -> pl.DataFrame:
    """``[[ts_ms, o, h, l, c, v], ...]`` (ccxt's shape) to the canonical frame, nulls kept."""
    from ..normalize import from_ccxt_ohlcv

    if not rows:
        return empty_ohlcv()
    raw = from_ccxt_ohlcv([list(r[:6]) for r in rows])
    return raw.select(
        pl.col("ts").cast(pl.Int64, strict=False).cast(pl.Datetime("ms")).dt.replace_time_zone("UTC"),
        *[pl.col(c).cast(pl.Float64, strict=False) for c in OHLCV_COLUMNS[1:]],
    )


def clip_range(df: pl.DataFrame, start: datetime, end: datetime) -> pl.DataFrame:
    """Keep bars with open time in [start, end), sorted, canonical columns first."""
    if df.height == 0:
        return df.select([c for c in OHLCV_COLUMNS if c in df.columns]) if df.columns else empty_ohlcv()
    ts = df["ts"]
    lo = pl.lit(start.astimezone(UTC)).cast(ts.dtype)
    hi = pl.lit(end.astimezone(UTC)).cast(ts.dtype)
    out = df.filter((pl.col("ts") >= lo) & (pl.col("ts") < hi)).sort("ts")
    return out.select(list(OHLCV_COLUMNS))


def canonical(df: pl.DataFrame) -> pl.DataFrame:
    """Cast a frame that already has the canonical columns to the canonical dtypes."""
    return df.select([pl.col(c).cast(t) for c, t in OHLCV_SCHEMA.items()])


# --------------------------------------------------------------------------------------------
# Retries: shared by the network providers so ccxt and yfinance back off the same way.
# --------------------------------------------------------------------------------------------

Clock = Callable[[], float]
Sleep = Callable[[float], None]


@dataclass
class RetryPolicy:
    """Capped exponential backoff with full jitter, bounded by attempts *and* a total deadline.

    Full jitter (a uniform draw in [0, min(cap, base * 2**n)]) spreads out the retries of parallel
    steps hitting the same venue; the deadline bounds how long a Dagster step can hang on an
    outage whatever the per-attempt waits add up to. Rate-limit class errors wait at least
    ``slow_floor_s`` and honour a server ``Retry-After`` hint (reliability-and-security.md section 6).
    """

    deadline_s: float
    max_retries: int
    base_s: float = 1.0
    cap_s: float = 60.0
    slow_floor_s: float = 2.0
    clock: Clock = time.monotonic
    sleep: Sleep = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int, *, slow: bool, retry_after: float | None) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        ceiling = min(self.cap_s, self.base_s * 2 ** (attempt - 1))
        d = self.rng.uniform(0.0, ceiling)
        if slow:
            d = max(d, min(self.cap_s, self.slow_floor_s * 2 ** (attempt - 1)))
        if retry_after is not None:
            d = max(d, retry_after)
        return d

    def run(
        self,
        fn: Callable[[], T],
        *,
        is_transient: Callable[[BaseException], bool],
        is_slow: Callable[[BaseException], bool] = lambda e: False,
        retry_after: Callable[[BaseException], float | None] = lambda e: None,
        describe: str,
        on_retry: Callable[[int, BaseException, float], None] | None = None,
        is_unreachable: Callable[[BaseException], str | None] = lambda e: None,
    ) -> T:
        """Call ``fn`` until it succeeds, a non-transient error escapes, or the budget is spent.

        Non-transient exceptions propagate unchanged (the caller maps them); a transient one that
        outlives the budget becomes ``TransientProviderError`` naming attempts, time and cause.
        A transient one for which ``is_unreachable`` gives a reason (the host cannot be reached at
        all) becomes ``ProviderUnreachable`` at once, without retries.
        """
        started = self.clock()
        deadline = started + self.deadline_s
        attempt = 0
        while True:
            try:
                return fn()
            except Exception as e:
                if not is_transient(e):
                    raise
                unreachable = is_unreachable(e)
                if unreachable:
                    raise ProviderUnreachable(describe, unreachable) from e
                attempt += 1
                waited = self.clock() - started
                cause = f"{type(e).__name__}: {e}"
                if attempt > self.max_retries:
                    raise TransientProviderError(
                        f"{describe}: still failing after {attempt - 1} retries ({waited:.1f} s): {cause}"
                    ) from e
                d = self.delay(attempt, slow=is_slow(e), retry_after=retry_after(e))
                if self.clock() + d > deadline:
                    raise TransientProviderError(
                        f"{describe}: gave up at the {self.deadline_s:g} s retry deadline after "
                        f"{attempt} attempt(s) ({waited:.1f} s elapsed; next wait {d:.1f} s): {cause}"
                    ) from e
                if on_retry is not None:
                    on_retry(attempt, e, d)
                self.sleep(d)
