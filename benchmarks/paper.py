"""Benchmark: a replay paper session end to end -- the Trader AND the ledger writes -- in bars/s.

    .venv/bin/python benchmarks/paper.py [--quick] [--repeat N] [--symbols 1,10,100] [--bars N]

Every run is ``SessionRunner.run()`` in this process on a fresh data directory (warehouse copy,
empty ``paper.duckdb``), at max replay speed with the session defaults (100 ms group commits,
a Trader snapshot every 500 bars), strategy ``ma_crossover`` 10/30 with the project's default
(armed) risk configuration, as ``tests/paper_support.btc_request`` builds it. Numba compilation
is excluded: a short warm-up session of the same shape runs first.

- 1 symbol: the real Coinbase BTC/USD 1h history (2017-08 .. 2019-10, ~19,000 bars).
- 10 and 100 symbols: no real history of that many symbols ships with the sample data, so a
  synthetic series per symbol (seeded hourly random walks from 2018-01-01, ``--bars`` bars,
  written through ``Warehouse.write_report`` beside the sample series) and ONE account holding
  them all (``BacktestRequest.symbols``, equal shares).

Per row: bars/s over the trading loop (first bar stepped -> last commit) and end to end (the
whole ``run()``: lease, warm-up, trading, hand-over), the ratio to the 2,000 bars/s target,
per-bar step latency (``Trader.on_bar`` + building the bar's rows, the runner's ``_rows``),
bar -> durable latency (stepped -> its transaction committed), commit latency per transaction
(``PaperLedger.commit``: ``before_tx`` -> ``after_commit`` through the runner's crash hook) and
bars per transaction. Then the Trader alone on the same request -- ``run_backtest`` (the
stepped driver: the same ``build_trader``, batch signals replayed, no ledger) -- so the ledger's
share of a session's time shows. Best of ``--repeat`` by loop bars/s.

A last row runs 1 symbol with ``group_commit_ms = 0`` (one transaction per bar, what a paced or
live session does) over 2,000 bars: the per-commit price alone.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from sample_store import sample_warehouse

from trading_core.backtest import BacktestRequest, run_backtest
from trading_core.config import load_config
from trading_core.market_data.schema import OHLCV_SCHEMA
from trading_core.market_data.validation import ValidationReport
from trading_core.paper.config import SessionConfig
from trading_core.paper.control import SessionStore
from trading_core.paper.runner import SessionRunner
from trading_core.warehouse import Warehouse
from trading_core.warehouse.paper import PaperLedger

TARGET_BARS_S = 2_000.0
BTC = (datetime(2017, 8, 1, tzinfo=UTC), datetime(2019, 10, 1, tzinfo=UTC))
SYN_START = datetime(2018, 1, 1, tzinfo=UTC)
H = timedelta(hours=1)
SID = "ps-00000000be4c"


def synthetic_symbols(n: int) -> tuple[str, ...]:
    return tuple(f"SYN{k:03d}/USD" for k in range(n))


def write_random_walks(wh: Warehouse, symbols: tuple[str, ...], bars: int, seed: int = 11) -> None:
    """Seeded hourly OHLCV random walks (start 100, 1 % hourly vol) for ``symbols`` on coinbase."""
    g = np.random.default_rng(seed)
    ts = pl.datetime_range(SYN_START, SYN_START + (bars - 1) * H, "1h", time_unit="ms", time_zone="UTC", eager=True)
    for sym in symbols:
        close = 100.0 * np.exp(np.cumsum(g.normal(0.0, 0.01, bars)))
        open_ = np.concatenate([[100.0], close[:-1]])
        wick = np.abs(g.normal(0.0, 0.003, (2, bars)))
        frame = pl.DataFrame({"ts": ts, "open": open_, "high": np.maximum(open_, close) * (1 + wick[0]),
                              "low": np.minimum(open_, close) * (1 - wick[1]),
                              "close": close, "volume": g.lognormal(np.log(1e5), 0.5, bars)}).cast(OHLCV_SCHEMA)
        wh.write_report(venue="coinbase", symbol=sym, timeframe="1h", source="bench", report=ValidationReport(
            accepted=frame, dropped=pl.DataFrame(), quarantined=pl.DataFrame(), rows_in=frame.height))


def request_for(symbols: tuple[str, ...], start: datetime, end: datetime) -> BacktestRequest:
    cfg = load_config()
    extra: dict[str, Any] = {"symbols": symbols} if len(symbols) > 1 else {}
    return BacktestRequest(strategy="ma_crossover", params={"fast": 10, "slow": 30}, symbol=symbols[0],
                           venue="coinbase", timeframe="1h", start=start, end=end, risk=cfg.risk, persist=False,
                           warmup_bars=40, venue_config=dict(cfg.venues.get("coinbase", {})), **extra)


class TimedRunner(SessionRunner):
    """The runner with a stopwatch on each bar's step (``_rows``)."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.steps: list[tuple[int, float, float]] = []  # (bar index, start, end) perf_counter s

    def _rows(self, trader: Any, i: int, *rest: Any) -> Any:
        t0 = time.perf_counter()
        out = super()._rows(trader, i, *rest)
        self.steps.append((i, t0, time.perf_counter()))
        return out


