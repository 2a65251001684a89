"""Ingest throughput: bars per second from a Polars frame into the warehouse (not a test).

Measures, in a temporary directory:
  * write only:        ``Warehouse.write_report`` of an already-valid batch into an empty store
  * validate + write:  ``ingest_frame`` (the validation contract, then the same write)
  * nothing new:       ``ingest_series`` over a range the store already holds; it must be a cheap
                       metadata query with no fetch (the provider raises if it is called)
Target: >= 1M bars/s for the write. Run: ``.venv/bin/python benchmarks/ingest.py [--sizes 1e6 1e7]``.

``--file-mb 100 1000 [--batch-rows N]``: peak memory (max RSS from ``/usr/bin/time -v``) and wall
time of ``trading ingest file`` on generated 1-minute CSV files of about that many MB, each into a
fresh warehouse. The file's text is read in batches, so memory follows the typed rows, not the text.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
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


def write_csv(path: Path, mb: float) -> int:
    """About ``mb`` MB of valid 1-minute bars as CSV (ISO stamps, 6 decimals), in 1M-row pieces."""
    per_row = 75  # bytes, measured on this format
    n = int(mb * 1e6 / per_row)
    done = 0
    with open(path, "wb") as fh:
        while done < n:
            k = min(1_000_000, n - done)
            f = bars(k, seed=done + 1).with_columns(
                ts=pl.col("ts").dt.offset_by(f"{done * 60 - done * 3600}s").dt.epoch("ms").cast(pl.Int64),
                volume=pl.col("volume").round(6))
            f = f.with_columns(ts=(pl.lit(int(START.timestamp() * 1000)) + (pl.int_range(done, done + k) * 60_000))
                               .cast(pl.Datetime("ms", "UTC")))
            f.write_csv(fh, include_header=done == 0, float_precision=6, datetime_format="%Y-%m-%dT%H:%M:%SZ")
            done += k
    return n


def file_memory(sizes_mb: list[float], batch_rows: int | None) -> None:
    """Max RSS and wall of ``trading ingest file`` per generated CSV size."""
    trading = str(Path(sys.executable).parent / "trading")
    print(f"{'CSV':>10} {'rows':>12} {'max RSS':>10} {'wall':>8}  (trading ingest file, 1m bars)")
    with tempfile.TemporaryDirectory(prefix="bench-ingest-file-") as d:
        for mb in sizes_mb:
            src = Path(d) / f"bars-{mb:g}mb.csv"
            rows = write_csv(src, mb)
            env = {**os.environ, "TRADING_WAREHOUSE": str(Path(d) / f"wh-{mb:g}.duckdb")}
            cmd = ["/usr/bin/time", "-v", trading, "ingest", "file", str(src), "--symbol", "BTC/USD",
                   "--venue", "coinbase", "--timeframe", "1m"]
            if batch_rows:
                cmd += ["--batch-rows", str(batch_rows)]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            wall = time.perf_counter() - t0
            rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
            if proc.returncode != 0 or rss is None:
                raise SystemExit(f"exit {proc.returncode}: {proc.stdout[-500:]}{proc.stderr[-2000:]}")
            size = src.stat().st_size / 1e6
            print(f"{size:>8.0f}MB {rows:>12,} {int(rss.group(1)) / 1024:>8.0f}MB {wall:>7.1f}s", flush=True)
            src.unlink()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=float, nargs="+", default=[1e6, 1e7])
    ap.add_argument("--file-mb", type=float, nargs="+", help="measure `trading ingest file` on CSVs of these sizes")
    ap.add_argument("--batch-rows", type=int, default=None)
    args = ap.parse_args()
    if args.file_mb:
        file_memory(args.file_mb, args.batch_rows)
        return
    print(f"{'case':<40} {'bars':>11} {'seconds':>9} {'bars/s':>13}")
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as d:
        for size in args.sizes:
            for case, n, s in bench(int(size), Path(d)):
                rate = f"{n / s:,.0f}" if s == s and not case.startswith("re-run") else "-"
                print(f"{case:<40} {n:>11,} {s:>9.3f} {rate:>13}", flush=True)


if __name__ == "__main__":
    main()
