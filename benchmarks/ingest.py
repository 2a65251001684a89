"""Ingest throughput: bars per second from a Polars frame into the warehouse (not a test).

Measures, in a temporary directory:
  * write only:        ``Warehouse.write_report`` of an already-valid batch into an empty store
  * validate + write:  ``ingest_frame`` (the validation contract, then the same write)
  * nothing new:       ``ingest_series`` over a range the store already holds; it must be a cheap
                       metadata query with no fetch (the provider raises if it is called)
Target: >= 1M bars/s for the write. Run: ``.venv/bin/python benchmarks/ingest.py [--sizes 1e6 1e7]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from trading_core.market_data.ingest import ingest_frame, ingest_series
from trading_core.warehouse import Warehouse

START = datetime(2000, 1, 1, tzinfo=UTC)


def bars(n: int, seed: int = 1) -> pl.DataFrame:
    """``n`` valid hourly bars (a random walk; high/low bracket open/close)."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    open_ = np.concatenate([[close[0]], close[:-1]])
    spread = np.abs(rng.normal(0, 0.001, n)) * close
    ts = START.timestamp() * 1000 + np.arange(n, dtype=np.int64) * 3_600_000
    return pl.DataFrame({
        "ts": pl.Series(ts.astype(np.int64)).cast(pl.Datetime("ms", "UTC")),
        "open": open_, "high": np.maximum(open_, close) + spread,
        "low": np.minimum(open_, close) - spread, "close": close,
        "volume": rng.uniform(1, 100, n),
    })


@dataclass
class Report:
    accepted: pl.DataFrame
    dropped: pl.DataFrame = field(default_factory=pl.DataFrame)
    quarantined: pl.DataFrame = field(default_factory=pl.DataFrame)
    issues: list[object] = field(default_factory=list)
    batch_rejected: bool = False
    reject_reason: str | None = None
    rows_in: int = 0


class NoFetch:
    name = "no-fetch"

    def fetch_ohlcv(self, venue: str, symbol: str, timeframe: str, start: datetime,
                    end: datetime) -> pl.DataFrame:
        raise AssertionError("the stored range must not be fetched again")


def bench(n: int, tmp: Path) -> list[tuple[str, int, float]]:
    frame = bars(n)
    out: list[tuple[str, int, float]] = []

    wh = Warehouse(tmp / f"write-{n}.duckdb")
    wh.migrate()
    t0 = time.perf_counter()
    wh.write_report(venue="bench", symbol="BTC/USD", timeframe="1h", source="bench",
                    report=Report(accepted=frame, rows_in=n))
    out.append(("write only", n, time.perf_counter() - t0))

    try:
        import trading_core.market_data.validation  # noqa: F401
    except ModuleNotFoundError:
        out.append(("validate + write (validation module missing)", n, float("nan")))
    else:
        wh2 = Warehouse(tmp / f"validated-{n}.duckdb")
        wh2.migrate()
        now = START + timedelta(hours=n + 1)
        t0 = time.perf_counter()
        r = ingest_frame(wh2, frame, venue="bench", symbol="BTC/USD", timeframe="1h",
                         source="bench", now=now)
        out.append(("validate + write", n, time.perf_counter() - t0))
        assert r.inserted == n, r

    end = START + timedelta(hours=n)
    times = []
    for _ in range(20):
        t0 = time.perf_counter()
        r = ingest_series(wh, NoFetch(), venue="bench", symbol="BTC/USD", timeframe="1h",
                          start=START, end=end, now=end + timedelta(hours=1))
        times.append(time.perf_counter() - t0)
        assert r.inserted == 0
    out.append(("re-run, nothing new (median of 20)", n, statistics.median(times)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=float, nargs="+", default=[1e6, 1e7])
    args = ap.parse_args()
    print(f"{'case':<40} {'bars':>11} {'seconds':>9} {'bars/s':>13}")
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as d:
        for size in args.sizes:
            for case, n, s in bench(int(size), Path(d)):
                rate = f"{n / s:,.0f}" if s == s and not case.startswith("re-run") else "-"
                print(f"{case:<40} {n:>11,} {s:>9.3f} {rate:>13}", flush=True)


if __name__ == "__main__":
    main()