@dataclass
class Run:
    bars: int
    run_s: float
    loop_s: float
    step_us: np.ndarray
    durable_ms: np.ndarray
    commit_ms: np.ndarray
    bars_per_tx: np.ndarray
    events: int
    fills: int
    notes: list[str] = field(default_factory=list)

    @property
    def loop_rate(self) -> float:
        return self.bars / self.loop_s

    @property
    def e2e_rate(self) -> float:
        return self.bars / self.run_s


def run_session(root: Path, template: Path, request: BacktestRequest, **cfg: Any) -> Run:
    """One fresh session to its end, timed (``root`` is emptied first)."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    shutil.copyfile(template, root / "warehouse.duckdb")
    store, ledger = SessionStore(root / "paper"), PaperLedger(root / "paper.duckdb")
    store.create(SessionConfig(name="bench", request=request, **cfg), session_id=SID)
    tx: list[tuple[str, int, float]] = []

    def hook(name: str, last_bar: int) -> None:
        if name in ("before_tx", "after_commit"):
            tx.append((name, last_bar, time.perf_counter()))

    runner = TimedRunner(SID, store=store, ledger=ledger, warehouse=Warehouse(root / "warehouse.duckdb"),
                         run_id="bench", crash=hook, data_dir=root)
    t0 = time.perf_counter()
    out = runner.run()
    run_s = time.perf_counter() - t0
    assert out.state == "completed", out
    begins = [t for n, _, t in tx if n == "before_tx"]
    ends = [(b, t) for n, b, t in tx if n == "after_commit"]
    commit_ms = np.array([(e - s) * 1e3 for s, (_, e) in zip(begins, ends, strict=True)])
    last_bars = np.array([b for b, _ in ends])
    bars_per_tx = np.diff(np.concatenate([[-1], last_bars]))
    steps = runner.steps
    idx = np.searchsorted(last_bars, [i for i, _, _ in steps])  # the transaction that made bar i durable
    commit_at = np.array([t for _, t in ends])
    durable_ms = (commit_at[idx] - np.array([e for _, _, e in steps])) * 1e3
    step_us = np.array([(e - s) * 1e6 for _, s, e in steps])
    with ledger.connect(read_only=True) as con:
        counts = ledger.counts(con, SID)
    return Run(out.new_bars, run_s, ends[-1][1] - steps[0][1], step_us, durable_ms, commit_ms, bars_per_tx,
               counts["rows"], counts["fills"])


def trader_alone(request: BacktestRequest, wh: Warehouse, repeat: int) -> tuple[float, int, str]:
    """Best seconds of ``run_backtest`` (stepped driver, no ledger) after a warm-up run."""
    res = run_backtest(request, wh)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        res = run_backtest(request, wh)
        best = min(best, time.perf_counter() - t0)
    return best, res.bars, res.driver


def _p(a: np.ndarray, q: float) -> float:
    return float(np.percentile(a, q)) if a.size else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, one repeat (a smoke run, not numbers to quote)")
    ap.add_argument("--repeat", type=int, default=None, help="sessions per row, best kept (default 3, --quick 1)")
    ap.add_argument("--symbols", default="1,10,100", help="comma-separated symbol counts (default 1,10,100)")
    ap.add_argument("--bars", type=int, default=None, help="synthetic bars per symbol (default 5000, --quick 1000)")
    ap.add_argument("--group-commit-ms", type=float, default=100.0, help="the sessions' group commit (default 100)")
    args = ap.parse_args()
    repeat = args.repeat or (1 if args.quick else 3)
    syn_bars = args.bars or (1_000 if args.quick else 5_000)
    counts = [int(x) for x in args.symbols.split(",") if x.strip()]
    btc = (datetime(2019, 1, 1, tzinfo=UTC), datetime(2019, 3, 1, tzinfo=UTC)) if args.quick else BTC
    import logging

    logging.disable(logging.WARNING)  # breaker alerts go to the log channel too
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        template = tmp / "template.duckdb"
        wh = sample_warehouse(template)
        t0 = time.perf_counter()
        if max(counts) > 1:
            write_random_walks(wh, synthetic_symbols(max(counts)), syn_bars)
        print(f"paper session benchmark{' (--quick)' if args.quick else ''}: ma_crossover 10/30, default risk, "
              f"max speed, group commit {args.group_commit_ms:g} ms, best of {repeat}; {os.cpu_count()} CPUs, "
              f"load average {os.getloadavg()[0]:.1f}; synthetic warehouse built in {time.perf_counter() - t0:.1f} s")
        rows: list[tuple[str, Run, tuple[float, int, str] | None]] = []
        for n in counts:
            if n == 1:
                req, label = request_for(("BTC/USD",), *btc), "1 (BTC/USD 1h)"
            else:
                syms = synthetic_symbols(n)
                req, label = request_for(syms, SYN_START + 50 * H, SYN_START + syn_bars * H), f"{n} (synthetic)"
            warm = req.model_copy(update={"end": req.start + 300 * H})
            run_session(tmp / "warm", template, warm, group_commit_ms=args.group_commit_ms)
            best = max((run_session(tmp / "run", template, req, group_commit_ms=args.group_commit_ms)
                        for _ in range(repeat)), key=lambda r: r.loop_rate)
            rows.append((label, best, trader_alone(req, Warehouse(template), repeat)))
        if 1 in counts:
            req = request_for(("BTC/USD",), datetime(2019, 1, 1, tzinfo=UTC),
                              datetime(2019, 1, 1, tzinfo=UTC) + (600 if args.quick else 2_000) * H)
            rows.append(("1, one tx per bar", run_session(tmp / "run", template, req, group_commit_ms=0.0), None))

    print(f"\n{'symbols':20s} {'bars':>6s} {'loop b/s':>9s} {'e2e b/s':>8s} {'vs 2k':>6s} "
          f"{'step us p50/p99':>16s} {'durable ms p50/p99':>19s} {'commit ms p50/p99':>18s} {'bars/tx':>8s} "
          f"{'events':>7s} {'fills':>6s}")
    for label, r, _ in rows:
        print(f"{label:20s} {r.bars:6d} {r.loop_rate:9.0f} {r.e2e_rate:8.0f} {r.loop_rate / TARGET_BARS_S:5.2f}x "
              f"{_p(r.step_us, 50):7.0f}/{_p(r.step_us, 99):<8.0f} {_p(r.durable_ms, 50):8.1f}/{_p(r.durable_ms, 99):<10.1f} "
              f"{_p(r.commit_ms, 50):7.1f}/{_p(r.commit_ms, 99):<10.1f} {np.median(r.bars_per_tx):8.0f} "
              f"{r.events:7d} {r.fills:6d}")
    print(f"\n{'Trader alone':20s} {'bars':>6s} {'run_backtest s':>15s} {'bars/s':>8s} {'session loop s':>15s} "
          f"{'ledger share':>13s}")
    for label, r, alone in rows:
        if alone is None:
            continue
        secs, bars, driver = alone
        assert driver == "stepped", driver
        print(f"{label:20s} {bars:6d} {secs:15.3f} {bars / secs:8.0f} {r.loop_s:15.3f} "
              f"{max(0.0, 1 - secs / r.loop_s):12.0%}")
    print(f"\n(target {TARGET_BARS_S:,.0f} bars/s end to end; 'ledger share' = 1 - Trader-alone time / session loop "
          "time: the ledger writes, the row building and the runner's per-bar checks)")


if __name__ == "__main__":
    main()
