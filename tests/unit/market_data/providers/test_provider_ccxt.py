"""CcxtProvider against local fakes only: ccxt's own ``fetch`` seam, a loopback HTTP server, and a
fake client for fault injection (reliability-and-security.md section 8, row T8)."""

from __future__ import annotations

import bisect
import random
import re
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import ccxt
import polars as pl
import pytest
from provider_fakes import FakeClock, binance_klines, ccxt_rows, ms

from trading_core.config import CcxtConfig
from trading_core.errors import ProviderError, TransientProviderError
from trading_core.market_data.providers import MarketDataProvider, UnknownSymbol, UnsupportedTimeframe
from trading_core.market_data.providers.ccxt_provider import CcxtProvider

H = 3_600_000


def d(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


# ------------------------------------------------------------------------------------------------
# A fake client: ccxt's interface (fetch_ohlcv, id, rateLimit, timeframes), no HTTP.
# ------------------------------------------------------------------------------------------------

class FakeExchange:
    """Serves real bars; ``script`` items are raised (exceptions) or run (callables) one per call."""

    timeframes = {"1h": "1h", "1d": "1d"}
    markets: dict[str, Any] | None = None

    def __init__(self, rows: list[list[float]], clock: FakeClock, *, script: list[Any] | None = None,
                 overlap: int = 0, rate_limit_ms: int = 0, ex_id: str = "coinbase",
                 gap: tuple[int, int] | None = None) -> None:
        self.rows, self.clock, self.script = rows, clock, list(script or [])
        self.overlap, self.rateLimit, self.id, self.gap = overlap, rate_limit_ms, ex_id, gap
        self.calls: list[tuple[float, int | None, int | None]] = []
        self._keys = [r[0] for r in rows]
        self.last_response_headers: dict[str, str] = {}

    def fetch_ohlcv(self, symbol: str, timeframe: str = "1m", since: int | None = None,
                    limit: int | None = None, params: dict[str, Any] | None = None) -> list[list[float]]:
        self.calls.append((self.clock(), since, limit))
        if self.script:
            item = self.script.pop(0)
            if isinstance(item, BaseException):
                raise item
            if callable(item):
                item(self)
        if symbol != "BTC/USD":
            raise ccxt.BadSymbol(f"{self.id} does not have market symbol {symbol}")
        lo = (since or 0) - self.overlap * H  # an overlapping venue re-sends the previous bars
        rows = self.rows[bisect.bisect_left(self._keys, lo):]
        if self.gap:
            rows = [r for r in rows[: 10 * (limit or 500)] if not self.gap[0] <= r[0] < self.gap[1]]
            # a windowed venue: only bars inside [since, since + limit * tf)
            rows = [r for r in rows if r[0] < (since or 0) + (limit or 0) * H]
        return [list(r) for r in rows[: limit or 500]]


def provider(ex: Any, clock: FakeClock, **cfg: Any) -> CcxtProvider:
    base = {"exchange_id": ex.id, "enable_rate_limit": False, "page_limit": 100, "retry_deadline_s": 120.0,
            "max_retries": 5}
    return CcxtProvider(CcxtConfig(**{**base, **cfg}), exchange=ex, clock=clock, sleep=clock.sleep,
                        rng=random.Random(20191017))  # fixed seed: the jitter is reproducible


@pytest.fixture(scope="session")
def rows(btc_1h: pl.DataFrame) -> list[list[float]]:
    return ccxt_rows(btc_1h)


def test_ccxt_provider_satisfies_the_provider_protocol(rows: list[list[float]], clock: FakeClock) -> None:
    p = provider(FakeExchange(rows, clock), clock)
    assert isinstance(p, MarketDataProvider) and p.name == "ccxt"
    assert p.supports("coinbase", "BTC/USD", "1h")
    assert not p.supports("binance", "BTC/USD", "1h") and not p.supports("coinbase", "BTC/USD", "4h")


def test_pagination_across_many_pages_returns_exactly_the_requested_range(
    rows: list[list[float]], btc_1h: pl.DataFrame, clock: FakeClock,
) -> None:
    ex = FakeExchange(rows, clock)
    start = d(2018, 1, 1)
    end = start + timedelta(hours=1000)
    df = provider(ex, clock, page_limit=37).fetch_ohlcv("coinbase", "BTC/USD", "1h", start, end)
    want = btc_1h.filter((pl.col("ts") >= start) & (pl.col("ts") < end))
    assert df.height == want.height == 1000
    assert df.equals(want)
    assert len(ex.calls) == 28  # ceil(1000 / 37): each page starts one bar after the last one
    assert [c[1] for c in ex.calls[:2]] == [ms(start), ms(start) + 37 * H]


def test_overlapping_pages_return_zero_duplicate_rows(
    rows: list[list[float]], btc_1h: pl.DataFrame, clock: FakeClock,
) -> None:
    ex = FakeExchange(rows, clock, overlap=5)
    start, end = d(2019, 3, 1), d(2019, 3, 11)
    df = provider(ex, clock, page_limit=24).fetch_ohlcv("coinbase", "BTC/USD", "1h", start, end)
    assert df["ts"].n_unique() == df.height == 240
    assert df.equals(btc_1h.filter((pl.col("ts") >= start) & (pl.col("ts") < end)))


def test_windowed_venue_gap_is_skipped_and_pagination_continues(rows: list[list[float]], clock: FakeClock) -> None:
    gap = (ms(d(2019, 3, 2)), ms(d(2019, 3, 6)))  # a 4-day outage: one whole page window is empty
    ex = FakeExchange(rows, clock, gap=gap)
    df = provider(ex, clock, page_limit=48).fetch_ohlcv("coinbase", "BTC/USD", "1h", d(2019, 3, 1), d(2019, 3, 8))
    assert df.height == 7 * 24 - 4 * 24
    assert df["ts"].min() == d(2019, 3, 1) and df["ts"].max() == d(2019, 3, 7, 23)


def test_range_beyond_the_data_stops_after_a_few_empty_pages(rows: list[list[float]], clock: FakeClock) -> None:
    ex = FakeExchange(rows, clock)
    df = provider(ex, clock).fetch_ohlcv("coinbase", "BTC/USD", "1h", d(2019, 10, 17), d(2030, 1, 1))
    assert df.height == 10 and df["close"][-1] == 8035.88
    assert len(ex.calls) == 4  # one page of data, then 3 empty pages


def test_three_request_timeouts_then_ok_succeeds_after_three_retries(
    rows: list[list[float]], clock: FakeClock,
) -> None:
    ex = FakeExchange(rows, clock, script=[ccxt.RequestTimeout("t1"), ccxt.RequestTimeout("t2"),
                                           ccxt.RequestTimeout("t3")])
    p = provider(ex, clock)
    df = p.fetch_ohlcv("coinbase", "BTC/USD", "1h", d(2019, 10, 17), d(2019, 10, 17, 5))
    assert df.height == 5 and p.retries == 3 and len(ex.calls) == 4
    assert len(clock.sleeps) == 3 and all(0 <= s <= 4 for s in clock.sleeps)  # full jitter, base 1 s


def test_persistent_ddos_protection_stops_at_the_deadline_with_a_clear_error(
    rows: list[list[float]], clock: FakeClock,
) -> None:
    ex = FakeExchange(rows, clock, script=[ccxt.DDoSProtection("blocked")] * 1000)
    p = provider(ex, clock, max_retries=1000, retry_deadline_s=120.0)
    with pytest.raises(TransientProviderError, match=r"120 s retry deadline.*DDoSProtection: blocked") as ei:
        p.fetch_ohlcv("coinbase", "BTC/USD", "1h", d(2019, 10, 17), d(2019, 10, 17, 5))
    assert clock.elapsed <= 120.0
    assert "BTC/USD" in str(ei.value)
    assert 2 <= len(ex.calls) < 20  # slowed down: rate-limit class waits at least 2 s, doubling


def test_retries_are_bounded_by_max_retries_too(rows: list[list[float]], clock: FakeClock) -> None:
    ex = FakeExchange(rows, clock, script=[ccxt.ExchangeNotAvailable("down")] * 10)
    with pytest.raises(TransientProviderError, match="after 2 retries"):
        provider(ex, clock, max_retries=2).fetch_ohlcv("coinbase", "BTC/USD", "1h", d(2019, 10, 17),
                                                       d(2019, 10, 17, 5))
    assert len(ex.calls) == 3


def test_rate_limit_exceeded_honours_retry_after_before_the_next_attempt(
    rows: list[list[float]], clock: FakeClock,
) -> None:
    err = ccxt.RateLimitExceeded("429 Too Many Requests")
    err.retry_after = 7  # type: ignore[attr-defined]
    ex = FakeExchange(rows, clock, script=[err])
    df = provider(ex, clock).fetch_ohlcv("coinbase", "BTC/USD", "1h", d(2019, 10, 17), d(2019, 10, 17, 5))
    assert df.height == 5
    assert ex.calls[1][0] - ex.calls[0][0] >= 7.0


def test_rate_limit_exceeded_reads_retry_after_from_the_response_headers(
    rows: list[list[float]], clock: FakeClock,
) -> None:
    def limited(ex: FakeExchange) -> None:
        ex.last_response_headers = {"Retry-After": "11"}
        raise ccxt.RateLimitExceeded("slow down")

    ex = FakeExchange(rows, clock, script=[limited])
    provider(ex, clock).fetch_ohlcv("coinbase", "BTC/USD", "1h", d(2019, 10, 17), d(2019, 10, 17, 5))
    assert ex.calls[1][0] - ex.calls[0][0] >= 11.0


def test_rate_limit_exceeded_backs_off_more_each_time(rows: list[list[float]], clock: FakeClock) -> None:
    ex = FakeExchange(rows, clock, script=[ccxt.RateLimitExceeded("x")] * 4)
    provider(ex, clock, max_retries=10).fetch_ohlcv("coinbase", "BTC/USD", "1h", d(2019, 10, 17),
                                                    d(2019, 10, 17, 5))
    assert clock.sleeps == sorted(clock.sleeps) and clock.sleeps[0] >= 2.0 and clock.sleeps[-1] >= 16.0


def test_on_maintenance_is_retried_as_a_network_error(rows: list[list[float]], clock: FakeClock) -> None:
    ex = FakeExchange(rows, clock, script=[ccxt.OnMaintenance("maintenance")])
    df = provider(ex, clock).fetch_ohlcv("coinbase", "BTC/USD", "1h", d(2019, 10, 17), d(2019, 10, 17, 5))
    assert df.height == 5 and len(ex.calls) == 2


def test_bad_symbol_fails_at_once_with_zero_retries_naming_the_symbol(
    rows: list[list[float]], clock: FakeClock,
) -> None:
    ex = FakeExchange(rows, clock)
    with pytest.raises(UnknownSymbol, match=r"'DOGE/USD'") as ei:
        provider(ex, clock).fetch_ohlcv("coinbase", "DOGE/USD", "1h", d(2019, 10, 17), d(2019, 10, 18))
    assert len(ex.calls) == 1 and clock.sleeps == []
    assert ei.value.symbol == "DOGE/USD"


@pytest.mark.parametrize("error", [
    ccxt.AuthenticationError("invalid key"),
    ccxt.NotSupported("fetchOHLCV not supported"),
    ccxt.ExchangeError("something permanent"),
    ccxt.BadRequest("bad since"),
])
def test_exchange_class_errors_are_not_retried(rows: list[list[float]], clock: FakeClock,
                                               error: Exception) -> None:
    ex = FakeExchange(rows, clock, script=[error])
    with pytest.raises(ProviderError, match="BTC/USD") as ei:
        provider(ex, clock).fetch_ohlcv("coinbase", "BTC/USD", "1h", d(2019, 10, 17), d(2019, 10, 18))
    assert not isinstance(ei.value, TransientProviderError)
    assert len(ex.calls) == 1 and clock.sleeps == []


def test_unsupported_timeframe_and_foreign_venue_fail_without_a_request(
    rows: list[list[float]], clock: FakeClock,
) -> None:
    ex = FakeExchange(rows, clock)
    p = provider(ex, clock)
    with pytest.raises(UnsupportedTimeframe, match="4h"):
        p.fetch_ohlcv("coinbase", "BTC/USD", "4h", d(2019, 10, 17), d(2019, 10, 18))
    with pytest.raises(ProviderError, match="'kraken'"):
        p.fetch_ohlcv("kraken", "BTC/USD", "1h", d(2019, 10, 17), d(2019, 10, 18))
    assert ex.calls == []


def test_requests_are_paced_at_the_exchange_rate_limit(rows: list[list[float]], clock: FakeClock) -> None:
    ex = FakeExchange(rows, clock, rate_limit_ms=1500)
    provider(ex, clock, page_limit=10).fetch_ohlcv("coinbase", "BTC/USD", "1h", d(2019, 10, 1), d(2019, 10, 3))
    times = [c[0] for c in ex.calls]
    assert len(times) == 5
    assert all(b - a >= 1.5 for a, b in zip(times, times[1:], strict=False))


def test_api_keys_come_only_from_the_named_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_CCXT_KEY", "k-123")
    monkeypatch.setenv("TEST_CCXT_SECRET", "s-456")
    p = CcxtProvider(CcxtConfig(exchange_id="kraken", api_key_env="TEST_CCXT_KEY",
                                api_secret_env="TEST_CCXT_SECRET", enable_rate_limit=False))
    assert (p.exchange.apiKey, p.exchange.secret) == ("k-123", "s-456")
    assert p.exchange.id == "kraken" and p.exchange.enableRateLimit is False
    plain = CcxtProvider(CcxtConfig(exchange_id="bitstamp"))
    assert not plain.exchange.apiKey and plain.exchange.enableRateLimit is True


# ------------------------------------------------------------------------------------------------
# Real ccxt (URL building + parsing) against a binance-like router fed with real bars
# ------------------------------------------------------------------------------------------------

OPTS = {"enableRateLimit": False,
        "options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False}}
EXCHANGE_INFO = {
    "timezone": "UTC", "serverTime": 1571302800000, "rateLimits": [], "exchangeFilters": [],
    "symbols": [{
        "symbol": "BTCUSDT", "status": "TRADING", "baseAsset": "BTC", "baseAssetPrecision": 8,
        "quoteAsset": "USDT", "quotePrecision": 8, "quoteAssetPrecision": 8,
        "orderTypes": ["LIMIT", "MARKET"], "isSpotTradingAllowed": True, "isMarginTradingAllowed": True,
        "permissions": [], "permissionSets": [["SPOT", "MARGIN"]],
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "1000000.00", "tickSize": "0.01"},
            {"filterType": "LOT_SIZE", "minQty": "0.00001", "maxQty": "9000.0", "stepSize": "0.00001"},
            {"filterType": "NOTIONAL", "minNotional": "5.0", "maxNotional": "9000000.0"},
        ],
    }],
}


