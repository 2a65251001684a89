"""A session across venues (coinbase BTC/USD + yahoo ^GSPC): the pre-flight reads each symbol on
its own venue, and a live session polls each venue through the provider built for it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from paper_support import SAMPLE_DIR, PaperEnv, accepted_report, gspc_request

from trading_core.config import load_config
from trading_core.market_data.providers.sample import SampleProvider
from trading_core.paper.config import SessionConfig
from trading_core.paper.preflight import preflight
from trading_core.paper.runner import build_runner
from trading_core.paper.supervision import VenueRouter


def _mixed(timeframe: str = "1d", **kw: Any) -> Any:
    return gspc_request(symbol="BTC/USD", venue="coinbase", symbols=("BTC/USD", "^GSPC"),
                        venues=("coinbase", "yahoo"), timeframe=timeframe, calendar=None,
                        start=datetime(2018, 1, 1, tzinfo=UTC), end=datetime(2018, 6, 1, tzinfo=UTC), **kw)


def _with_btc_daily(env: PaperEnv) -> None:
    df = SampleProvider(SAMPLE_DIR).fetch_ohlcv("coinbase", "BTC/USD", "1d", datetime(2017, 1, 1, tzinfo=UTC),
                                                datetime(2019, 1, 1, tzinfo=UTC))
    env.warehouse.write_report(venue="coinbase", symbol="BTC/USD", timeframe="1d", source="sample",
                               report=accepted_report(df))


def test_preflight_of_a_mixed_venue_session_reads_each_symbol_on_its_own_venue(
        tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    env = PaperEnv(tmp_path, tmp_path_factory.getbasetemp())
    _with_btc_daily(env)
    data = next(c for c in preflight(SessionConfig(request=_mixed()), env.warehouse, data_dir=tmp_path,
                                     compile_engine=False) if c.name == "data")
    assert data.ok, data.detail
    assert data.detail == "BTC/USD, ^GSPC 1d on coinbase, yahoo stored"


def test_preflight_names_the_venue_of_the_missing_symbol(tmp_path: Path,
                                                         tmp_path_factory: pytest.TempPathFactory) -> None:
    env = PaperEnv(tmp_path, tmp_path_factory.getbasetemp())  # BTC/USD 1h stored, ^GSPC only daily
    data = next(c for c in preflight(SessionConfig(request=_mixed("1h")), env.warehouse, data_dir=tmp_path,
                                     compile_engine=False) if c.name == "data")
    assert not data.ok
    assert data.detail == "no ^GSPC 1h bars on yahoo (trading ingest sample, or trading ingest live)"


class _Provider:
    def __init__(self, universe: Any) -> None:
        self.universe = universe
        self.calls: list[tuple[str, str]] = []

    def fetch_ohlcv(self, venue: str, symbol: str, timeframe: str, start: Any, end: Any) -> str:
        self.calls.append((venue, symbol))
        return f"{self.universe.name}:{venue}:{symbol}"


def test_a_live_mixed_venue_session_polls_each_venue_through_its_own_provider(
        tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    env = PaperEnv(tmp_path, tmp_path_factory.getbasetemp())
    sid = env.session(_mixed(), feed="live")
    built: dict[str, _Provider] = {}

    def build(universe: Any, md: Any, now: datetime) -> _Provider:
        assert md.mode == "live"
        built[universe.venue] = _Provider(universe)
        return built[universe.venue]

    runner = build_runner(sid, store=env.store, ledger=env.ledger, warehouse=env.warehouse, run_id="r1",
                          market_data=load_config().market_data, data_dir=tmp_path, build_provider=build)
    assert isinstance(runner.provider, VenueRouter)
    assert {v: (u.universe.symbols, u.universe.asset_class) for v, u in built.items()} == {
        "coinbase": (["BTC/USD"], "crypto"), "yahoo": (["^GSPC"], "equity")}
    assert runner.provider.fetch_ohlcv("yahoo", "^GSPC", "1d", None, None).endswith(":yahoo:^GSPC")
    assert built["yahoo"].calls == [("yahoo", "^GSPC")] and built["coinbase"].calls == []


def test_a_single_venue_live_session_gets_its_provider_unwrapped(tmp_path: Path,
                                                                 tmp_path_factory: pytest.TempPathFactory) -> None:
    env = PaperEnv(tmp_path, tmp_path_factory.getbasetemp())
    sid = env.session(gspc_request(), feed="live")
    runner = build_runner(sid, store=env.store, ledger=env.ledger, warehouse=env.warehouse, run_id="r1",
                          market_data=load_config().market_data, data_dir=tmp_path,
                          build_provider=lambda u, md, now: _Provider(u))
    assert isinstance(runner.provider, _Provider)


def test_paper_start_without_dates_replays_the_last_90_days_every_symbol_has(
        tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from trading_core.cli import main

    env = PaperEnv(tmp_path, tmp_path_factory.getbasetemp())
    _with_btc_daily(env)  # BTC/USD daily to 2018-12-31 here; ^GSPC daily to 2018-12-31 as well
    monkeypatch.setenv("TRADING_WAREHOUSE", str(env.warehouse.path))
    monkeypatch.setenv("TRADING_DATA_DIR", str(tmp_path))
    capsys.readouterr()
    rc = main(["paper", "start", "--strategy", "ma_crossover", "--symbol", "coinbase:BTC/USD,yahoo:^GSPC",
               "--timeframe", "1d", "--json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["venues"] == ["coinbase", "yahoo"] and doc["symbols"] == ["BTC/USD", "^GSPC"]
    cfg = env.store.load(doc["session_id"])
    gspc_last = env.warehouse.series_range("yahoo", "^GSPC", "1d").last_ts
    assert cfg.request.end.date() == gspc_last.date() and (cfg.request.end - cfg.request.start).days <= 90
    rc = main(["paper", "start", "--strategy", "ma_crossover", "--symbol", "coinbase:BTC/USD,yahoo:^NOPE",
               "--timeframe", "1d"])
    assert rc == 2
    assert capsys.readouterr().err.strip() == ("trading: no ^NOPE on yahoo 1d bars to replay "
                                               "(trading ingest sample, or give --start/--end)")


def _ingest_btc_daily(env: PaperEnv, spike_at: datetime | None) -> None:
    """BTC/USD 1d 2016-2018 through the real validator: the sample's own spike on 2016-08-02 is
    quarantined, and so is a tripled close at ``spike_at``."""
    import polars as pl

    from trading_core.market_data.ingest import ingest_frame

    df = SampleProvider(SAMPLE_DIR).fetch_ohlcv("coinbase", "BTC/USD", "1d", datetime(2016, 1, 1, tzinfo=UTC),
                                                datetime(2019, 1, 1, tzinfo=UTC))
    if spike_at is not None:
        hit = pl.col("ts") == spike_at
        df = df.with_columns(*[pl.when(hit).then(pl.col(c) * 3).otherwise(pl.col(c)).alias(c)
                               for c in ("open", "high", "low", "close")])
    res = ingest_frame(env.warehouse, df, venue="coinbase", symbol="BTC/USD", timeframe="1d", source="test",
                       calendar="crypto", now=datetime(2020, 1, 1, tzinfo=UTC))
    assert res.quarantined == (1 if spike_at is None else 2), res


@pytest.mark.parametrize(("spike_at", "ok"), [(None, True), (datetime(2018, 3, 1, tzinfo=UTC), False)])
def test_preflight_refuses_a_quarantine_only_where_the_session_decides(
        tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, spike_at: datetime | None, ok: bool) -> None:
    env = PaperEnv(tmp_path, tmp_path_factory.getbasetemp())
    _ingest_btc_daily(env, spike_at)
    quality = next(c for c in preflight(SessionConfig(request=_mixed()), env.warehouse, data_dir=tmp_path,
                                        compile_engine=False) if c.name == "quality")
    assert quality.ok is ok, quality.detail
    if not ok:
        assert "quarantined 2 row(s) (1 in the session's window, 2018-03-01..2018-03-01)" in quality.detail


def test_missed_bars_counts_weekdays_for_equities_and_every_bar_for_crypto() -> None:
    from trading_core.paper.feeds import missed_bars

    hour = 3_600_000
    friday_20h = int(datetime(2018, 6, 1, 20, tzinfo=UTC).timestamp() * 1000)  # a Friday
    monday_9h = int(datetime(2018, 6, 4, 9, tzinfo=UTC).timestamp() * 1000)
    assert missed_bars(friday_20h, monday_9h, hour, "crypto") == 60.0  # 21:00 Fri .. 09:00 Mon
    assert missed_bars(friday_20h, monday_9h, hour, "equity") == 12.0  # the weekend does not count
    friday = int(datetime(2018, 6, 1, tzinfo=UTC).timestamp() * 1000)
    assert missed_bars(friday, monday_9h, 24 * hour, "equity") == 0.0  # Monday's daily bar is not due yet
    assert missed_bars(friday, monday_9h, 24 * hour, "crypto") == 2.375  # Sat 00:00 .. Mon 09:00
    assert missed_bars(monday_9h, monday_9h + hour // 2, hour, "crypto") == 0.0  # the bar has not closed


def test_live_preflight_does_not_age_an_equity_over_the_weekend(tmp_path: Path,
                                                                tmp_path_factory: pytest.TempPathFactory) -> None:
    env = PaperEnv(tmp_path, tmp_path_factory.getbasetemp())  # ^GSPC daily to Monday 2018-12-31
    cfg = SessionConfig(request=gspc_request(), feed="live")
    on = datetime(2019, 1, 7, 12, tzinfo=UTC)  # the Monday after: 4 weekday bars missed (Jan 1-4)
    data = next(c for c in preflight(cfg, env.warehouse, data_dir=tmp_path, stale_bars=5, now=on,
                                     compile_engine=False) if c.name == "data")
    assert data.ok, data.detail  # 1 + 4 weekday bars; by the wall clock it would be 8 bars old
    later = next(c for c in preflight(cfg, env.warehouse, data_dir=tmp_path, stale_bars=5,
                                      now=datetime(2019, 1, 9, 12, tzinfo=UTC), compile_engine=False)
                 if c.name == "data")
    assert not later.ok
    assert "is 7 bars old (limit 5, counted on its equity calendar): ingest first" in later.detail
