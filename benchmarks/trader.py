"""Benchmark: the one trading loop, ``Trader.on_bar``, with the default risk layer on.

    .venv/bin/python benchmarks/trader.py [--quick]

Strategy everywhere: ``ma_crossover`` fast=10 slow=50, its batch signals replayed through
``ReplaySignals`` (the stepped backtest's feed); engine model of the venue with the request
defaults (fill next_open, no slippage). Compilation is excluded: every timed run follows a
warm-up run on the same kind of Trader. Persistence is off. Four parts, in one table:

1. P = 1 account, per bar: the default ``RiskConfig()`` (four breaker levels, VIX filter fed the
   real ^VIX closes through ``VixAsOf``, order checks), and the same plus a trailing stop
   (``TrailingStopConfig()``), on the sample history's Coinbase BTC/USD 1h and S&P 500 (^GSPC)
   1d series, and on a seeded 10^5-bar hourly random walk (market filter off: no VIX there).
   Each ``on_bar`` is timed with ``perf_counter_ns``: median and p99 us per bar, and the run's
   total. Target: <= 30 us per bar (median).
2. P = 1,000 accounts in ONE Trader: 1,000 seeded Monte Carlo paths x 5,000 hourly bars, path c
   its own symbol, traded by account c (``symbol_of = account_of = range(1000)``), default risk
   with the market filter off: total seconds of the ``on_bar`` loop, us per bar and per
   bar-account. Target: <= 1 us per bar-account (<= 5 s in all). The strategy's own signal
   computation is not in the time.
3. Batch vs stepped when nothing fires: ``run_backtest`` of one request through the batch kernel
   (``risk=None``: one ``simulate_signals`` call) and through the Trader with every rule configured
   not to fire (QUIET, as in benchmarks/backtest_drivers.py), on both real series, best of
   ``--repeat``; the ratio stepped/batch comes from the same run.
4. Under the table: cProfile of the P = 1 BTC/USD run (default risk), top 8 functions by tottime.

``--quick`` shrinks the synthetic parts (10^4 random-walk bars, 100 paths x 1,000 bars) and runs
part 3 once: a smoke run, not numbers to quote.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sample_store import QUIET, SERIES, best_of, sample_warehouse

from trading_core.backtest import BacktestRequest
from trading_core.backtest.runner import build_market_model
from trading_core.risk import MarketFilterConfig, RiskConfig
from trading_core.risk.config import TrailingStopConfig
from trading_core.strategies import Bars, get_strategy
from trading_core.timeframes import timeframe_ms
from trading_core.trading import Protection, ReplaySignals, Trader, TraderConfig, VixAsOf, bar_slices
from trading_core.warehouse import Warehouse

NO_VIX = RiskConfig(market_filter=MarketFilterConfig(enabled=False))  # default risk, market filter off
PARAMS = {"fast": 10, "slow": 50}
TARGET_BAR_US, TARGET_BAR_ACCOUNT_US = 30.0, 1.0
WARM_BARS = 2_000  # bars of the warm-up run before each timed one (compilation, caches)
T0_MS = int(datetime(2020, 1, 1, tzinfo=UTC).timestamp() * 1000)


Vix = tuple[np.ndarray, np.ndarray]  # ^VIX bar open ms, close


def _vix(wh: Warehouse) -> Vix:
    """The ^VIX closes; each Trader gets its own ``VixAsOf`` over them (a lookup only moves forward)."""
    f = wh.read_bars("yahoo", "^VIX", "1d")
    return f["ts"].dt.epoch("ms").to_numpy().astype(np.int64), f["close"].cast(float).to_numpy()


def random_walk(T: int, S: int, seed: int) -> Bars:
    """Seeded hourly OHLCV random walks, S independent paths (one symbol each), start 100."""
    g = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(g.normal(0.0, 0.01, (T, S)), axis=0))
    open_ = np.vstack([np.full((1, S), 100.0), close[:-1]])
    wick = np.abs(g.normal(0.0, 0.003, (2, T, S)))
    high = np.maximum(open_, close) * (1.0 + wick[0])
    low = np.minimum(open_, close) * (1.0 - wick[1])
    volume = g.lognormal(np.log(1e5), 0.5, (T, S))
    ts = T0_MS + np.arange(T, dtype=np.int64) * 3_600_000
    return Bars(ts=ts, open=open_, high=high, low=low, close=close, volume=volume,
                symbols=tuple(f"MC{c:04d}" for c in range(S)))


def _trader(bars: Bars, venue: str, tf: str, risk: RiskConfig, vix: Vix | None, *,
            trailing: bool = False) -> Trader:
    """A Trader as ``run_stepped`` builds it: one account per symbol, ma_crossover's signals."""
    S = bars.n_symbols
    req = BacktestRequest(strategy="ma_crossover", params=PARAMS, symbol=bars.symbols[0], venue=venue, timeframe=tf,
                          start=datetime.fromtimestamp(int(bars.ts[0]) / 1000, tz=UTC),
                          end=datetime.fromtimestamp(int(bars.ts[-1]) / 1000 + 1, tz=UTC), persist=False)
    trail = TrailingStopConfig() if trailing else None
    if trailing:
        risk = risk.model_copy(update={"trailing_stop": trail})
    config = TraderConfig(symbols=tuple(bars.symbols), symbol_of=tuple(range(S)), account_of=tuple(range(S)),
                          model=build_market_model(req), calendar=req.resolved_calendar(), bar_ms=timeframe_ms(tf),
                          risk=risk, protection=Protection(trailing=trail), strategy="ma_crossover", run_id="bench")
    entries, exits = get_strategy("ma_crossover", PARAMS).signals(bars)
    return Trader(config, ReplaySignals(entries, exits), vix=None if vix is None else VixAsOf(*vix))


