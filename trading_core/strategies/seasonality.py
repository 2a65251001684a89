"""Seasonality: long only while the calendar is inside configured periods.

Allow-lists (UTC, of each bar's OPEN time): ``days`` of the week, ``months`` of the year, ``hours``
of the day; a range may wrap (``nov-apr``); a list left empty allows everything, and a bar is "in season" when it passes all
three. Entry at the close of the first in-season bar, exit at the close of the first bar out of
season, so the position is held over the bars that FOLLOW in-season bars (decided at the close,
with no look-ahead).

``anticipate=true`` decides for the NEXT bar instead, at ``ts + one bar``, one bar being the
(lower) median spacing of the last ``SPACING_BARS`` bars up to this one (no decision on the first
bar, whose spacing is unknown): exact for 24/7 markets (crypto hours, days), wrong across weekends
and holidays of an exchange calendar (Friday's next daily bar is "Saturday"). It reads only the
clock of bars up to this one, never a later bar. Examples: ``days=mon,tue`` ``months=11,12,1-4`` ("sell in May") ``hours=13-20``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from numba import njit
from pydantic import Field, field_validator

from ._common import HoldState, StreamBase, hold
from .base import BoolArray, SingleVariantStrategy, StrategyParams, as_bars
from .streaming import BarSlice

SPACING_BARS = 64  # bar spacings whose median is "one bar" for anticipate

_DAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_MONTHS = {m: i + 1 for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))}


def _parse_list(v: Any, names: dict[str, int], lo: int, hi: int, what: str) -> tuple[int, ...]:
    """``"mon-wed,fri"`` / ``"nov-apr"`` / a list -> sorted unique ints within [lo, hi]."""
    if v is None or v == "":
        return ()
    items = v.split(",") if isinstance(v, str) else list(v)
    out: set[int] = set()

    def one(x: Any) -> int:
        s = str(x).strip().lower()[:3] if not str(x).strip().isdigit() else str(x).strip()
        n = names[s] if s in names else int(s) if s.isdigit() else None
        if n is None or not lo <= n <= hi:
            raise ValueError(f"{what} {x!r} is not a name or a number {lo}..{hi}")
        return n

    for item in items:
        text = str(item).strip()
        if not text:
            continue
        if "-" in text:
            a, b = (one(p) for p in text.split("-", 1))
            # A range that runs backwards wraps around: nov-apr, fri-mon, 22-2.
            out.update(range(a, b + 1) if a <= b else [*range(a, hi + 1), *range(lo, b + 1)])
        else:
            out.add(one(text))
    return tuple(sorted(out))


class SeasonalityParams(StrategyParams):
    """Allow-lists; empty means any. Names or numbers, ranges with '-', separated by commas."""

    days: tuple[int, ...] = Field(default=(), description="days of week, mon=0..sun=6, e.g. mon-wed,fri")
    months: tuple[int, ...] = Field(default=(), description="months 1..12 or names, e.g. nov-dec,1-4")
    hours: tuple[int, ...] = Field(default=(), description="UTC hours 0..23, e.g. 13-20")
    anticipate: bool = Field(default=False, description="decide for the next bar at ts + one bar")

    @field_validator("days", mode="before")
    @classmethod
    def _days(cls, v: Any) -> tuple[int, ...]:
        return _parse_list(v, _DAYS, 0, 6, "day")

    @field_validator("months", mode="before")
    @classmethod
    def _months(cls, v: Any) -> tuple[int, ...]:
        return _parse_list(v, _MONTHS, 1, 12, "month")

    @field_validator("hours", mode="before")
    @classmethod
    def _hours(cls, v: Any) -> tuple[int, ...]:
        return _parse_list(v, {}, 0, 23, "hour")


def in_season(ts_ms: np.ndarray, p: SeasonalityParams) -> BoolArray:
    """Bool (T,) for bar open times ``ts_ms`` (epoch ms, UTC)."""
    dt = ts_ms.astype("datetime64[ms]")
    days = dt.astype("datetime64[D]")
    ok = np.ones(ts_ms.shape, dtype=np.bool_)
    if p.days:
        ok &= np.isin((days.astype(np.int64) + 3) % 7, p.days)  # 1970-01-01 was a Thursday
    if p.months:
        ok &= np.isin(dt.astype("datetime64[M]").astype(np.int64) % 12 + 1, p.months)
    if p.hours:
        ok &= np.isin((dt - days).astype("timedelta64[h]").astype(np.int64), p.hours)
    return ok


class Seasonality(SingleVariantStrategy[SeasonalityParams]):
    """One variant; the same calendar mask for every symbol."""

    name: ClassVar[str] = "seasonality"
    Params: ClassVar[type[StrategyParams]] = SeasonalityParams

    def warmup_bars(self) -> int:
        return 1

    def signals(self, bars: Any) -> tuple[BoolArray, BoolArray]:
        b = as_bars(bars)
        if self.params.anticipate:
            nxt, known = _next_bar_ts_nb(np.ascontiguousarray(b.ts, dtype=np.int64), SPACING_BARS)
            season = in_season(nxt, self.params) & known
        else:
            season = in_season(b.ts, self.params)
        mask = np.repeat(season[:, None], b.n_symbols, axis=1)
        return hold(mask, ~mask, b.close)

    def stream(self, n_symbols: int) -> SeasonalityStream:
        return SeasonalityStream(self.params, n_symbols)


@njit(cache=True)
def _lower_median_nb(x: np.ndarray) -> np.int64:
    """The lower median of int64 values (exact; the order of ``x`` does not matter)."""
    return np.sort(x)[(x.shape[0] - 1) // 2]


@njit(cache=True)
def _next_bar_ts_nb(ts: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Per bar: ``ts + spacing`` (spacing: lower median of the last ``w`` diffs up to that bar)
    and whether a spacing is known (False on the first bar)."""
    n = ts.shape[0]
    nxt = ts.copy()
    known = np.zeros(n, np.bool_)
    for t in range(1, n):
        lo = max(1, t - w + 1)
        nxt[t] = ts[t] + _lower_median_nb(ts[lo:t + 1] - ts[lo - 1:t])
        known[t] = True
    return nxt, known


class SeasonalityStream(StreamBase):
    """The calendar of each bar's own ts (or ts + the median spacing so far) and ``HoldState``."""

    _arrays = ("diffs",)

    def __init__(self, params: SeasonalityParams, n_symbols: int) -> None:
        super().__init__(n_symbols)
        self.params = params
        self.prev_ts = 0
        self.diffs = np.zeros(SPACING_BARS, np.int64)  # ring of the last spacings
        self.hold = HoldState(n_symbols)

    def parts(self) -> dict[str, Any]:
        return {"hold": self.hold}

    def state(self) -> dict[str, Any]:
        return {**super().state(), "prev_ts": self.prev_ts}

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self.prev_ts = int(state["prev_ts"])

    def update(self, bar: BarSlice) -> tuple[BoolArray, BoolArray]:
        ts = int(bar.ts)
        if self.params.anticipate:
            known = self.t > 0
            if known:
                self.diffs[(self.t - 1) % SPACING_BARS] = ts - self.prev_ts
                step = _lower_median_nb(self.diffs[:min(self.t, SPACING_BARS)])
                ok = bool(in_season(np.array([ts + step], np.int64), self.params)[0])
            else:
                ok = False
        else:
            ok = bool(in_season(np.array([ts], np.int64), self.params)[0])
        self.prev_ts = ts
        self.t += 1
        mask = np.full(self.columns, ok)
        return self.hold.update_simple(mask, ~mask, bar.close)
