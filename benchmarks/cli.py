"""Benchmark: wall time of the ``trading`` command's fast paths, and of a first backtest.

    .venv/bin/python benchmarks/cli.py [--repeat 3] [--skip-backtest]

Each command runs as a subprocess (the console script, as a user types it); the figure is the
median of --repeat runs, next to its target:

* ``trading --help``, ``trading backtest --help``, ``trading backtest --bogus`` (unknown flag) and
  a backtest with ``--cash -1`` (a bad value): target <= 1 s each -- parsing imports no Numba,
  Polars or DuckDB, and plain values are checked before the engine is imported.
* one small real backtest (ma_crossover, ^GSPC daily 2005, the sample history in a temporary
  warehouse, ``--no-save``): cold = a fresh, empty ``NUMBA_CACHE_DIR`` (every kernel compiled);
  warm = the same cache again; after warm-up = another fresh cache filled first by the background
  warm-up ``trading up`` starts (``trading_core.cli.up.warmup_command``), whose own time is shown.
  Target: after warm-up ~ warm and <= 5 s (the README's first example, ^GSPC daily 2005-2018).
  Cold and after-warm-up run once each (a compile is the point).

Python's own bytecode cache matters as much as Numba's: without ``.pyc`` files every start
recompiles ~1,000 modules (~2.5 s here). The after-warm-up run uses a fresh
``PYTHONPYCACHEPREFIX`` that the warm-up fills, as on a fresh clone; it is shown once more with
``PYTHONDONTWRITEBYTECODE=1`` (an environment that never writes ``.pyc``) for comparison.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sample_store import sample_warehouse

from trading_core.cli.up import warmup_command

TRADING = str(Path(sys.executable).parent / "trading")
# the README's first backtest example
BACKTEST = ["backtest", "--strategy", "ma_crossover", "--param", "fast=10", "--param", "slow=50", "--symbol", "^GSPC",
            "--venue", "yahoo", "--timeframe", "1d", "--start", "2005-01-01", "--end", "2018-12-31", "--json"]
FAST = [
    (["--help"], 0),
    (["backtest", "--help"], 0),
    (["backtest", "--bogus"], 2),
    ([*BACKTEST, "--cash", "-1"], 2),
]
TARGET_S = 1.0
FIRST_BACKTEST_TARGET_S = 5.0


def _wall(cmd: list[str], env: dict[str, str] | None = None, expect: int = 0) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    secs = time.perf_counter() - t0
    if proc.returncode != expect:
        raise SystemExit(f"{' '.join(cmd)}: exit {proc.returncode}, expected {expect}\n{proc.stdout}{proc.stderr}")
    return secs


def _line(label: str, secs: float, target: str) -> str:
    return f"{label:<64s} {secs:7.2f} s   target {target}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-backtest", action="store_true", help="only the fast paths")
    args = ap.parse_args()
    print(f"median of {args.repeat} runs each, {os.cpu_count()} CPUs")
    for argv, rc in FAST:
        secs = statistics.median(_wall([TRADING, *argv], expect=rc) for _ in range(args.repeat))
        label = "trading " + " ".join(argv if len(argv) < 4 else ["backtest", "...", *argv[-2:]])
        print(_line(label, secs, f"<= {TARGET_S:.0f} s {'ok' if secs <= TARGET_S else 'MISSED'}"), flush=True)
    if args.skip_backtest:
        return
    with tempfile.TemporaryDirectory() as tmp:
        wh = sample_warehouse(Path(tmp) / "bench.duckdb")
        # .pyc written (as after any first run), each configuration into its own fresh prefix
        base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        base.update(TRADING_WAREHOUSE=str(wh.path), PYTHONPYCACHEPREFIX=str(Path(tmp) / "pyc-cold"))
        cmd = [TRADING, *BACKTEST, "--no-save"]
        cold_env = {**base, "NUMBA_CACHE_DIR": str(Path(tmp) / "numba-cold")}
        cold = _wall(cmd, cold_env)
        print(_line("backtest, cold (fresh NUMBA_CACHE_DIR)", cold, "- (compiles every kernel)"), flush=True)
        warm = statistics.median(_wall(cmd, cold_env) for _ in range(args.repeat))
        print(_line("backtest, warm (same cache)", warm, "- (reference)"), flush=True)
        pre_env = {**base}
        pre_env.update(NUMBA_CACHE_DIR=str(Path(tmp) / "numba-warmup"), PYTHONPYCACHEPREFIX=str(Path(tmp) / "pyc"))
        t0 = time.perf_counter()
        subprocess.run(warmup_command(), env=pre_env, capture_output=True, check=True)
        print(_line("  background warm-up of `trading up` (fresh cache)", time.perf_counter() - t0,
                    "- (runs beside the services)"), flush=True)
        after = _wall(cmd, pre_env)
        ok = after <= max(1.5 * warm, warm + 1.0) and after <= FIRST_BACKTEST_TARGET_S
        print(_line("backtest, first after the warm-up", after,
                    f"~ warm, <= {FIRST_BACKTEST_TARGET_S:.0f} s ({'ok' if ok else 'MISSED'})"), flush=True)
        no_pyc = _wall(cmd, {**pre_env, "PYTHONDONTWRITEBYTECODE": "1",
                             "PYTHONPYCACHEPREFIX": str(Path(tmp) / "pyc-none")})
        print(_line("  the same with PYTHONDONTWRITEBYTECODE=1 (no .pyc ever)", no_pyc, "- (comparison)"),
              flush=True)


if __name__ == "__main__":
    main()
