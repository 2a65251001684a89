"""Simulation-core benchmark: our engine vs vectorbt vs a hand-written Numba loop, in ONE run.

Workload (docs/simulation.md "Performance", /work/shared/reference/performance-reference.md): a seeded
geometric random walk (sigma 0.001, start 100, 4 assets), a grid of P = V (fast, slow) pairs x S assets
long-only SMA-crossover portfolios, fees 0.1 %, slippage 0.05 %, fill at the same bar's close, all cash in,
whole position out, no cash sharing (vectorbt's ``from_signals`` defaults).

Every method is timed *as a user calls it*: indicators + crossovers + simulation + results (final values and
order/fill counts). Unit: bar-portfolio updates per second (T * P / wall time), median of N repeats after a
warm-up. Run:

    .venv/bin/python benchmarks/engine.py            # full table (several minutes)
    .venv/bin/python benchmarks/engine.py --quick    # small sizes
    .venv/bin/python benchmarks/engine.py --sizes 1e5x100,1e4x1000 --skip-vbt-startup
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
from numba import njit, prange

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from trading_core.engine import FeeTier, MarketModel, simulate_signals  # noqa: E402
from trading_core.strategies.base import Bars, portfolio_symbols  # noqa: E402
from trading_core.strategies.ma_crossover import MaCrossover, MaCrossoverParams  # noqa: E402

S_ASSETS = 4
FEES, SLIP = 0.001, 0.0005
CASH = 100.0  # vectorbt's default init_cash
MEM_LIMIT = 12e9

SIMPLE = MarketModel(fill_at="close", slippage_bps=SLIP * 1e4, fee_tiers=(FeeTier(0.0, FEES * 1e4, FEES * 1e4),))
FULL = MarketModel(
    fill_at="close", slippage_bps=SLIP * 1e4, spread_bps=2.0, impact_coef=0.1, participation_rate=0.25,
    latency_kind="fixed", latency_a=1.0, touch_fill_prob=0.9,
    fee_tiers=(FeeTier(0.0, FEES * 1e4, FEES * 1e4), FeeTier(1e4, 8.0, 9.0), FeeTier(1e5, 5.0, 7.0)),
)


# ############# Data ############# #


def make_market(T: int, S: int, seed: int = 42) -> Bars:
    g = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(g.normal(0.0, 0.001, (T, S)), axis=0))
    open_ = np.vstack([np.full((1, S), 100.0), close[:-1]])
    high = np.maximum(open_, close)
    low = np.minimum(open_, close)
    volume = g.lognormal(1.0, 0.5, (T, S))  # a few units per bar: participation caps bind (partial fills)
    ts = np.arange(T, dtype=np.int64) * 60_000
    return Bars(ts=ts, open=open_, high=high, low=low, close=close, volume=volume,
                symbols=tuple(f"A{i}" for i in range(S)))


def make_grid(P: int) -> tuple[list[tuple[int, int]], int]:
    """(pairs, S): P = len(pairs) * S. P=1 is SMA 10/50 on one asset."""
    if P == 1:
        return [(10, 50)], 1
    V = P // S_ASSETS
    n_fast = max(1, int(math.sqrt(V / 2.5)))
    n_slow = math.ceil(V / n_fast)
    fasts = [5 + 5 * i for i in range(n_fast)]
    slows = [fasts[-1] + 25 + 25 * j for j in range(n_slow)]
    pairs = [(f, s) for f in fasts for s in slows][:V]
    return pairs, S_ASSETS


# ############# Methods ############# #


def run_engine(bars: Bars, pairs, model: MarketModel):
    """What a user's backtest does: strategy grid signals -> simulate_signals -> results."""
    strat = MaCrossover(MaCrossoverParams(grid=",".join(f"{f}:{s}" for f, s in pairs)))
    ent, ex = strat.signals(bars)
    sym = portfolio_symbols(len(pairs), bars.n_symbols)
    res = simulate_signals(bars.ts, bars.open, bars.high, bars.low, bars.close, bars.volume, entries=ent, exits=ex,
                           symbol_of=sym, model=model, cash=CASH, size_mode="all_in", device="cpu",
                           save_series=False)  # results = final values + fills, as run_vbt's
    return res.final_equity, len(res.fills), res