def binance_router(klines: list[list[object]], log: list[str]) -> Callable[[str], Any]:
    def route(url: str) -> Any:
        log.append(url)
        u = urllib.parse.urlsplit(url)
        q = dict(urllib.parse.parse_qsl(u.query))
        if u.path == "/api/v3/exchangeInfo":
            return EXCHANGE_INFO
        if u.path == "/api/v3/klines":
            assert q["symbol"] == "BTCUSDT" and q["interval"] == "1h"
            start, limit = int(q.get("startTime", 0)), int(q.get("limit", 500))
            end = int(q["endTime"]) if "endTime" in q else None
            rows = [k for k in klines if int(k[0]) >= start and (end is None or int(k[0]) <= end)]
            return rows[:limit] if start else klines[-limit:]
        raise KeyError(u.path)
    return route


@pytest.fixture(scope="session")
def klines(btc_1h: pl.DataFrame) -> list[list[object]]:
    return binance_klines(btc_1h)


def test_real_ccxt_binance_through_the_fetch_seam_paginates_real_bars(
    klines: list[list[object]], btc_1h: pl.DataFrame, clock: FakeClock,
) -> None:
    log: list[str] = []
    ex = ccxt.binance(OPTS)
    route = binance_router(klines, log)
    ex.fetch = lambda url, method="GET", headers=None, body=None: route(url)
    p = provider(ex, clock, page_limit=100)
    start, end = d(2019, 10, 1), d(2019, 10, 17, 10)
    df = p.fetch_ohlcv("binance", "BTC/USDT", "1h", start, end)
    want = btc_1h.filter(pl.col("ts") >= start)
    assert df.height == want.height == 394
    assert df["close"].to_list() == want["close"].to_list() and df["ts"].to_list() == want["ts"].to_list()
    assert df["close"][-1] == 8035.88 and df["ts"][-1] == d(2019, 10, 17, 9)
    kl = [u for u in log if "/klines" in u]
    assert len(kl) == 4 and f"startTime={ms(start) + 100 * H}" in kl[1]


