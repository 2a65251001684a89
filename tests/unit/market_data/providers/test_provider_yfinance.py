"""YfinanceProvider against local fakes of Yahoo's chart API, fed with real S&P 500 bars.

Two transports, as offline-data-and-testing.md section 4 measured: ``responses`` with a
``requests.Session``, and a loopback server with a curl_cffi session (no mocking library exists for
curl_cffi). Fault injection (timeouts, 429) goes through ``responses``.
"""

from __future__ import annotations

import json
import random
import re
import urllib.parse
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pytest
import requests
import responses
import yfinance
import yfinance.base
import yfinance.data
import yfinance.scrapers.history
from provider_fakes import FakeClock

from trading_core.config import YfinanceConfig
from trading_core.errors import ProviderError, TransientProviderError
from trading_core.market_data.providers import MarketDataProvider, UnknownSymbol, UnsupportedTimeframe
from trading_core.market_data.providers.yfinance_provider import YfinanceProvider

CLOSES_2008_10_06_10 = [1056.89, 996.23, 984.94, 909.92, 899.22]
NY = "America/New_York"
NOT_FOUND = {"chart": {"result": None,
                       "error": {"code": "Not Found", "description": "No data found, symbol may be delisted"}}}


def d(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


def _period(start: int, end: int) -> dict[str, Any]:
    return {"timezone": "EST", "start": start, "end": end, "gmtoffset": -18000}


def chart_json(symbol: str, query: dict[str, str], bars: dict[str, pl.DataFrame]) -> tuple[int, dict[str, Any]]:
    """Yahoo's chart answer built from real daily bars; bar times are the 09:30 New York open."""
    df = bars.get(symbol)
    if df is None:
        return 404, NOT_FOUND
    stamps = [int(pd.Timestamp(t.date()).tz_localize(NY).replace(hour=9, minute=30).timestamp())
              for t in df["ts"]]
    idx = list(range(len(stamps)))
    if "range" in query:  # the timezone probe
        idx = idx[-5:]
    else:
        p1, p2 = int(query["period1"]), int(query["period2"])
        idx = [i for i in idx if p1 <= stamps[i] < p2]
    last = df.row(-1, named=True)
    meta = {"currency": "USD", "symbol": symbol, "exchangeName": "SNP", "instrumentType": "INDEX",
            "exchangeTimezoneName": NY, "timezone": "EST", "gmtoffset": -18000, "priceHint": 2,
            "regularMarketPrice": last["close"], "chartPreviousClose": last["open"],
            "dataGranularity": "1d", "range": "",
            "validRanges": ["1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max"],
            "currentTradingPeriod": {"pre": _period(0, 1), "regular": _period(1, 2), "post": _period(2, 3)}}
    result: dict[str, Any] = {"meta": meta, "indicators": {"quote": [{}]}}
    if idx:
        col = {c: [df[c][i] for i in idx] for c in ("open", "high", "low", "close", "volume")}
        result["timestamp"] = [stamps[i] for i in idx]
        result["indicators"] = {"quote": [{**col, "volume": [int(v) for v in col["volume"]]}],
                                "adjclose": [{"adjclose": col["close"]}]}
    return 200, {"chart": {"result": [result], "error": None}}


def yahoo_route(bars: dict[str, pl.DataFrame], log: list[str],
                fault: Callable[[str], Any] | None = None) -> Callable[[Any], Any]:
    def route(req: Any) -> tuple[int, dict[str, str], str]:
        log.append(req.url)
        u = urllib.parse.urlsplit(req.url)
        if fault is not None:
            hit = fault(req.url)
            if hit is not None:
                return hit
        if u.path.startswith("/v8/finance/chart/"):
            symbol = urllib.parse.unquote(u.path.rsplit("/", 1)[1])
            status, body = chart_json(symbol, dict(urllib.parse.parse_qsl(u.query)), bars)
            return status, {"Content-Type": "application/json"}, json.dumps(body)
        if u.path == "/v1/test/getcrumb":
            return 200, {"Content-Type": "text/plain"}, "offlineCrumb"
        return 404, {}, ""
    return route


@pytest.fixture(autouse=True)
def _fresh_yfinance_state(tmp_path: Path) -> Iterator[None]:
    """yfinance memoises past-range GETs per process and caches timezones in SQLite: reset both."""
    yfinance.data.YfData.cache_get.cache_clear()
    yfinance.set_tz_cache_location(str(tmp_path / "yf"))
    yield
    yfinance.data.YfData.cache_get.cache_clear()


@pytest.fixture
def bars(gspc_1d: pl.DataFrame) -> dict[str, pl.DataFrame]:
    return {"^GSPC": gspc_1d.filter(pl.col("ts").is_between(d(2008, 9, 1), d(2008, 12, 31)))}


def make(clock: FakeClock, tmp_path: Path, session: Any = None, **cfg: Any) -> YfinanceProvider:
    config = YfinanceConfig(**{"retry_deadline_s": 120.0, "max_retries": 5, **cfg})
    return YfinanceProvider(config, session=session if session is not None else requests.Session(),
                            cache_dir=tmp_path, clock=clock, sleep=clock.sleep, rng=random.Random(20081015))


def mocked(route: Callable[[Any], Any]) -> responses.RequestsMock:
    r = responses.RequestsMock(assert_all_requests_are_fired=False)
    r.add_callback(responses.GET, re.compile(r"https://[a-z0-9.]*yahoo\.com/.*"), callback=route)
    return r


def test_yfinance_provider_satisfies_the_provider_protocol(clock: FakeClock, tmp_path: Path) -> None:
    p = make(clock, tmp_path)
    assert isinstance(p, MarketDataProvider) and p.name == "yfinance"
    assert p.supports("yahoo", "^GSPC", "1d") and p.supports("yahoo", "AAPL", "5m")
    assert not p.supports("yahoo", "^GSPC", "4h") and not p.supports("coinbase", "BTC/USD", "1d")


def test_daily_bars_through_requests_session_have_real_closes_at_utc_midnight(
    bars: dict[str, pl.DataFrame], clock: FakeClock, tmp_path: Path,
) -> None:
    log: list[str] = []
    with mocked(yahoo_route(bars, log)):
        df = make(clock, tmp_path).fetch_ohlcv("yahoo", "^GSPC", "1d", d(2008, 10, 6), d(2008, 10, 11))
    assert [round(c, 2) for c in df["close"]] == CLOSES_2008_10_06_10
    assert df["ts"].to_list() == [d(2008, 10, day) for day in range(6, 11)]
    assert df.columns == ["ts", "open", "high", "low", "close", "volume"]
    assert df["volume"][0] == pytest.approx(7_956_020_000, rel=1e-6)
    chart = [u for u in log if "/v8/finance/chart/" in u and "period1" in u]
    assert len(chart) == 1 and "interval=1d" in chart[0]


def test_range_is_half_open_for_daily_bars(bars: dict[str, pl.DataFrame], clock: FakeClock, tmp_path: Path) -> None:
    with mocked(yahoo_route(bars, [])):
        df = make(clock, tmp_path).fetch_ohlcv("yahoo", "^GSPC", "1d", d(2008, 10, 7), d(2008, 10, 9))
    assert df["ts"].to_list() == [d(2008, 10, 7), d(2008, 10, 8)]


def test_weekend_range_of_a_known_ticker_is_empty_not_an_error(
    bars: dict[str, pl.DataFrame], clock: FakeClock, tmp_path: Path,
) -> None:
    with mocked(yahoo_route(bars, [])):
        df = make(clock, tmp_path).fetch_ohlcv("yahoo", "^GSPC", "1d", d(2008, 10, 11), d(2008, 10, 13))
    assert df.height == 0 and df.columns == ["ts", "open", "high", "low", "close", "volume"]


def test_unknown_ticker_fails_at_once_naming_it(bars: dict[str, pl.DataFrame], clock: FakeClock,
                                                 tmp_path: Path) -> None:
    log: list[str] = []
    p = make(clock, tmp_path)
    with mocked(yahoo_route(bars, log)), pytest.raises(UnknownSymbol, match=r"'NOPE'") as ei:
        p.fetch_ohlcv("yahoo", "NOPE", "1d", d(2008, 10, 6), d(2008, 10, 11))
    assert ei.value.symbol == "NOPE"
    assert clock.sleeps == [] and p.retries == 0


def test_timeouts_then_ok_are_retried(bars: dict[str, pl.DataFrame], clock: FakeClock, tmp_path: Path) -> None:
    fails = {"n": 0}

    def fault(url: str) -> Any:
        if "/v8/finance/chart/" in url and "period1" in url and fails["n"] < 2:
            fails["n"] += 1
            raise requests.exceptions.ReadTimeout("read timed out")
        return None

    p = make(clock, tmp_path)
    with mocked(yahoo_route(bars, [], fault)):
        df = p.fetch_ohlcv("yahoo", "^GSPC", "1d", d(2008, 10, 6), d(2008, 10, 11))
    assert [round(c, 2) for c in df["close"]] == CLOSES_2008_10_06_10
    assert p.retries == 2 and len(clock.sleeps) == 2


def test_persistent_timeouts_stop_at_the_deadline(bars: dict[str, pl.DataFrame], clock: FakeClock,
                                                  tmp_path: Path) -> None:
    def fault(url: str) -> Any:
        if "/v8/finance/chart/" in url:
            raise requests.exceptions.ConnectTimeout("connect timed out")
        return None

    p = make(clock, tmp_path, max_retries=1000, retry_deadline_s=30.0)
    with mocked(yahoo_route(bars, [], fault)), pytest.raises(TransientProviderError, match=r"30 s retry deadline"):
        p.fetch_ohlcv("yahoo", "^GSPC", "1d", d(2008, 10, 6), d(2008, 10, 11))
    assert clock.elapsed <= 30.0 and p.retries >= 2


def test_http_429_rate_limit_is_retried_more_slowly(bars: dict[str, pl.DataFrame], clock: FakeClock,
                                                    tmp_path: Path) -> None:
    hits = {"n": 0}

    def fault(url: str) -> Any:
        if "/v8/finance/chart/" in url and "period1" in url and hits["n"] < 2:
            hits["n"] += 1  # yfinance re-sends once with the other cookie strategy, then raises
            return 429, {"Content-Type": "text/plain"}, "Too Many Requests"
        return None

    p = make(clock, tmp_path)
    with mocked(yahoo_route(bars, [], fault)):
        df = p.fetch_ohlcv("yahoo", "^GSPC", "1d", d(2008, 10, 6), d(2008, 10, 11))
    assert df.height == 5 and p.retries == 1 and clock.sleeps[0] >= 2.0


def test_4h_is_refused_without_any_request(clock: FakeClock, tmp_path: Path) -> None:
    calls: list[Any] = []
    p = YfinanceProvider(YfinanceConfig(), history=lambda *a: calls.append(a) or pd.DataFrame())
    with pytest.raises(UnsupportedTimeframe, match="'4h'"):
        p.fetch_ohlcv("yahoo", "^GSPC", "4h", d(2008, 10, 6), d(2008, 10, 11))
    with pytest.raises(ProviderError, match="'coinbase'"):
        p.fetch_ohlcv("coinbase", "^GSPC", "1d", d(2008, 10, 6), d(2008, 10, 11))
    assert calls == []


def test_intraday_bars_keep_their_open_instant_in_utc(clock: FakeClock) -> None:
    """Fake ``history`` callable: 1h bars in New York time become UTC instants (EDT = UTC-4)."""
    idx = pd.DatetimeIndex(["2024-06-03 09:30", "2024-06-03 10:30"]).tz_localize(NY)
    frame = pd.DataFrame({"Open": [1.0, 2.0], "High": [2.0, 3.0], "Low": [0.5, 1.5], "Close": [1.5, 2.5],
                          "Adj Close": [1.5, 2.5], "Volume": [10, 20]}, index=idx)
    seen: list[tuple[Any, ...]] = []
    p = YfinanceProvider(YfinanceConfig(), history=lambda *a: seen.append(a) or frame,
                         clock=clock, sleep=clock.sleep)
    df = p.fetch_ohlcv("yahoo", "AAPL", "1h", d(2024, 6, 3), d(2024, 6, 4))
    assert df["ts"].to_list() == [d(2024, 6, 3, 13, 30), d(2024, 6, 3, 14, 30)]
    assert df["close"].to_list() == [1.5, 2.5] and df["volume"].to_list() == [10.0, 20.0]
    assert seen[0][0] == "AAPL" and seen[0][3] == "1h"


def test_one_minute_ranges_are_split_into_spans_yahoo_accepts(clock: FakeClock) -> None:
    seen: list[tuple[Any, ...]] = []
    p = YfinanceProvider(YfinanceConfig(), history=lambda *a: seen.append(a) or pd.DataFrame(),
                         clock=clock, sleep=clock.sleep)
    assert p.fetch_ohlcv("yahoo", "AAPL", "1m", d(2024, 6, 1), d(2024, 6, 20)).height == 0
    assert [(s.day, e.day) for _, s, e, _ in seen] == [(1, 8), (8, 15), (15, 20)]


def test_curl_cffi_session_against_a_loopback_server(
    httpserver: Any, bars: dict[str, pl.DataFrame], clock: FakeClock, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """yfinance's default transport (curl_cffi, impersonating Chrome) over a real socket."""
    from curl_cffi import requests as curl_requests
    from werkzeug import Request, Response

    def handler(request: Request) -> Response:
        status, body = chart_json(request.path.rsplit("/", 1)[1], dict(request.args), bars)
        return Response(json.dumps(body), status=status, content_type="application/json")

    httpserver.expect_request(re.compile(r"/v8/finance/chart/.*")).respond_with_handler(handler)
    base = httpserver.url_for("").rstrip("/")
    for m in (yfinance.base, yfinance.scrapers.history):
        monkeypatch.setattr(m, "_BASE_URL_", base)
    # Cookie and crumb come from real Yahoo hosts; curl_cffi's sockets bypass pytest-socket, so
    # skip that step outright rather than rely on the guard.
    monkeypatch.setattr(yfinance.data.YfData, "_get_cookie_and_crumb",
                        lambda self, timeout=30: (None, "basic"))
    p = make(clock, tmp_path, session=curl_requests.Session(impersonate="chrome"))
    df = p.fetch_ohlcv("yahoo", "^GSPC", "1d", d(2008, 10, 6), d(2008, 10, 11))
    assert [round(c, 2) for c in df["close"]] == CLOSES_2008_10_06_10
    assert df["ts"][0] == d(2008, 10, 6)