def run_vbt(vbt, close_df, pairs):
    """What a vectorbt user does: MA indicators + crossovers + Portfolio.from_signals -> results."""
    fast = vbt.MA.run(close_df, window=[f for f, _ in pairs], short_name="fast", param_product=True)
    slow = vbt.MA.run(close_df, window=[s for _, s in pairs], short_name="slow", param_product=True)
    ent = fast.ma_crossed_above(slow)
    ex = fast.ma_crossed_below(slow)
    pf = vbt.Portfolio.from_signals(close_df.vbt.tile(len(pairs)), ent, ex, fees=FEES,
                                    slippage=SLIP, init_cash=CASH, freq="1min")
    return np.asarray(pf.final_value()), int(pf.orders.count().sum()), pf


@njit(cache=True)
def _hand_one(close, f, s, fee, slip, cash0):
    """Fused rolling means + crossover + fill of one portfolio (vectorbt's fill arithmetic)."""
    T = close.shape[0]
    sf = 0.0
    ss = 0.0
    cash = cash0
    q = 0.0
    n = 0
    pf = np.nan
    ps = np.nan
    for t in range(T):
        c = close[t]
        sf += c
        ss += c
        if t >= f:
            sf -= close[t - f]
        if t >= s:
            ss -= close[t - s]
        mf = sf / f if t >= f - 1 else np.nan
        ms = ss / s if t >= s - 1 else np.nan
        if q == 0.0:
            if mf > ms and pf <= ps:
                px = c * (1.0 + slip)
                q = cash / (px * (1.0 + fee))
                cash -= q * px * (1.0 + fee)
                n += 1
        elif mf < ms and pf >= ps:
            px = c * (1.0 - slip)
            cash += q * px * (1.0 - fee)
            q = 0.0
            n += 1
        pf = mf
        ps = ms
    return cash + q * close[T - 1], n


@njit(cache=True)
def hand_serial_nb(close, fw, sw, sym, fee, slip, cash0):
    P = fw.shape[0]
    out = np.empty(P)
    cnt = np.empty(P, np.int64)
    for p in range(P):
        out[p], cnt[p] = _hand_one(close[:, sym[p]], fw[p], sw[p], fee, slip, cash0)
    return out, cnt


@njit(cache=True, parallel=True)
def hand_parallel_nb(close, fw, sw, sym, fee, slip, cash0):
    P = fw.shape[0]
    out = np.empty(P)
    cnt = np.empty(P, np.int64)
    for p in prange(P):
        out[p], cnt[p] = _hand_one(close[:, sym[p]], fw[p], sw[p], fee, slip, cash0)
    return out, cnt


def hand_args(bars: Bars, pairs):
    S = bars.n_symbols
    fw = np.repeat(np.array([f for f, _ in pairs], np.int64), S)
    sw = np.repeat(np.array([s for _, s in pairs], np.int64), S)
    close_cols = np.ascontiguousarray(bars.close)
    return close_cols, fw, sw, portfolio_symbols(len(pairs), S), FEES, SLIP, CASH


# ############# Timing ############# #


def timed(fn, repeats: int, warm: bool = True) -> tuple[float, object]:
    out = fn() if warm else None
    ts = []
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), out


def est_bytes(T: int, P: int, with_vbt: bool) -> float:
    # vectorbt: ~2 MA outputs + 2 signal frames + broadcasts/records (~10 float64 (T, P) arrays);
    # ours: 2 bool signal arrays (+ fills); 3 series only with save_series=True
    return T * P * 8 * (10 if with_vbt else 2)


def parse_sizes(s: str) -> list[tuple[int, int]]:
    out = []
    for part in s.split(","):
        t, p = part.lower().split("x")
        out.append((int(float(t)), int(float(p))))
    return out