def _per_bar(trader: Trader, bars: Bars) -> tuple[np.ndarray, int]:
    """ns of each ``on_bar`` and the events the run produced."""
    slices = bar_slices(bars)
    ns = np.zeros(len(slices), np.int64)
    clock, n_ev = time.perf_counter_ns, 0
    for t, b in enumerate(slices):
        t0 = clock()
        n_ev += len(trader.on_bar(b))
        ns[t] = clock() - t0
    return ns, n_ev


def _head(bars: Bars, n: int) -> Bars:
    return Bars(ts=bars.ts[:n], open=bars.open[:n], high=bars.high[:n], low=bars.low[:n], close=bars.close[:n],
                volume=bars.volume[:n], symbols=bars.symbols)


def _mark(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def part1(cases: list[tuple[str, Bars, str, str, RiskConfig, Vix | None]]) -> None:
    print(f"\n1. P = 1, default risk, per on_bar (target <= {TARGET_BAR_US:.0f} us/bar median)")
    print(f"   {'series':24s} {'variant':15s} {'bars':>7s} {'median us':>10s} {'p99 us':>9s} {'total s':>8s} "
          f"{'events':>7s}")
    for label, bars, venue, tf, risk, vix in cases:
        for variant, trailing in (("default risk", False), ("+ trailing stop", True)):
            warm = _head(bars, WARM_BARS)
            _per_bar(_trader(warm, venue, tf, risk, vix, trailing=trailing), warm)
            ns, n_ev = _per_bar(_trader(bars, venue, tf, risk, vix, trailing=trailing), bars)
            med, p99 = np.median(ns) / 1e3, np.percentile(ns, 99) / 1e3
            print(f"   {label:24s} {variant:15s} {ns.shape[0]:7d} {med:10.1f} {p99:9.1f} {ns.sum() / 1e9:8.3f} "
                  f"{n_ev:7d}  {_mark(med <= TARGET_BAR_US)}")


def part2(paths: int, T: int) -> None:
    print(f"\n2. P = {paths:,} accounts in one Trader, {paths:,} paths x {T:,} bars, default risk (market filter off) "
          f"(target <= {TARGET_BAR_ACCOUNT_US:.0f} us/bar-account)")
    warm = random_walk(300, min(paths, 10), seed=1)
    _per_bar(_trader(warm, "coinbase", "1h", NO_VIX, None), warm)
    bars = random_walk(T, paths, seed=7)
    trader = _trader(bars, "coinbase", "1h", NO_VIX, None)
    slices = bar_slices(bars)
    n_ev = fills = 0
    t0 = time.perf_counter()
    for b in slices:
        n_ev += len(trader.on_bar(b))
        fills += trader.last_fills.shape[0]
    secs = time.perf_counter() - t0
    per_bar = secs / T * 1e6
    per_ba = per_bar / paths
    print(f"   {'total s':>8s} {'us/bar':>9s} {'us/bar-acct':>12s} {'events':>8s} {'fills':>7s}")
    print(f"   {secs:8.2f} {per_bar:9.1f} {per_ba:12.2f} {n_ev:8d} {fills:7d}  {_mark(per_ba <= TARGET_BAR_ACCOUNT_US)}"
          f"  (target total <= {TARGET_BAR_ACCOUNT_US * paths * T / 1e6:.1f} s)")


def part3(wh: Warehouse, repeat: int) -> None:
    print(f"\n3. run_backtest when nothing fires: batch (risk=None) vs stepped (QUIET risk), best of {repeat}")
    print(f"   {'series':24s} {'bars':>7s} {'batch s':>8s} {'stepped s':>10s} {'stepped/batch':>14s}")
    for venue, symbol, tf in SERIES:
        frame = wh.read_bars(venue, symbol, tf)
        base = dict(strategy="ma_crossover", params=PARAMS, symbol=symbol, venue=venue, timeframe=tf,
                    start=frame["ts"].min(), end=frame["ts"].max(), persist=False)
        out = {}
        for risk in (None, QUIET):
            out[risk is None] = best_of(BacktestRequest(**base, risk=risk), wh, repeat)  # type: ignore[arg-type]
        (b_s, bars, b_drv), (s_s, _, s_drv) = out[True], out[False]
        assert (b_drv, s_drv) == ("batch", "stepped"), (b_drv, s_drv)
        print(f"   {symbol + ' ' + tf:24s} {bars:7d} {b_s:8.3f} {s_s:10.3f} {s_s / b_s:13.1f}x")


def part4(bars: Bars, vix: Vix) -> None:
    trader = _trader(bars, "coinbase", "1h", RiskConfig(), vix)
    slices = bar_slices(bars)
    prof = cProfile.Profile()
    prof.enable()
    for b in slices:
        trader.on_bar(b)
    prof.disable()
    st = pstats.Stats(prof)
    rows = sorted(st.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:8]  # type: ignore[attr-defined]
    total = st.total_tt  # type: ignore[attr-defined]
    print(f"\n4. cProfile, P = 1 BTC/USD 1h, default risk, {len(slices)} bars: top 8 by tottime "
          f"(profiled total {total:.2f} s)")
    print(f"   {'tottime s':>9s} {'share':>6s} {'cumtime s':>9s} {'calls':>9s}  function")
    for (file, line, func), (_cc, nc, tt, ct, _callers) in rows:
        where = func if file == "~" else f"{_short(file)}:{line}({func})"
        print(f"   {tt:9.3f} {tt / total:6.1%} {ct:9.3f} {nc:9d}  {where}")


def _short(file: str) -> str:
    p = Path(file)
    parts = p.parts
    if "trading_core" in parts:
        return "/".join(parts[parts.index("trading_core"):])
    if "site-packages" in parts:
        return "/".join(parts[parts.index("site-packages") + 1:])
    return p.name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small synthetic sizes, part 3 once (smoke run)")
    ap.add_argument("--repeat", type=int, default=None, help="part 3 repeats (default 3, --quick 1)")
    args = ap.parse_args()
    walk_T, paths, path_T = (10_000, 100, 1_000) if args.quick else (100_000, 1_000, 5_000)
    repeat = args.repeat or (1 if args.quick else 3)
    with tempfile.TemporaryDirectory() as tmp:
        wh = sample_warehouse(Path(tmp) / "bench.duckdb")
        vix = _vix(wh)
        real = {sym: Bars.from_frame(wh.read_bars(venue, sym, tf), sym) for venue, sym, tf in SERIES}
        print(f"trading loop benchmark{' (--quick)' if args.quick else ''}: ma_crossover "
              f"fast={PARAMS['fast']} slow={PARAMS['slow']}, ReplaySignals, compile excluded; "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
        part1([("BTC/USD 1h", real["BTC/USD"], "coinbase", "1h", RiskConfig(), vix),
               ("^GSPC 1d", real["^GSPC"], "yahoo", "1d", RiskConfig(), vix),
               ("random walk 1h (seed 3)", random_walk(walk_T, 1, seed=3), "coinbase", "1h", NO_VIX, None)])
        part2(paths, path_T)
        part3(wh, repeat)
        part4(real["BTC/USD"], vix)


if __name__ == "__main__":
    main()
