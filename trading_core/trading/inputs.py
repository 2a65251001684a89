"""The Trader's market inputs, each updated once per bar from that bar and what came before.

Why incremental: a paper session sees one bar at a time, and a backtest replaying stored bars
must see exactly what the session would have seen, so nothing here may look at a later bar.
Every tracker carries a small state (``state()``/``load_state()``) and is seeded by feeding it
the history before the first traded bar. The arithmetic is that of the batch functions the
rest of the platform uses (``features.indicators``, ``risk.orders.average_daily_volume``,
``risk.market_filter``), so a replay gives the batch values bit for bit (tests pin it) -- except
ADV, whose day totals add bars one by one where polars sums a day at once: equal for whole-unit
volumes, within 1e-13 relative otherwise.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..features import streaming as fs

__all__ = ["BarClock", "AtrTracker", "AdvTracker", "VolPercentileTracker", "VixAsOf", "ReturnWindow",
           "DAY_MS"]

DAY_MS = 86_400_000


class BarClock:
    """Bars missing before each new bar (0 = on time), from the bar timestamps alone.

    Crypto trades around the clock, so any gap counts; an equity day bar counts missing weekdays
    only (a holiday is one); intraday equity bars count gaps within a day, not overnight.
    """

    def __init__(self, bar_ms: int, calendar: str) -> None:
        self.bar_ms = int(bar_ms)
        self.calendar = calendar
        self.last_ts: int | None = None

    def gap(self, ts: int) -> float:
        """The gap before ``ts``; advances the clock."""
        last, self.last_ts = self.last_ts, int(ts)
        if last is None:
            return 0.0
        if self.calendar != "equity":
            return max((ts - last) / self.bar_ms - 1.0, 0.0)
        if self.bar_ms >= DAY_MS:
            a = np.datetime64(last // DAY_MS, "D")
            b = np.datetime64(ts // DAY_MS, "D")
            return float(max(int(np.busday_count(a, b)) - 1, 0))
        if ts // DAY_MS == last // DAY_MS:
            return max((ts - last) / self.bar_ms - 1.0, 0.0)
        return 0.0

    def state(self) -> dict[str, Any]:
        return {"last_ts": self.last_ts}

    def load_state(self, s: dict[str, Any]) -> None:
        self.last_ts = s["last_ts"]


class AtrTracker:
    """Wilder's ATR per symbol (``features.indicators.atr``); NaN until ``period`` bars."""

    def __init__(self, n_symbols: int, period: int) -> None:
        self._atr = fs.AtrState(n_symbols, n=period)
        self.value = np.full(n_symbols, np.nan)

    def update(self, high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
        self.value = np.asarray(self._atr.update(high, low, close), dtype=np.float64)
        return self.value

    def state(self) -> dict[str, Any]:
        return {"atr": self._atr.state(), "value": self.value.copy()}

    def load_state(self, s: dict[str, Any]) -> None:
        self._atr.load_state(s["atr"])
        self.value = np.array(s["value"], dtype=np.float64)


class VolPercentileTracker:
    """Realised-volatility percentile (0..1) per symbol, the market breaker's input: the same
    ``rolling_percentile(realised_vol(close, window), rank_window)`` the regime labels use."""

    def __init__(self, n_symbols: int, window: int = 20, rank_window: int = 252) -> None:
        self._vol = fs.RealisedVolState(n_symbols, n=window)
        self._pct = fs.RollingPercentileState(n_symbols, n=rank_window)
        self.value = np.full(n_symbols, np.nan)

    def update(self, close: np.ndarray) -> np.ndarray:
        v = self._vol.update(close)
        self.value = np.asarray(self._pct.update(v), dtype=np.float64)
        return self.value

    def median(self) -> float:
        """The median percentile of the symbols that have one (NaN: none yet)."""
        if self.value.shape[0] == 1:
            return float(self.value[0])
        v = self.value[np.isfinite(self.value)]
        return float(np.median(v)) if v.shape[0] else math.nan

    def state(self) -> dict[str, Any]:
        return {"vol": self._vol.state(), "pct": self._pct.state(), "value": self.value.copy()}

    def load_state(self, s: dict[str, Any]) -> None:
        self._vol.load_state(s["vol"])
        self._pct.load_state(s["pct"])
        self.value = np.array(s["value"], dtype=np.float64)


class AdvTracker:
    """Average daily volume known on each UTC day: the mean volume of the ``window_days`` days
    with bars before it (``risk.orders.average_daily_volume``; the day's own volume is excluded
    because it is not complete when that day's orders are checked).

    On a union calendar a symbol's volume is NaN where its market is closed; a day without one
    bar of that symbol is not one of ITS days (an equity's weekend does not dilute its ADV)."""

    def __init__(self, n_symbols: int, window_days: int = 20) -> None:
        self.window = int(window_days)
        self.day: int | None = None
        self.today = np.zeros(n_symbols)
        self.seen = np.zeros(n_symbols, np.bool_)  # symbols with a bar on ``day``
        self.days = np.zeros((0, n_symbols))  # completed days' volumes, oldest first (NaN: no bar)
        self.value = np.full(n_symbols, np.nan)

    def update(self, ts: int, volume: np.ndarray) -> np.ndarray:
        """Fold bar ``ts``'s volume in; returns the ADV in force for that bar's day."""
        day = int(ts) // DAY_MS
        v = np.asarray(volume, dtype=np.float64)
        if self.day is None:
            self.day = day
        elif day != self.day:
            row = self.today if self.seen.all() else np.where(self.seen, self.today, np.nan)
            self.days = np.vstack([self.days, row[None, :]])[-self._keep():]
            self.today = np.zeros_like(self.today)
            self.seen = np.zeros_like(self.seen)
            self.day = day
            self.value = self._mean()
        if np.isnan(v).any():
            ok = ~np.isnan(v)
            self.today = self.today + np.where(ok, v, 0.0)
            self.seen = self.seen | ok
        else:
            self.today = self.today + v
            self.seen[:] = True
        return self.value

    def _keep(self) -> int:
        """Completed days kept: ``window`` while every symbol traded every day (the exact
        original arithmetic), more once a closed day appears so each symbol still finds its own."""
        if self.days.shape[0] and np.isnan(self.days).any():
            return 3 * self.window + 7
        return self.window if not (~self.seen).any() else 3 * self.window + 7

    def _mean(self) -> np.ndarray:
        d = self.days
        if not np.isnan(d).any():
            return d[-self.window:].mean(axis=0)  # type: ignore[no-any-return]
        out = np.full(d.shape[1], np.nan)
        for s in range(d.shape[1]):
            col = d[:, s]
            col = col[~np.isnan(col)][-self.window:]
            if col.shape[0]:
                out[s] = col.mean()
        return out

    def state(self) -> dict[str, Any]:
        return {"day": self.day, "today": self.today.copy(), "days": self.days.copy(), "value": self.value.copy(),
                "seen": self.seen.copy()}

    def load_state(self, s: dict[str, Any]) -> None:
        self.day = s["day"]
        self.today = np.array(s["today"], dtype=np.float64)
        self.days = np.array(s["days"], dtype=np.float64).reshape(-1, self.today.shape[0])
        self.value = np.array(s["value"], dtype=np.float64)
        self.seen = (np.array(s["seen"], dtype=np.bool_) if "seen" in s
                     else np.ones(self.today.shape[0], np.bool_))


class VixAsOf:
    """The newest VIX close known at a decision instant (a daily bar's close is known at its end,
    ts + 1 bar), its age, and the market filter's verdict (``risk.market_filter``).

    The VIX bars are handed in sorted by time (``extend`` adds newer ones on a live feed); a
    lookup only ever moves forward, so it costs O(1) per bar and cannot see a later close.
    """

    def __init__(self, vix_ts: np.ndarray | None = None, vix_close: np.ndarray | None = None, *,
                 bar_ms: int = DAY_MS) -> None:
        self.bar_ms = int(bar_ms)
        self.known_at = np.zeros(0, np.int64)
        self.close = np.zeros(0, np.float64)
        self.i = -1  # index of the newest known close
        if vix_ts is not None and vix_close is not None:
            self.extend(vix_ts, vix_close)

    @property
    def loaded(self) -> int:
        return int(self.close.shape[0])

    def extend(self, vix_ts: np.ndarray, vix_close: np.ndarray) -> None:
        ts = np.asarray(vix_ts, dtype=np.int64)
        c = np.asarray(vix_close, dtype=np.float64)
        ok = np.isfinite(c)
        known = ts[ok] + self.bar_ms
        if self.known_at.shape[0]:
            newer = known > self.known_at[-1]
            known, c = known[newer], c[ok][newer]
        else:
            c = c[ok]
        order = np.argsort(known, kind="stable")
        self.known_at = np.concatenate([self.known_at, known[order]])
        self.close = np.concatenate([self.close, c[order]])

    def at(self, decision_ms: int) -> tuple[float, int | None]:
        """(close, known_at ms) of the newest close known at ``decision_ms`` (NaN, None: none)."""
        k = self.known_at
        i = self.i
        while i + 1 < k.shape[0] and k[i + 1] <= decision_ms:
            i += 1
        self.i = i
        if i < 0:
            return math.nan, None
        return float(self.close[i]), int(k[i])

    def state(self) -> dict[str, Any]:
        """Where the lookup stands, as the instant the newest used close became known: a restore
        may load the VIX history over another window (a session reloads it from the warehouse)."""
        return {"known_at": None if self.i < 0 else int(self.known_at[self.i])}

    def load_state(self, s: dict[str, Any]) -> None:
        k = s["known_at"]
        self.i = -1 if k is None else int(np.searchsorted(self.known_at, k, side="right")) - 1


class ReturnWindow:
    """The last ``size`` bars' log returns per symbol (bar 0 has none), for correlations and
    mean-variance weights; ``last(n)`` is the newest ``n`` rows, oldest first."""

    def __init__(self, n_symbols: int, size: int) -> None:
        self.size = max(int(size), 1)
        self.buf = np.zeros((self.size, n_symbols))
        self.count = 0
        self.prev: np.ndarray | None = None

    def update(self, close: np.ndarray) -> None:
        c = np.asarray(close, dtype=np.float64)
        if self.prev is not None:
            with np.errstate(all="ignore"):
                r = np.log(c) - np.log(self.prev)
            self.buf[self.count % self.size] = r
            self.count += 1
        self.prev = c.copy()

    def last(self, n: int) -> np.ndarray:
        n = min(int(n), self.count, self.size)
        if n <= 0:
            return self.buf[:0]
        idx = (np.arange(self.count - n, self.count)) % self.size
        return self.buf[idx]

    def state(self) -> dict[str, Any]:
        return {"buf": self.buf.copy(), "count": self.count, "prev": None if self.prev is None else self.prev.copy()}

    def load_state(self, s: dict[str, Any]) -> None:
        self.buf = np.array(s["buf"], dtype=np.float64)
        self.count = int(s["count"])
        self.prev = None if s["prev"] is None else np.array(s["prev"], dtype=np.float64)