def batch_section(sizes, repeats: int, vbt) -> list[dict]:
    import pandas as pd

    rows = []
    for T, P in sizes:
        pairs, S = make_grid(P)
        P = len(pairs) * S
        need = est_bytes(T, P, vbt is not None)
        if need > MEM_LIMIT:
            print(f"  skip T={T:.0e} P={P}: needs ~{need / 1e9:.0f} GB (> {MEM_LIMIT / 1e9:.0f} GB)")
            continue
        big = T * P >= 5e7
        rep = 1 if big else repeats
        bars = make_market(T, S)
        n = T * P
        r: dict = {"T": T, "P": P}
        t_eng, (eq, nf, res) = timed(lambda: run_engine(bars, pairs, SIMPLE), rep, warm=not big)
        r["engine"] = n / t_eng
        # the simulation alone (signals precomputed), to separate it from the strategy's indicators
        strat = MaCrossover(MaCrossoverParams(grid=",".join(f"{f}:{s}" for f, s in pairs)))
        ent, ex = strat.signals(bars)
        sym = portfolio_symbols(len(pairs), S)
        t_sim, _ = timed(lambda: simulate_signals(bars.ts, bars.open, bars.high, bars.low, bars.close, bars.volume,
                                                  entries=ent, exits=ex, symbol_of=sym, model=SIMPLE, cash=CASH,
                                                  device="cpu", save_series=False), rep, warm=not big)
        r["engine_sim"] = n / t_sim
        t_sig, _ = timed(lambda: strat.signals(bars), rep, warm=False)
        r["signals"] = n / t_sig
        ent = ex = None  # free the (T, P) signals before the next run
        t_full, (eq_full, nf_full, res_full) = timed(lambda: run_engine(bars, pairs, FULL), rep, warm=not big)
        r["full"] = n / t_full
        r["full_partial"] = int((res_full.fills.size > 0) and np.any(
            np.diff(res_full.fills["order_id"]) == 0))
        del res_full
        args = hand_args(bars, pairs)
        t_hs, (heq, hn) = timed(lambda: hand_serial_nb(*args), rep)
        t_hp, _ = timed(lambda: hand_parallel_nb(*args), rep)
        r["hand_serial"] = n / t_hs
        r["hand_par"] = n / t_hp
        if vbt is not None:
            close_df = pd.DataFrame(bars.close, columns=list(bars.symbols))
            t_vbt, (veq, vn, vpf) = timed(lambda: run_vbt(vbt, close_df, pairs), rep, warm=not big)
            r["vbt"] = n / t_vbt
            rel = np.max(np.abs(eq - veq) / np.abs(veq))
            # leading orders identical (portfolio 0): where equity has decayed to ~1e-6 (tens of thousands of
            # round trips at 0.15 % cost), vectorbt's size tolerances skip ~1e-8-unit orders that we fill
            vrec = vpf.orders.values
            e_bars = res.fills["bar"][res.fills["portfolio"] == 0]
            v_bars = vrec["idx"][vrec["col"] == 0]
            m = min(len(e_bars), len(v_bars))
            diff = np.flatnonzero(e_bars[:m] != v_bars[:m])
            lead = int(diff[0]) if diff.size else m
            print(f"  parity T={T:.0e} P={P}: orders engine={nf} vectorbt={vn} equal={nf == vn}; "
                  f"max rel diff final value {rel:.1e}; hand loop orders={int(hn.sum())}; "
                  f"portfolio 0: first {lead} of {len(e_bars)}/{len(v_bars)} order bars identical")
            del vpf
            r["parity"] = (nf == vn, rel)
        del res
        rows.append(r)
        gc.collect()
    return rows


def print_batch(rows) -> None:
    hdr = (f"{'T':>6} {'P':>5} | {'vbt call':>9} | {'engine':>8} {'x vbt':>6} {'%hand':>6} | {'full':>7} "
           f"{'x vbt':>6} {'%hand':>6} | {'sim only':>8} {'signals':>8} | {'hand ser':>8} {'hand par':>8}")
    print("\nBatch, M bar-portfolio updates/s (median); 'x vbt' = ratio to vectorbt as called in this run;")
    print("'%hand' = fraction of the fused serial hand loop; engine/full include MaCrossover signals.")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        v = r.get("vbt")
        xv = (lambda k: f"{r[k] / v:6.1f}") if v else (lambda k: "     -")
        vs = f"{v / 1e6:9.2f}" if v else "        -"
        print(f"{r['T']:>6.0e} {r['P']:>5} | {vs} | {r['engine'] / 1e6:8.1f} {xv('engine')} "
              f"{100 * r['engine'] / r['hand_serial']:5.0f}% | {r['full'] / 1e6:7.1f} {xv('full')} "
              f"{100 * r['full'] / r['hand_serial']:5.0f}% | {r['engine_sim'] / 1e6:8.1f} {r['signals'] / 1e6:8.1f} | "
              f"{r['hand_serial'] / 1e6:8.1f} {r['hand_par'] / 1e6:8.1f}")