def test_real_ccxt_bad_symbol_is_unknown_symbol_without_a_klines_request(
    klines: list[list[object]], clock: FakeClock,
) -> None:
    log: list[str] = []
    ex = ccxt.binance(OPTS)
    route = binance_router(klines, log)
    ex.fetch = lambda url, method="GET", headers=None, body=None: route(url)
    with pytest.raises(UnknownSymbol, match="'ETH/USDT'"):
        provider(ex, clock).fetch_ohlcv("binance", "ETH/USDT", "1h", d(2019, 10, 1), d(2019, 10, 2))
    assert not any("/klines" in u for u in log)


def test_real_ccxt_binance_over_a_loopback_http_server(httpserver: Any, klines: list[list[object]],
                                                       clock: FakeClock) -> None:
    from werkzeug import Request, Response

    log: list[str] = []
    route = binance_router(klines, log)

    def handler(request: Request) -> Response:
        import json

        return Response(json.dumps(route(request.url)), content_type="application/json")

    httpserver.expect_request(re.compile(r"/api/v3/.*")).respond_with_handler(handler)
    ex = ccxt.binance(OPTS)
    base = httpserver.url_for("").rstrip("/")
    ex.urls["api"] = {k: re.sub(r"^https://[^/]+", base, v) if isinstance(v, str) else v
                      for k, v in ex.urls["api"].items()}
    p = provider(ex, clock, page_limit=6)
    df = p.fetch_ohlcv("binance", "BTC/USDT", "1h", d(2019, 10, 17), d(2019, 10, 17) + timedelta(hours=10))
    assert df.height == 10 and df["close"][-1] == 8035.88
    assert sum("/klines" in u for u in log) == 2


