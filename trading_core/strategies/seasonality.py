"""Seasonality: long only while the calendar is inside configured periods.

Allow-lists (UTC, of each bar's OPEN time): ``days`` of the week, ``months`` of the year, ``hours``
of the day; a range may wrap (``nov-apr``); a list left empty allows everything, and a bar is "in season" when it passes all
three. Entry at the close of the first in-season bar, exit at the close of the first bar out of
season, so the position is held over the bars that FOLLOW in-season bars (decided at the close,
with no look-ahead).

``anticipate=true`` decides for the NEXT bar instead, at ``ts + one bar`` (the median bar
spacing): exact for 24/7 markets (crypto hours, days), wrong across weekends and holidays of an
exchange calendar (Friday's next daily bar is "Saturday"). It reads only the clock, never a later
bar. Examples: ``days=mon,tue`` ``months=11,12,1-4`` ("sell in May") ``hours=13-20``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import Field, field_validator

from ._common import hold
from .base import BoolArray, SingleVariantStrategy, StrategyParams, as_bars

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
        ts = b.ts
        if self.params.anticipate and ts.shape[0] > 1:
            ts = ts + np.int64(np.median(np.diff(ts)))
        mask = np.repeat(in_season(ts, self.params)[:, None], b.n_symbols, axis=1)
        return hold(mask, ~mask, b.close)