# ############# Streaming ############# #


def streaming_section(n_bars: int) -> None:
    from trading_core.engine import Engine

    bars = make_market(n_bars, 1, seed=7)
    f, s = 10, 50
    O, H, L, C, V = bars.open, bars.high, bars.low, bars.close, bars.volume
    eng = Engine(1, 1, SIMPLE, cash=CASH, bar_ms=60_000.0)
    eng.set_signals(np.zeros(1, np.int64))
    ent = np.zeros(1, np.bool_)
    ex = np.zeros(1, np.bool_)
    # warm-up bars on a throwaway engine (compile/load)
    w = Engine(1, 1, SIMPLE, cash=CASH)
    w.set_signals(np.zeros(1, np.int64))
    for t in range(200):
        w.step(int(bars.ts[t]), O[t], H[t], L[t], C[t], V[t], entries=ent, exits=ex)
    ring = [0.0] * s
    sf = ss = 0.0
    pf = ps = math.nan
    lat = np.empty(n_bars)
    fills = []
    clock = time.perf_counter_ns
    closes = C[:, 0].tolist()
    tsl = bars.ts.tolist()
    gc.disable()
    for t in range(n_bars):
        t0 = clock()
        c = closes[t]
        # features: incremental SMA(10) and SMA(50) (same running sums as the batch sma_nb)
        sf += c
        ss += c
        if t >= f:
            sf -= ring[(t - f) % s]
        if t >= s:
            ss -= ring[t % s]
        ring[t % s] = c
        mf = sf / f if t >= f - 1 else math.nan
        ms = ss / s if t >= s - 1 else math.nan
        # decision: crossover, as MaCrossover.signals
        ent[0] = mf > ms and pf <= ps
        ex[0] = ms > mf and ps <= pf
        pf, ps = mf, ms
        # fill
        out = eng.step(tsl[t], O[t], H[t], L[t], C[t], V[t], entries=ent, exits=ex)
        lat[t] = clock() - t0
        if out.size:
            fills.append(out)
    gc.enable()
    lat /= 1e3
    nf = sum(x.size for x in fills)
    # batch parity of the same bars
    strat = MaCrossover(MaCrossoverParams(fast=f, slow=s))
    e2, x2 = strat.signals(bars)
    res = simulate_signals(bars.ts, O, H, L, C, V, entries=e2, exits=x2, model=SIMPLE, cash=CASH, device="cpu")
    same = nf == res.fills.size and (nf == 0 or np.array_equal(np.concatenate(fills), res.fills))
    print(f"\nStreaming, P=1, {n_bars} bars (features + decision + Engine.step, per bar): "
          f"median {np.median(lat):.2f} us, p99 {np.percentile(lat, 99):.2f} us, "
          f"p99.9 {np.percentile(lat, 99.9):.2f} us, mean {lat.mean():.2f} us; fills {nf}; "
          f"identical to batch: {same}")
    # the bare step (no features) on a no-signal bar: median and best of 5 passes (the VM is shared)
    m = 20_000
    ent[0] = ex[0] = False
    passes = []
    for _ in range(5):
        t0 = time.perf_counter()
        for t in range(m):
            eng.step(tsl[t], O[t], H[t], L[t], C[t], V[t], entries=ent, exits=ex)
        passes.append((time.perf_counter() - t0) / m * 1e6)
    print(f"  bare Engine.step on a quiet bar: median {statistics.median(passes):.2f} us, best {min(passes):.2f} us "
          f"(5 passes of {m})")


# ############# Start-up ############# #

_ENGINE_STARTUP = textwrap.dedent("""
    import time, sys
    t0 = time.perf_counter()
    sys.path.insert(0, {root!r})
    import numpy as np
    from benchmarks.engine import make_market, make_grid, run_engine, SIMPLE, FULL
    t1 = time.perf_counter()
    pairs, S = make_grid(100)
    bars = make_market(2000, S)
    run_engine(bars, pairs, SIMPLE)
    t2 = time.perf_counter()
    run_engine(bars, pairs, FULL)
    t3 = time.perf_counter()
    print(f"{{t1 - t0:.2f}} {{t2 - t1:.2f}} {{t3 - t2:.2f}}")
""")

