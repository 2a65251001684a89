"""Helpers shared by the provider tests (a uniquely named module: conftest is not importable)."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

FAR_PAST = datetime(1900, 1, 1, tzinfo=UTC)
FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)


class FakeClock:
    """A monotonic clock that only moves when the code under test sleeps."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.t = start
        self.start = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0, seconds
        self.sleeps.append(seconds)
        self.t += seconds

    @property
    def elapsed(self) -> float:
        return self.t - self.start


def ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def ccxt_rows(df: pl.DataFrame) -> list[list[float]]:
    """Canonical frame -> ccxt's ``[[ms, o, h, l, c, v], ...]``."""
    return [[ms(r[0]), r[1], r[2], r[3], r[4], r[5]] for r in df.iter_rows()]


def binance_klines(df: pl.DataFrame, tf_ms: int = 3_600_000) -> list[list[object]]:
    """Canonical frame -> Binance ``/api/v3/klines`` rows (strings for prices, as Binance sends)."""
    out: list[list[object]] = []
    for ts, o, h, lo, c, v in df.iter_rows():
        t = ms(ts)
        out.append([t, f"{o}", f"{h}", f"{lo}", f"{c}", f"{v}", t + tf_ms - 1, f"{v * c:.2f}", 100,
                    "0", "0", "0"])
    return out
