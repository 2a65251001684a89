"""Where a session's bars come from: a replay of warehouse history, or live polling of a provider.

Both yield ``(bar_index, BarSlice, reconstructed)`` in time order, one timestamp across the
session's symbols, and never hold a database connection while they wait. ``bar_index`` counts
from the session's first traded bar, so a resumed run skips what the checkpoint already has.

- ``ReplayFeed``: the aligned bars of the request's range at ``speed`` bars per second (None =
  as fast as the loop goes). After a crash, the bars a paced replay would have traded while no
  run was alive are caught up at once and flagged ``reconstructed``.
- ``LiveFeed``: asks the provider for each symbol's closed bars every ``poll_s`` and passes them
  through the ingest validator (a rejected or quarantined bar never reaches the Trader). A bar
  whose close is older than the run's start was missed during downtime: ``reconstructed``.
  Nothing new for ``stale_bars`` bar lengths is reported (``stale``) -- the Trader's bar clock
  then sees the data gap and the system breaker acts on it.

Mixed calendars: both feeds step on the UNION of the symbols' bars (``aligned_bars``), so a
portfolio of BTC/USD (24/7) and ^GSPC (weekdays) trades BTC on a Saturday with ^GSPC closed (its
prices NaN). A live poll in which only some symbols have a new closed bar steps with the others
closed. The stale guard is per symbol and per venue calendar: a crypto symbol is expected every
bar; an equity symbol only on weekdays (``numpy.busday_count``: weekends are not stale; an
exchange holiday counts as one missed bar -- no holiday calendar is installed).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl

from ..strategies import Bars
from ..strategies.base import aligned_bars
from ..strategies.streaming import BarSlice

__all__ = ["FeedItem", "LiveFeed", "ReplayFeed", "Idle"]


@dataclass(frozen=True)
class FeedItem:
    index: int
    bar: BarSlice
    reconstructed: bool = False


@dataclass(frozen=True)
class Idle:
    """Nothing to trade yet: the feed waits ``wait_s`` (the runner heartbeats, checks requests)."""

    wait_s: float
    stale: bool = False
    note: str = ""


def _slice(bars: Bars, i: int) -> BarSlice:
    return BarSlice(int(bars.ts[i]), bars.open[i], bars.high[i], bars.low[i], bars.close[i], bars.volume[i])


class ReplayFeed:
    """Warehouse bars replayed; see the module docstring.

    A paced replay's schedule starts when the run starts: bar ``i`` is due ``(i - catch_up) /
    speed`` seconds later. ``catch_up`` is the first bar NOT missed: after a crash the runner
    passes how many bars the dead run's schedule would have traded since its last heartbeat,
    and those are replayed at once and flagged ``reconstructed``. A clean pause, stop or hand-over
    misses nothing (its schedule simply starts again)."""

    def __init__(self, bars: Bars, *, speed: float | None, catch_up: int = 0,
                 clock: Callable[[], float] = time.time) -> None:
        self.bars = bars
        self.speed = speed
        self.catch_up = catch_up
        self.clock = clock
        self.anchor = clock()

    @property
    def n_bars(self) -> int:
        return self.bars.n_bars

    def items(self, after: int) -> Iterator[FeedItem | Idle]:
        for i in range(after, self.bars.n_bars):
            reconstructed = i < self.catch_up
            if self.speed is not None and not reconstructed:
                due = self.anchor + (i - max(self.catch_up, after)) / self.speed
                now = self.clock()
                if due > now:
                    yield Idle(due - now)
            yield FeedItem(i, _slice(self.bars, i), reconstructed)


def missed_bars(last_open_ms: int, now_ms: int, bar_ms: int, calendar: str) -> float:
    """Bars a venue calendar expected between the close of the bar opened at ``last_open_ms`` and
    ``now_ms``: every bar for crypto; for equities weekday bars only (a weekend is a closed market,
    not stale data; session hours and holidays are not modelled). The live feed's stale guard and
    the live pre-flight's freshness check both count with it."""
    closed_at = last_open_ms + bar_ms
    if now_ms <= closed_at:
        return 0.0
    if calendar != "equity":
        return (now_ms - closed_at) / bar_ms
    a = np.datetime64(closed_at // 86_400_000, "D")
    b = np.datetime64(now_ms // 86_400_000, "D")
    if bar_ms >= 86_400_000:
        return float(np.busday_count(a, b))
    days = max(int((b - a).astype(np.int64)), 0)
    weekend = days - int(np.busday_count(a, b))
    return max((now_ms - closed_at - weekend * 86_400_000) / bar_ms, 0.0)


@dataclass
class LiveFeed:
    """A provider polled for closed bars; see the module docstring. ``provider`` is any
    ``OhlcvSource`` (ccxt, yfinance, or a test's fake of their HTTP APIs)."""

    provider: Any
    venue: str
    symbols: tuple[str, ...]
    timeframe: str
    calendar: str
    start_ms: int  # the first bar the session trades (activation)
    poll_s: float
    validation: Any
    stale_bars: int = 3
    clock: Callable[[], float] = time.time
    last_ts: int | None = None
    run_started: float = field(default_factory=time.time)
    rejected: list[str] = field(default_factory=list)  # what the validator refused (for the status)
    venues: tuple[str, ...] = ()  # one per symbol when they trade on different venues (() = all on venue)
    calendars: tuple[str, ...] = ()  # one per symbol: crypto | equity (() = all on calendar)
    symbol_last: dict[str, int] = field(default_factory=dict)  # each symbol's newest delivered bar

    def __post_init__(self) -> None:
        from ..timeframes import timeframe_ms

        self.bar_ms = timeframe_ms(self.timeframe)

    def venue_of(self, i: int) -> str:
        return self.venues[i] if self.venues else self.venue

    def calendar_of(self, i: int) -> str:
        return self.calendars[i] if self.calendars else self.calendar

    def missed_bars(self, now_s: float) -> dict[str, float]:
        """Bars each symbol's venue calendar expected since its newest delivered bar closed and
        that have not come: every bar for crypto, weekday bars for equities (a weekend is a
        closed market, not stale data)."""
        out: dict[str, float] = {}
        now_ms = int(now_s * 1000)
        for i, s in enumerate(self.symbols):
            last = self.symbol_last.get(s, self.last_ts)
            if last is None:
                continue
            out[s] = missed_bars(last, now_ms, self.bar_ms, self.calendar_of(i))
        return out

    def poll(self) -> Bars | None:
        """The closed bars after the last one delivered, aligned across the symbols."""
        from ..market_data.ingest import validate

        now = datetime.fromtimestamp(self.clock(), tz=UTC)
        first = self.start_ms if self.last_ts is None else self.last_ts + self.bar_ms
        start = datetime.fromtimestamp(first / 1000.0, tz=UTC)
        frames = []
        for i, s in enumerate(self.symbols):
            raw = self.provider.fetch_ohlcv(self.venue_of(i), s, self.timeframe, start, now)
            report = validate(raw, timeframe=self.timeframe, now=now, validation=self.validation,
                              calendar=self.calendar_of(i))  # type: ignore[arg-type]
            if report.batch_rejected:
                self.rejected.append(f"{s}: {report.reject_reason}")
                return None
            if report.quarantined.height:
                self.rejected.append(f"{s}: {report.quarantined.height} bar(s) quarantined")
            acc = report.accepted.select("ts", "open", "high", "low", "close", "volume")
            acc = acc.filter(pl.col("ts").dt.epoch("ms") >= first)
            frames.append(acc)
        if all(f.height == 0 for f in frames):
            return None
        # the union: a symbol with no new bar is closed at these steps (NaN prices)
        bars = aligned_bars(frames, self.symbols)
        return bars if bars.n_bars else None

    def items(self, after: int) -> Iterator[FeedItem | Idle]:
        """Bars from activation on; ``after`` bars were already traded by an earlier run."""
        index = 0
        while True:
            bars = self.poll()
            if bars is not None:
                for i in range(bars.n_bars):
                    ts = int(bars.ts[i])
                    if self.last_ts is not None and ts <= self.last_ts:
                        continue
                    self.last_ts = ts
                    for k, s in enumerate(self.symbols):
                        if bars.close[i, k] == bars.close[i, k]:
                            self.symbol_last[s] = ts
                    if index >= after:
                        closed_at = (ts + self.bar_ms) / 1000.0
                        yield FeedItem(index, _slice(bars, i), closed_at < self.run_started - self.poll_s)
                    index += 1
            now_s = self.clock()
            missed = self.missed_bars(now_s)
            late = sorted(s for s, m in missed.items() if m > self.stale_bars)
            stale = bool(late)
            note = ""
            if stale:
                parts = []
                for s in late:
                    last = self.symbol_last.get(s, self.last_ts)
                    age = now_s - ((last or 0) + self.bar_ms) / 1000.0
                    parts.append(f"{s}: no new bar for {age:.0f}s")
                note = "; ".join(parts) if len(self.symbols) > 1 else parts[0].split(": ", 1)[1]
            yield Idle(self.poll_s, stale=stale, note=note)


def load_replay_bars(request: Any, warehouse: Any) -> Bars:
    """The aligned bars of the request's range, as ``trading backtest`` reads them."""
    from ..backtest.runner import _align, _read_frames

    return _align(_read_frames(request, warehouse), request.universe)


def bars_revision(warehouse: Any, request: Any) -> int:
    """The highest bar revision in the request's range: stored with every event, so a replay
    after a provider restated bars is told apart from the original."""
    if not hasattr(warehouse, "max_revision"):
        return 0
    venues = tuple(getattr(request, "venues", ()) or ())
    if not venues:
        return int(warehouse.max_revision(request.venue, list(request.universe), request.timeframe,
                                          request.start, request.end))
    by_venue: dict[str, list[str]] = {}
    for v, s in zip(venues, request.universe, strict=True):
        by_venue.setdefault(v, []).append(s)
    return max(int(warehouse.max_revision(v, syms, request.timeframe, request.start, request.end))
               for v, syms in by_venue.items())


def live_start(now: float, timeframe: str) -> datetime:
    """A live session's first traded bar: the one that opens after the current bar closes."""
    from ..timeframes import timeframe_ms

    tf = timeframe_ms(timeframe)
    return datetime.fromtimestamp((int(now * 1000) // tf + 1) * tf / 1000.0, tz=UTC)
