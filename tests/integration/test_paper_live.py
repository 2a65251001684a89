"""A live session: real ccxt (Binance's REST API) polled over a loopback HTTP fake of that API.

The fake serves the real BTC/USD 1h history as BTCUSDT klines, but only the bars that have
closed by the session's clock; the warehouse holds the history before activation (warm-up). The
same bars replayed from the warehouse give the same fills: live and replay are one Trader. When
the venue stops publishing, the feed reports stale data in the session's status.
"""

from __future__ import annotations

import json
import random
import re
import urllib.parse
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import ccxt
import polars as pl
import pytest
from paper_support import FakeTime, PaperEnv, accepted_report, btc_request

from trading_core.config import CcxtConfig, ValidationConfig
from trading_core.market_data.providers.ccxt_provider import CcxtProvider

H = 3_600_000
ACTIVATION = datetime(2019, 6, 1, tzinfo=UTC)
LIVE_BARS = 60
OPTS = {"enableRateLimit": False, "options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False}}
EXCHANGE_INFO = {
    "timezone": "UTC", "serverTime": 0, "rateLimits": [], "exchangeFilters": [],
    "symbols": [{
        "symbol": "BTCUSDT", "status": "TRADING", "baseAsset": "BTC", "baseAssetPrecision": 8, "quoteAsset": "USDT",
        "quotePrecision": 8, "quoteAssetPrecision": 8, "orderTypes": ["LIMIT", "MARKET"],
        "isSpotTradingAllowed": True, "isMarginTradingAllowed": False, "permissions": [],
        "permissionSets": [["SPOT"]],
        "filters": [{"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "1000000.00", "tickSize": "0.01"},
                    {"filterType": "LOT_SIZE", "minQty": "0.00001", "maxQty": "9000.0", "stepSize": "0.00001"}],
    }],
}


def _klines(frame: pl.DataFrame) -> list[list[object]]:
    out: list[list[object]] = []
    for ts, o, h, lo, c, v in frame.iter_rows():
        t = int(ts.timestamp() * 1000)
        out.append([t, f"{o}", f"{h}", f"{lo}", f"{c}", f"{v}", t + H - 1, f"{v * c:.2f}", 100, "0", "0", "0"])
    return out


@pytest.fixture
def setup(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, btc_1h: pl.DataFrame) -> dict[str, Any]:
    env = PaperEnv(tmp_path / "live", tmp_path_factory.getbasetemp())
    history = btc_1h.filter(pl.col("ts") < ACTIVATION)
    env.warehouse.write_report(venue="binance", symbol="BTC/USDT", timeframe="1h", source="sample",
                               report=accepted_report(history))
    replay = PaperEnv(tmp_path / "replay", tmp_path_factory.getbasetemp())
    upto = btc_1h.filter(pl.col("ts") < ACTIVATION + timedelta(hours=LIVE_BARS))
    replay.warehouse.write_report(venue="binance", symbol="BTC/USDT", timeframe="1h", source="sample",
                                  report=accepted_report(upto))
    return {"env": env, "replay": replay, "klines": _klines(btc_1h)}


def test_a_live_session_trades_closed_bars_as_the_replay_does_and_flags_stale_data(
        setup: dict[str, Any], httpserver: Any) -> None:
    from werkzeug import Request, Response

    env: PaperEnv = setup["env"]
    klines: list[list[object]] = setup["klines"]
    clock = FakeTime(ACTIVATION.timestamp() + 60)
    frozen: dict[str, float] = {}
    served: list[str] = []

    def handler(request: Request) -> Response:
        u = urllib.parse.urlsplit(request.url)
        q = dict(urllib.parse.parse_qsl(u.query))
        if u.path == "/api/v3/exchangeInfo":
            return Response(json.dumps(EXCHANGE_INFO), content_type="application/json")
        now_ms = int(frozen.get("at", clock()) * 1000)  # the venue publishes up to its clock (or froze)
        start, limit = int(q.get("startTime", 0)), int(q.get("limit", 500))
        rows = [k for k in klines if start <= int(k[0]) < now_ms][:limit]  # the open bar too, as venues do
        served.append(f"{start}:{len(rows)}")
        return Response(json.dumps(rows), content_type="application/json")

    httpserver.expect_request(re.compile(r"/api/v3/.*")).respond_with_handler(handler)
    ex = ccxt.binance(OPTS)
    base = httpserver.url_for("").rstrip("/")
    ex.urls["api"] = {k: re.sub(r"^https://[^/]+", base, v) if isinstance(v, str) else v
                      for k, v in ex.urls["api"].items()}
    provider = CcxtProvider(CcxtConfig(exchange_id="binance", enable_rate_limit=False, page_limit=200),
                            exchange=ex, clock=clock, sleep=clock.sleep, rng=random.Random(7))

    request = btc_request(start=ACTIVATION, end=datetime(2262, 4, 10, tzinfo=UTC), symbol="BTC/USDT",
                          venue="binance", venue_config={}, params={"fast": 5, "slow": 15}, warmup_bars=20)
    sid = env.session(request, session_id="ps-0000000011fe", feed="live", poll_s=3600, heartbeat_s=600,
                      stale_after_s=1800)
    seen_stale: dict[str, bool] = {}

    def watch() -> None:
        st = env.store.status(sid) or {}
        if not frozen and int(st.get("bars_processed") or 0) >= LIVE_BARS:
            frozen["at"] = ACTIVATION.timestamp() + LIVE_BARS * 3600  # the venue stops publishing
        if frozen and st.get("stale"):
            seen_stale["yes"] = True
            env.store.request(sid, "stop")

    clock.hooks.append(watch)
    out = env.runner(sid, "live-run", provider=provider, validation=ValidationConfig(), clock=clock,
                     sleep=clock.sleep, budget_s=10 ** 9).run()  # 60 h of session clock: no hand-over
    assert out.state == "stopped" and out.bars_processed == LIVE_BARS
    assert seen_stale, "the status never reported stale data after the venue froze"
    assert served  # it really went through ccxt and HTTP

    # the same bars, replayed from a warehouse that has them, trade the same way
    replay: PaperEnv = setup["replay"]
    rsid = replay.session(request.model_copy(update={"end": ACTIVATION + timedelta(hours=LIVE_BARS)}),
                          session_id="ps-0000000011fe")
    assert replay.run(rsid).state == "completed"

    def fills(e: PaperEnv) -> list[tuple[Any, ...]]:
        with e.ledger.connect(read_only=True) as con:
            frame = e.ledger.events(con, sid, ["OrderFilled", "OrderSubmitted", "OrderDenied"])
        return [(r["event_id"], r["kind"], r["payload"]) for r in frame.iter_rows(named=True)]

    live_fills = fills(env)
    assert any(k == "OrderFilled" for _, k, _ in live_fills)
    assert live_fills == fills(replay)