def test_real_ccxt_http_429_is_retried_then_served(httpserver: Any, klines: list[list[object]],
                                                   clock: FakeClock) -> None:
    """ccxt maps HTTP 429 to RateLimitExceeded; the provider waits and retries."""
    from werkzeug import Request, Response

    state = {"klines": 0}

    def handler(request: Request) -> Response:
        import json

        if request.path == "/api/v3/exchangeInfo":
            return Response(json.dumps(EXCHANGE_INFO), content_type="application/json")
        state["klines"] += 1
        if state["klines"] == 1:
            return Response('{"code":-1003,"msg":"Too many requests"}', status=429,
                            content_type="application/json", headers={"Retry-After": "7"})
        return Response(json.dumps(klines[-3:]), content_type="application/json")

    httpserver.expect_request(re.compile(r"/api/v3/.*")).respond_with_handler(handler)
    ex = ccxt.binance(OPTS)
    base = httpserver.url_for("").rstrip("/")
    ex.urls["api"] = {k: re.sub(r"^https://[^/]+", base, v) if isinstance(v, str) else v
                      for k, v in ex.urls["api"].items()}
    df = provider(ex, clock).fetch_ohlcv("binance", "BTC/USDT", "1h", d(2019, 10, 17, 7), d(2019, 10, 17, 10))
    assert df["close"].to_list()[-1] == 8035.88 and state["klines"] == 2
    assert clock.sleeps and clock.sleeps[0] >= 7.0
