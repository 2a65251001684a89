"""Benchmark: the whole stress suite and Monte Carlo throughput on the offline sample history.

    .venv/bin/python benchmarks/stress.py [--paths 1000] [--cluster] [--gpu] [--json]

1. The full suite as the weekly job runs it: every crisis of config/crises.yaml x (buy-and-hold +
   the configured strategies) x risk off/on, plus ``--paths`` Monte Carlo paths per covered crisis
   with the risk layer on (through the Trader, one path = one account), stored in the warehouse
   with figures. Target: < 60 s on the 2-core development machine. Numba compilation is excluded
   (a one-crisis warm-up run of the same shape goes first).
2. Monte Carlo paths/s on one crisis (gfc_2008, ^GSPC, ``--paths`` paths): risk on (Trader) and
   risk off (one batch kernel call per chunk), in-process on CPU.
3. ``--cluster``: the same on a 2-worker ``LocalCluster`` (processes, 127.0.0.1), after a warm-up
   on the cluster so each worker has compiled its kernels; results checked equal to in-process.
4. ``--gpu`` (when a CUDA GPU is usable): risk-off paths/s on ``device=cuda`` against the CPU
   kernel on ONE core (``numba.set_num_threads(1)``) and on all cores; results checked equal.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from trading_core.config import PROJECT_ROOT, load_config  # noqa: E402
from trading_core.warehouse import Warehouse  # noqa: E402

SERIES = (("coinbase", "BTC/USD", "1h"), ("yahoo", "^GSPC", "1d"), ("yahoo", "^IXIC", "1d"), ("yahoo", "^VIX", "1d"))


def _warehouse(path: Path) -> Warehouse:
    import polars as pl

    from trading_core.market_data.providers.sample import SampleProvider
    from trading_core.market_data.validation import ValidationReport

    sample = SampleProvider(PROJECT_ROOT / ".cache" / "sample-packages")
    wh = Warehouse(path)
    wh.migrate()
    for venue, symbol, tf in SERIES:
        df = sample.fetch_ohlcv(venue, symbol, tf, datetime(1980, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC))
        rep = ValidationReport(accepted=df, dropped=pl.DataFrame(), quarantined=pl.DataFrame(), rows_in=df.height)
        wh.write_report(venue=venue, symbol=symbol, timeframe=tf, source="bench", report=rep)
    return wh


def _mc(cfg: Any, wh: Warehouse, paths: int, *, risk: bool, device: str = "cpu", client: Any = None) -> tuple[float, Any]:
    from trading_core.stress.catalogue import window
    from trading_core.stress.crisis import request_for
    from trading_core.stress.montecarlo import run_montecarlo
    from trading_core.stress.suite import select_crises

    crisis = select_crises(cfg.stress, ["gfc_2008"])[0]
    s, e = window(crisis)
    mc = cfg.stress.montecarlo.model_copy(update={"paths": paths, "risk": risk})
    req = request_for(cfg, cfg.stress, crisis.targets[0], mc.strategy, s, e, risk=risk)
    t = time.perf_counter()
    res = run_montecarlo(req, wh, mc, seed=cfg.stress.seed, crisis=crisis.name, device=device, client=client)
    return time.perf_counter() - t, res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--paths", type=int, default=1000)
    ap.add_argument("--cluster", action="store_true", help="also time a 2-worker LocalCluster")
    ap.add_argument("--gpu", action="store_true", help="also time device=cuda (when a GPU is usable)")
    ap.add_argument("--skip-suite", action="store_true", help="only the Monte Carlo throughput rows")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    import contextlib
    import io

    from trading_core.stress.suite import run_stress, select_crises

    out: dict[str, Any] = {"paths": args.paths, "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        wh = _warehouse(Path(tmp) / "warehouse.duckdb")
        cfg = load_config().model_copy(update={"data_dir": Path(tmp) / "data"})
        quiet = contextlib.redirect_stderr(io.StringIO())  # the VIX-missing warnings of warm-up history
        with quiet:
            run_stress(cfg, wh, crises=select_crises(cfg.stress, ["q4_selloff_2018", "crypto_capitulation_2018"]),
                       montecarlo=True, paths=20, persist=False, figures=True)  # compile everything once
            if not args.skip_suite:
                t = time.perf_counter()
                run = run_stress(cfg, wh, montecarlo=True, paths=args.paths, persist=True, figures=True)
                out["suite_s"] = round(time.perf_counter() - t, 2)
                d = run.to_dict()
                out["suite"] = {"windows": len(d["windows"]),
                                "covered_windows": sum(w["status"] != "no data" for w in d["windows"]),
                                "no_data_crises": sorted({w["crisis"] for w in d["windows"] if w["status"] == "no data"}),
                                "montecarlo_crises": len(run.montecarlo),
                                "montecarlo_paths": int(sum(m.paths for m in run.montecarlo)),
                                "figures": len(d["figures"])}
            for risk in (True, False):
                s, res = _mc(cfg, wh, args.paths, risk=risk)
                out[f"cpu_risk_{'on' if risk else 'off'}_paths_per_s"] = round(res.paths / s, 1)
                out[f"_ref_{risk}"] = res.final_equity
            if args.cluster:
                from distributed import Client, LocalCluster

                with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, Client(cluster) as client:
                    for risk in (True, False):
                        _mc(cfg, wh, 40, risk=risk, client=client)  # each worker compiles once
                        s, res = _mc(cfg, wh, args.paths, risk=risk, client=client)
                        out[f"cluster2_risk_{'on' if risk else 'off'}_paths_per_s"] = round(res.paths / s, 1)
                        out[f"cluster2_risk_{'on' if risk else 'off'}_equal"] = bool(
                            np.array_equal(res.final_equity, out[f"_ref_{risk}"]))
            if args.gpu:
                import numba

                from trading_core.engine import cuda_available

                if not cuda_available():
                    out["gpu"] = "no usable CUDA GPU"
                else:
                    _mc(cfg, wh, 100, risk=False, device="cuda")  # compile
                    s, gpu = _mc(cfg, wh, args.paths, risk=False, device="cuda")
                    out["gpu_risk_off_paths_per_s"] = round(gpu.paths / s, 1)
                    n = numba.get_num_threads()
                    numba.set_num_threads(1)
                    s1, cpu1 = _mc(cfg, wh, args.paths, risk=False)
                    numba.set_num_threads(n)
                    out["cpu1_risk_off_paths_per_s"] = round(cpu1.paths / s1, 1)
                    out["gpu_speedup_over_one_core"] = round(s1 / s, 2)
                    out["gpu_equal_cpu"] = bool(np.array_equal(gpu.final_equity, cpu1.final_equity))
    for k in [k for k in out if k.startswith("_ref_")]:
        out.pop(k)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for k, v in out.items():
            print(f"{k:<34} {v}")


if __name__ == "__main__":
    main()
