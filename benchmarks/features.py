"""Benchmark: features + regimes for 20 symbols x 10 years of hourly bars (seeded random walks).

    .venv/bin/python benchmarks/features.py [--symbols 20] [--years 10] [--seed 0]

Prints the seconds spent (Numba compilation excluded by a warm-up call on a small series) and the
bars per second. The benchmark runs the in-memory part (compute_features + label_regimes), which
is what dominates update_features; warehouse I/O is measured by benchmarks/ingest.py.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

import numpy as np
import polars as pl

from trading_core.features import FeatureSpec, compute_features, label_regimes

HOUR_MS = 3_600_000


def random_walk(n: int, seed: int) -> pl.DataFrame:
    """Seeded geometric random walk with consistent OHLCV, hourly from 2015-01-01 UTC."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.006, n)))
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.002, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.002, n)))
    base = int(datetime(2015, 1, 1, tzinfo=UTC).timestamp() * 1000)
    ts = pl.Series("ts", base + HOUR_MS * np.arange(n, dtype=np.int64)).cast(pl.Datetime("ms"))
    return pl.DataFrame({"ts": ts.dt.replace_time_zone("UTC"), "open": open_, "high": high,
                         "low": low, "close": close, "volume": rng.uniform(1, 100, n)})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=20)
    ap.add_argument("--years", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    n = int(args.years * 365 * 24)
    spec = FeatureSpec(periods_per_year=8760.0)
    label_regimes(compute_features(random_walk(2000, 0), spec))  # JIT compile / cache load
    series = [random_walk(n, args.seed + i) for i in range(args.symbols)]
    t0 = time.perf_counter()
    t_feat = 0.0
    labelled = 0
    for bars in series:
        t1 = time.perf_counter()
        f = compute_features(bars, spec)
        t_feat += time.perf_counter() - t1
        labelled += label_regimes(f).height
    total = time.perf_counter() - t0
    bars_total = n * args.symbols
    print(f"features+regimes: {args.symbols} symbols x {n} hourly bars = {bars_total:,} bars")
    print(f"  features {t_feat:.2f} s, regimes {total - t_feat:.2f} s, total {total:.2f} s "
          f"-> {bars_total / total:,.0f} bars/s ({labelled:,} labelled bars)")


if __name__ == "__main__":
    main()
