"""Paper sessions on a mixed portfolio (coinbase BTC/USD 24/7 + yahoo ^GSPC weekdays, daily bars):
a replay steps on the union of their bars and trades BTC on weekends but ^GSPC never; the live
feed's stale guard is per symbol and per venue calendar (an equity's weekend is not stale data)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from paper_support import SAMPLE_DIR, PaperEnv, accepted_report, gspc_request

from trading_core.backtest import run_backtest
from trading_core.config import load_config
from trading_core.market_data.providers.sample import SampleProvider
from trading_core.paper.feeds import FeedItem, Idle, LiveFeed

DAY = 86_400


@pytest.fixture
def env(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> PaperEnv:
    e = PaperEnv(tmp_path, tmp_path_factory.getbasetemp())
    df = SampleProvider(SAMPLE_DIR).fetch_ohlcv("coinbase", "BTC/USD", "1d", datetime(2016, 1, 1, tzinfo=UTC),
                                                datetime(2019, 1, 1, tzinfo=UTC))
    e.warehouse.write_report(venue="coinbase", symbol="BTC/USD", timeframe="1d", source="sample",
                             report=accepted_report(df))
    return e


def _mixed(**kw: Any) -> Any:
    fields: dict[str, Any] = dict(symbol="BTC/USD", venue="coinbase", symbols=("BTC/USD", "^GSPC"),
                                  venues=("coinbase", "yahoo"), calendar=None, params={"fast": 5, "slow": 20},
                                  start=datetime(2017, 1, 1, tzinfo=UTC), end=datetime(2018, 7, 1, tzinfo=UTC),
                                  warmup_bars=30)
    fields.update(kw)
    return gspc_request(**fields)


def _weekday(ms: int) -> int:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).weekday()


def test_a_mixed_replay_session_trades_btc_on_weekends_and_gspc_only_on_weekdays(env: PaperEnv) -> None:
    req = _mixed()
    sid = env.session(req)
    out = env.run(sid)
    assert out.state == "completed"
    with env.ledger.connect(read_only=True) as con:
        fills = env.ledger.events(con, sid, ["OrderFilled"])
        equity = env.ledger.equity(con, sid)
    btc = fills.filter(pl.col("symbol") == "BTC/USD")["bar_ts"].to_list()
    spx = fills.filter(pl.col("symbol") == "^GSPC")["bar_ts"].to_list()
    assert spx and all(_weekday(t) < 5 for t in spx)
    assert any(_weekday(t) >= 5 for t in btc)
    # one equity row per union bar (every day: BTC's calendar), never NaN, gross valued at last closes
    days = (req.end - req.start).days
    assert out.bars_processed == equity.height == days
    assert equity["equity"].is_finite().all() and equity["gross"].is_finite().all()
    # the same request as a backtest: the same fills on the same bars
    bt = run_backtest(req, env.warehouse)
    names = np.array(bt.symbols)
    want = sorted(zip(bt.fills["ts"].tolist(), names[bt.fills["symbol"]].tolist(), strict=True))
    got = sorted(zip(fills["bar_ts"].to_list(), fills["symbol"].to_list(), strict=True))
    assert got == want


class _Provider:
    """The sample history as a live provider: bars up to ``now`` (the feed's clock)."""

    def __init__(self) -> None:
        self.sample = SampleProvider(SAMPLE_DIR)
        self.calls: list[tuple[str, str]] = []

    def fetch_ohlcv(self, venue: str, symbol: str, timeframe: str, start: datetime, end: datetime) -> pl.DataFrame:
        self.calls.append((venue, symbol))
        df = self.sample.fetch_ohlcv(venue, symbol, timeframe, start, end)
        return df.filter(pl.col("ts") + pl.duration(days=1) <= end)  # closed bars only


def _feed(now: list[float], start: datetime) -> LiveFeed:
    return LiveFeed(_Provider(), "coinbase", ("BTC/USD", "^GSPC"), "1d", "crypto",
                    int(start.timestamp() * 1000), 60.0, load_config().market_data.validation, stale_bars=1,
                    clock=lambda: now[0], run_started=now[0], venues=("coinbase", "yahoo"),
                    calendars=("crypto", "equity"))


def _drain(feed: LiveFeed) -> tuple[list[FeedItem], Idle]:
    items: list[FeedItem] = []
    for it in feed.items(0):
        if isinstance(it, Idle):
            return items, it
        items.append(it)
    raise AssertionError("the feed never idled")


def test_live_feed_steps_on_the_union_and_polls_each_venue() -> None:
    now = [datetime(2018, 6, 11, 0, 0, 5, tzinfo=UTC).timestamp()]  # Monday just after midnight
    feed = _feed(now, datetime(2018, 6, 4, tzinfo=UTC))  # from Monday 06-04
    items, idle = _drain(feed)
    assert [_weekday(it.bar.ts) for it in items] == [0, 1, 2, 3, 4, 5, 6]  # Mon..Sun: the union
    gspc = [float(it.bar.close[1]) for it in items]
    assert all(np.isfinite(gspc[:5])) and all(np.isnan(gspc[5:]))  # ^GSPC closed Sat and Sun
    assert {("coinbase", "BTC/USD"), ("yahoo", "^GSPC")} <= set(feed.provider.calls)
    assert not idle.stale


def test_missed_bars_an_equity_is_not_stale_over_a_weekend_while_crypto_is() -> None:
    fri = datetime(2018, 6, 8, tzinfo=UTC)
    now = [(fri.timestamp() + DAY)]  # Saturday 00:00: Friday's daily bar has just closed
    feed = _feed(now, datetime(2018, 6, 4, tzinfo=UTC))
    # the provider stops on Friday for both (a crypto outage over the weekend)
    feed.provider.fetch_ohlcv = _cut(feed.provider.fetch_ohlcv, fri)  # type: ignore[method-assign]
    items, idle = _drain(feed)
    assert _weekday(items[-1].bar.ts) == 4 and not idle.stale
    now[0] = fri.timestamp() + 3 * DAY + 3600  # Monday 01:00: Sat and Sun bars of BTC have not come
    missed = feed.missed_bars(now[0])
    assert missed["^GSPC"] == 0.0  # its market was closed: nothing expected
    assert missed["BTC/USD"] == pytest.approx(2 + 1 / 24)
    _, idle = _drain(feed)
    assert idle.stale and idle.note.startswith("BTC/USD: no new bar for ") and "^GSPC" not in idle.note
    now[0] = fri.timestamp() + 5 * DAY + 3600  # Wednesday 01:00: Monday and Tuesday of ^GSPC are missing too
    missed = feed.missed_bars(now[0])
    assert missed["^GSPC"] == 2.0 and missed["BTC/USD"] == pytest.approx(4 + 1 / 24)
    _, idle = _drain(feed)
    assert "BTC/USD: no new bar for " in idle.note and "^GSPC: no new bar for " in idle.note


def _cut(fetch: Any, last: datetime) -> Any:
    def f(venue: str, symbol: str, timeframe: str, start: datetime, end: datetime) -> pl.DataFrame:
        return fetch(venue, symbol, timeframe, start, end).filter(pl.col("ts") <= last)

    return f


def test_the_mixed_template_loads_and_runs_to_completion(env: PaperEnv, capsys: pytest.CaptureFixture[str]) -> None:
    import json
    import os
    import shutil

    from trading_core.cli import main
    from trading_core.paper.templates import load_template

    doc = load_template("btc-spx-mixed")
    assert doc["symbol"] == "coinbase:BTC/USD,yahoo:^GSPC" and doc["timeframe"] == "1d"
    assert doc["feed"] == "replay" and 5 <= float(doc["speed"]) <= 30  # 2017-2018 (730 bars) in about a minute
    shutil.copyfile(env.warehouse.path, Path(os.environ["TRADING_DATA_DIR"]) / "warehouse.duckdb")
    capsys.readouterr()
    rc = main(["paper", "start", "--template", "btc-spx-mixed", "--speed", "max", "--foreground", "--json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    res = json.loads(out)
    assert res["outcome"]["state"] == "completed" and res["outcome"]["bars_processed"] == 730
    assert res["symbols"] == ["BTC/USD", "^GSPC"] and res["venue"] == "coinbase"
    fills = json.loads(_capture(capsys, ["paper", "export", res["session_id"], "--format", "json",
                                         "--kinds", "OrderFilled"]))
    assert {r["symbol"] for r in fills} == {"BTC/USD", "^GSPC"}
    assert all(_weekday(r["bar_ts"]) < 5 for r in fills if r["symbol"] == "^GSPC")


def _capture(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    from trading_core.cli import main

    capsys.readouterr()
    assert main(argv) == 0
    return capsys.readouterr().out


def test_a_mixed_session_paused_on_a_weekend_resumes_to_the_uninterrupted_ledger(
        env: PaperEnv, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The checkpoint holds the per-symbol streams (``OwnBarsStream``) and the last traded closes
    of a closed symbol: a pause on a Saturday and a resume give the ledger of one run."""
    from paper_support import FakeTime

    req = _mixed(end=datetime(2017, 5, 1, tzinfo=UTC))
    sid = env.session(req, session_id="ps-0000000000aa", speed=1000, snapshot_every=25)
    ref = PaperEnv(tmp_path_factory.mktemp("ref"), env.cache_root)
    ref.warehouse.write_report(venue="coinbase", symbol="BTC/USD", timeframe="1d", source="sample",
                               report=accepted_report(SampleProvider(SAMPLE_DIR).fetch_ohlcv(
                                   "coinbase", "BTC/USD", "1d", datetime(2016, 1, 1, tzinfo=UTC),
                                   datetime(2019, 1, 1, tzinfo=UTC))))
    ref.session(req, session_id=sid, speed=1000, snapshot_every=25)
    assert ref.run(sid).state == "completed"
    ft = FakeTime()

    def pause_on_a_saturday() -> None:
        st = env.store.status(sid) or {}
        last = st.get("last_bar_ts")
        if env.store.desired(sid) == "running" and int(st.get("bars_processed") or 0) >= 50 and last \
                and datetime.fromisoformat(str(last)).weekday() == 5:
            env.store.request(sid, "pause")

    ft.hooks.append(pause_on_a_saturday)
    first = env.run(sid, clock=ft.clock, sleep=ft.sleep)
    assert first.state == "paused" and 50 <= first.bars_processed < (req.end - req.start).days
    paused_at = datetime.fromisoformat(str((env.store.status(sid) or {})["last_bar_ts"]))
    assert paused_at.weekday() >= 5  # checkpointed with ^GSPC closed
    env.store.request(sid, "resume")
    assert env.run(sid, "run-2").state == "completed"
    assert env.ledger_hash(sid) == ref.ledger_hash(sid)
