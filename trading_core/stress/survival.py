"""The survival report of one equity curve through one window, judged against configured limits.

Every figure comes from ``analytics.metrics`` (drawdown and its dates, time to recover, returns)
so a stress report and a backtest report never disagree on what a drawdown is.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from ..analytics.metrics import compute_metrics
from .config import SurvivalLimits

__all__ = ["Survival", "survival_report", "worst_day"]


@dataclass(frozen=True)
class Survival:
    """What a strategy went through in a window; ``survived`` None when there was nothing to judge."""

    bars: int
    start: datetime | None
    end: datetime | None
    initial_equity: float
    final_equity: float
    total_return: float
    max_drawdown: float
    drawdown_peak: datetime | None
    drawdown_trough: datetime | None
    drawdown_recovery: datetime | None
    time_to_recover_days: float | None
    worst_day: float | None
    worst_day_date: str | None
    breaker_trips: int
    trades: int
    survived: bool | None
    failed_because: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for k, v in out.items():
            if isinstance(v, datetime):
                out[k] = v.isoformat()
        out["failed_because"] = list(self.failed_because)
        return out


def worst_day(ts_ms: np.ndarray, equity: np.ndarray) -> tuple[float | None, str | None]:
    """The worst UTC-day return of the curve (last equity of each day against the day before's);
    hourly bars are grouped into days first, so a crypto curve and a daily one are comparable."""
    if equity.size < 2:
        return None, None
    day = (np.asarray(ts_ms, np.int64) // 86_400_000)
    last = np.r_[np.flatnonzero(np.diff(day)), day.size - 1]  # the last bar of each day
    closes = np.r_[equity[0], equity[last]]
    with np.errstate(divide="ignore", invalid="ignore"):
        r = closes[1:] / closes[:-1] - 1.0
    if not np.isfinite(r).any():
        return None, None
    i = int(np.nanargmin(np.where(np.isfinite(r), r, np.nan)))
    return float(r[i]), datetime.fromtimestamp(int(day[last[i]]) * 86_400, tz=UTC).date().isoformat()


def survival_report(ts_ms: np.ndarray, equity: np.ndarray, *, timeframe: str, calendar: str,
                    limits: SurvivalLimits, breaker_trips: int = 0, trades: int = 0) -> Survival:
    """Judge one curve: failed when the drawdown breaches ``-limits.max_drawdown`` or the final
    equity keeps less than ``limits.min_final_equity`` of the first."""
    m = compute_metrics(equity, timeframe=timeframe, calendar=calendar, ts=ts_ms)
    wd, wd_date = worst_day(ts_ms, np.asarray(equity, np.float64))
    why: list[str] = []
    if m.max_drawdown < -limits.max_drawdown:
        why.append(f"max drawdown {m.max_drawdown:.1%} beyond the limit -{limits.max_drawdown:.0%}")
    if m.initial_equity > 0 and m.final_equity / m.initial_equity < limits.min_final_equity:
        why.append(f"final equity {m.final_equity / m.initial_equity:.1%} of start, below "
                   f"{limits.min_final_equity:.0%}")
    return Survival(
        bars=m.bars, start=m.start, end=m.end, initial_equity=m.initial_equity, final_equity=m.final_equity,
        total_return=m.total_return, max_drawdown=m.max_drawdown, drawdown_peak=m.max_drawdown_peak,
        drawdown_trough=m.max_drawdown_trough, drawdown_recovery=m.max_drawdown_recovery,
        time_to_recover_days=m.time_to_recover_days, worst_day=wd, worst_day_date=wd_date,
        breaker_trips=int(breaker_trips), trades=int(trades), survived=not why, failed_because=tuple(why))