_VBT_STARTUP = textwrap.dedent("""
    import time, sys
    t0 = time.perf_counter()
    sys.path.insert(0, {root!r})
    import pandas as pd
    import vectorbt as vbt
    from benchmarks.engine import make_market, make_grid, run_vbt
    t1 = time.perf_counter()
    pairs, S = make_grid(100)
    bars = make_market(2000, S)
    run_vbt(vbt, pd.DataFrame(bars.close), pairs)
    t2 = time.perf_counter()
    print(f"{{t1 - t0:.2f}} {{t2 - t1:.2f}} 0")
""")


def _sub(code: str, cache: str) -> tuple[float, float, float, float]:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=str(ROOT))
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", code.format(root=str(ROOT))], env=env, capture_output=True, text=True,
                       timeout=1800, cwd=ROOT)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-2000:])
    a, b, c = (float(x) for x in r.stdout.split()[-3:])
    return a, b, c, wall


def startup_section(skip_vbt: bool) -> None:
    print("\nStart-up (fresh subprocess; first backtest = MaCrossover grid P=100, T=2000):")
    with tempfile.TemporaryDirectory() as d:
        imp, first, full, wall = _sub(_ENGINE_STARTUP, d)
        print(f"  engine, empty NUMBA_CACHE_DIR: import {imp:.1f} s, first simple-model backtest {first:.1f} s "
              f"(compile), first full-model backtest {full:.1f} s more; process total {wall:.1f} s")
        imp, first, full, wall = _sub(_ENGINE_STARTUP, d)
        print(f"  engine, warm cache:            import {imp:.1f} s, first backtest {first:.2f} s, "
              f"full model {full:.2f} s; process start to first result {wall - full:.1f} s")
        if skip_vbt:
            print("  vectorbt: skipped (--skip-vbt-startup)")
            return
        imp, first, _, wall = _sub(_VBT_STARTUP, d)
        print(f"  vectorbt, empty NUMBA_CACHE_DIR: import {imp:.1f} s, first from_signals {first:.1f} s; "
              f"process total {wall:.1f} s")
        imp, first, _, wall = _sub(_VBT_STARTUP, d)
        print(f"  vectorbt, warm cache:            import {imp:.1f} s, first from_signals {first:.1f} s; "
              f"process total {wall:.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes, fewer repeats, 20k streaming bars")
    ap.add_argument("--sizes", help="comma list of TxP, e.g. 1e5x100,1e6x100")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--stream-bars", type=int, default=100_000)
    ap.add_argument("--no-vbt", action="store_true", help="leave vectorbt out of the batch table")
    ap.add_argument("--skip-vbt-startup", action="store_true")
    ap.add_argument("--skip-startup", action="store_true")
    ap.add_argument("--skip-streaming", action="store_true")
    ap.add_argument("--skip-batch", action="store_true", help="streaming (and start-up) sections only")
    a = ap.parse_args()
    if a.sizes:
        sizes = parse_sizes(a.sizes)
    elif a.quick:
        sizes = [(10_000, 1), (10_000, 100), (100_000, 100)]
    else:
        sizes = [(T, P) for T in (10_000, 100_000, 1_000_000) for P in (1, 100, 1000)]
    stream_bars = 20_000 if a.quick and a.stream_bars == 100_000 else a.stream_bars
    import numba

    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, numba {numba.__version__}, "
          f"threads {numba.get_num_threads()}, cpus {os.cpu_count()}, load {os.getloadavg()[0]:.1f}")
    vbt = None
    if not a.no_vbt and not a.skip_batch:
        t0 = time.perf_counter()
        import vectorbt as vbt  # installed only for this benchmark

        print(f"vectorbt {vbt.__version__} (import {time.perf_counter() - t0:.1f} s)")
    if not a.skip_batch:
        rows = batch_section(sizes, 1 if a.quick else a.repeats, vbt)
        print_batch(rows)
    if not a.skip_streaming:
        streaming_section(stream_bars)
    if not a.skip_startup:
        startup_section(a.skip_vbt_startup or a.quick)


if __name__ == "__main__":
    main()
