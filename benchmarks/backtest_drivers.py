"""Benchmark: the two drivers of one engine in ``trading backtest``, on the real sample history.

    .venv/bin/python benchmarks/backtest_drivers.py [--repeat 3]

For each series (Coinbase BTC/USD hourly 2017-07..2019-10, S&P 500 daily 1999-2018) it times
``run_backtest`` of ``ma_crossover`` three ways, compilation excluded by a warm-up run:

* ``batch``: no risk layer -> one ``simulate_signals`` kernel call (the reference);
* ``stepped, quiet``: the bar-by-bar driver with every risk rule configured not to fire
  (same ledger as batch: the price of stepping alone);
* ``stepped, default risk``: the documented default ``RiskConfig()`` (VIX filter, order checks,
  four breaker levels), what ``trading backtest --risk`` runs with the shipped defaults.

It prints seconds (best of --repeat), microseconds per bar and the ratio to the batch reference
measured in the same run. Persistence is off (``persist=False``): warehouse writes are timed by
benchmarks/ingest.py.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from sample_store import QUIET, SERIES, best_of, sample_warehouse

from trading_core.backtest import BacktestRequest
from trading_core.risk import RiskConfig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wh = sample_warehouse(Path(tmp) / "bench.duckdb")
        for venue, symbol, tf in SERIES:
            frame = wh.read_bars(venue, symbol, tf)
            start, end = frame["ts"].min(), frame["ts"].max()
            base = dict(strategy="ma_crossover", params={"fast": 10, "slow": 50}, symbol=symbol, venue=venue,
                        timeframe=tf, start=start, end=end, persist=False)
            ref = None
            for label, risk in (("batch", None), ("stepped, quiet", QUIET), ("stepped, default risk", RiskConfig())):
                secs, bars, driver = best_of(BacktestRequest(**base, risk=risk), wh, args.repeat)  # type: ignore[arg-type]
                ref = ref or secs
                print(f"{symbol:8s} {tf:3s} {bars:6d} bars  {label:22s} ({driver:7s}) {secs:7.3f} s  "
                      f"{secs / bars * 1e6:7.1f} us/bar  x{secs / ref:6.1f} of batch")


if __name__ == "__main__":
    main()
