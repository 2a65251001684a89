"""Monte Carlo: seeded and reproducible; CPU, the CUDA simulator and a Dask LocalCluster agree;
zero-variance execution sampling leaves a zero-cost strategy exactly as the plain backtest."""

from __future__ import annotations

import dataclasses
import os
import pickle
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from tests.unit.stress._stress_support import trading_config, warehouse_copy
from trading_core.backtest import run_backtest
from trading_core.config import PROJECT_ROOT
from trading_core.stress.config import CrisisTarget, Distribution, ExecutionSampling, StrategySpec
from trading_core.stress.crisis import request_for
from trading_core.stress.montecarlo import bootstrap_paths, build_chunks, run_chunk, run_montecarlo

GSPC = CrisisTarget(venue="yahoo", symbol="^GSPC", timeframe="1d")
START, END = datetime(2018, 10, 1, tzinfo=UTC), datetime(2019, 1, 1, tzinfo=UTC)
MA = StrategySpec(name="ma_crossover", params={"fast": 5, "slow": 20})


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("stress_mc_wh")
    return warehouse_copy(root / "warehouse.duckdb", tmp_path_factory.getbasetemp())


def _mc(tmp: Path, risk: bool, **kw):  # type: ignore[no-untyped-def]
    cfg = trading_config(tmp, strategy=MA, risk=risk, **kw)
    return cfg, request_for(cfg, cfg.stress, GSPC, MA, START, END, risk=risk)


@pytest.mark.parametrize("risk", [False, True])
def test_same_seed_gives_the_same_paths_and_another_seed_does_not(wh, tmp_path: Path, risk: bool) -> None:
    cfg, req = _mc(tmp_path, risk)
    a = run_montecarlo(req, wh, cfg.stress.montecarlo, seed=11, crisis="q4")
    b = run_montecarlo(req, wh, cfg.stress.montecarlo, seed=11, crisis="q4")
    c = run_montecarlo(req, wh, cfg.stress.montecarlo, seed=12, crisis="q4")
    assert a.paths == 40 and a.draws == 40 and a.draws_used.shape == (40, 4)  # one execution draw per path
    assert np.array_equal(a.final_equity, b.final_equity) and np.array_equal(a.max_drawdown, b.max_drawdown)
    assert a.summary == b.summary
    assert not np.array_equal(a.final_equity, c.final_equity)
    assert np.unique(a.final_equity).size > 10  # paths differ from one another
    assert 0.0 <= a.summary["prob_ruin"] <= 1.0
    assert a.summary["final_equity"]["p5"] <= a.summary["final_equity"]["p50"] <= a.summary["final_equity"]["p95"]


def test_zero_variance_cost_sampling_leaves_a_zero_cost_strategy_unchanged(wh, tmp_path: Path) -> None:
    zero = Distribution(kind="fixed", value=0.0)
    sampling = ExecutionSampling(slippage_bps=zero, fee_bps=zero, latency_ms=zero,
                                 fill_prob=Distribution(kind="fixed", value=1.0))
    cfg, req = _mc(tmp_path, False, zero_fees=True, mode="execution", execution=sampling)
    mc = run_montecarlo(req, wh, cfg.stress.montecarlo, seed=3, crisis="q4")
    plain = run_backtest(req, wh)
    assert np.all(mc.final_equity == plain.equity[-1, 0])
    assert np.allclose(mc.max_drawdown, plain.portfolios[0].metrics.max_drawdown, rtol=0, atol=1e-12)
    assert np.all(mc.draws_used == [0.0, 0.0, 0.0, 1.0])  # slippage, fee, latency, fill probability


def test_sampled_costs_only_ever_lower_a_zero_cost_strategy(wh, tmp_path: Path) -> None:
    sampling = ExecutionSampling(slippage_bps=Distribution(kind="uniform", low=5, high=20),
                                 fee_bps=Distribution(kind="uniform", low=5, high=20),
                                 fill_prob=Distribution(kind="fixed", value=1.0))
    cfg, req = _mc(tmp_path, False, zero_fees=True, mode="execution", execution=sampling, paths_per_chunk=10)
    mc = run_montecarlo(req, wh, cfg.stress.montecarlo, seed=3, crisis="q4")
    plain = run_backtest(req, wh)
    assert mc.draws == 40 and np.unique(mc.draws_used[:, 1]).size == 40
    assert np.all(mc.final_equity < plain.equity[-1, 0])


@pytest.mark.parametrize("risk", [False, True])
def test_every_path_pays_its_own_drawn_fee(wh, tmp_path: Path, risk: bool) -> None:
    """Same bars and signals on every path, only the fee drawn: a path's final equity falls strictly
    with its own fee, inside one chunk and across chunks (a shared draw per chunk would tie them)."""
    zero = Distribution(kind="fixed", value=0.0)
    sampling = ExecutionSampling(slippage_bps=zero, latency_ms=zero, fill_prob=Distribution(kind="fixed", value=1.0),
                                 fee_bps=Distribution(kind="uniform", low=0.0, high=50.0))
    cfg, req = _mc(tmp_path, risk, zero_fees=True, mode="execution", execution=sampling, paths=24, paths_per_chunk=8)
    mc = run_montecarlo(req, wh, cfg.stress.montecarlo, seed=4, crisis="q4")
    fee = mc.draws_used[:, 1]
    assert np.unique(fee).size == 24
    order = np.argsort(fee)
    assert np.all(np.diff(mc.final_equity[order]) < 0)
    assert mc.summary["execution"]["fee_bps"]["corr_total_return"] == pytest.approx(-1.0)
    assert mc.summary["execution"]["slippage_bps"]["corr_total_return"] is None  # constant: nothing to rank


def test_paths_per_draw_is_refused_with_what_replaced_it() -> None:
    from trading_core.stress.config import MonteCarloConfig

    with pytest.raises(ValueError, match="paths_per_draw was replaced by paths_per_chunk"):
        MonteCarloConfig.model_validate({"paths": 10, "paths_per_draw": 5})


def test_block_bootstrap_chains_real_bar_moves_from_the_first_close() -> None:
    from trading_core.strategies import Bars

    rng = np.random.default_rng(0)
    c = np.cumprod(1 + rng.normal(0, 0.01, 50)) * 100
    one = Bars(ts=np.arange(50, dtype=np.int64), open=c[:, None], high=c[:, None] * 1.01, low=c[:, None] * 0.99,
               close=c[:, None], volume=np.ones((50, 1)))
    p = bootstrap_paths(one, 8, 5, np.random.default_rng(1))
    assert p.close.shape == (50, 8) and np.all(p.close[0] == c[0])
    moves = set(np.round(c[1:] / c[:-1], 12))
    assert set(np.round((p.close[1:] / p.close[:-1]).ravel(), 12)) <= moves  # only real moves
    assert np.all(p.high >= p.close) and np.all(p.low <= p.close)


def test_cpu_and_cuda_simulator_give_identical_paths(wh, tmp_path: Path) -> None:
    cfg, req = _mc(tmp_path, False, paths=4, paths_per_chunk=2)
    req = req.model_copy(update={"start": datetime(2018, 11, 1, tzinfo=UTC), "end": datetime(2018, 12, 15, tzinfo=UTC),
                                 "warmup_bars": 30})
    chunks = build_chunks(req, wh, cfg.stress.montecarlo, seed=5, key="cuda")
    blob = tmp_path / "chunks.pkl"
    blob.write_bytes(pickle.dumps(chunks))
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", PYTHONPATH=str(PROJECT_ROOT))
    r = subprocess.run([sys.executable, "-m", "tests.unit.stress._stress_cuda_child", str(blob)], cwd=PROJECT_ROOT,
                       env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "STRESS CUDA-SIM PARITY OK 2" in r.stdout


def _cluster_equals_in_process(wh, tmp_path: Path, *, processes: bool, risk: bool) -> None:  # type: ignore[no-untyped-def]
    from distributed import Client, LocalCluster

    cfg, req = _mc(tmp_path, risk, paths=30, paths_per_chunk=10)
    here = run_montecarlo(req, wh, cfg.stress.montecarlo, seed=21, crisis="q4")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=processes, host="127.0.0.1", protocol="tcp",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        there = run_montecarlo(req, wh, cfg.stress.montecarlo, seed=21, crisis="q4", client=client)
    assert np.array_equal(here.final_equity, there.final_equity)
    assert np.array_equal(here.max_drawdown, there.max_drawdown)
    assert here.summary == there.summary


def test_dask_local_cluster_gives_the_in_process_result(wh, tmp_path: Path) -> None:
    _cluster_equals_in_process(wh, tmp_path, processes=False, risk=False)


@pytest.mark.slow
@pytest.mark.parametrize("risk", [False, True])
def test_dask_local_cluster_of_processes_gives_the_in_process_result(wh, tmp_path: Path, risk: bool) -> None:
    _cluster_equals_in_process(wh, tmp_path, processes=True, risk=risk)


def test_chunks_carry_their_own_seed_so_order_does_not_matter(wh, tmp_path: Path) -> None:
    cfg, req = _mc(tmp_path, False)
    chunks = build_chunks(req, wh, cfg.stress.montecarlo, seed=9, key="q4")
    forward = [run_chunk(c) for c in chunks]
    backward = [run_chunk(c) for c in reversed(chunks)][::-1]
    assert all(np.array_equal(a.equity, b.equity) for a, b in zip(forward, backward, strict=True))
    assert len({c.seed for c in chunks}) == len(chunks)
    assert dataclasses.replace(chunks[0], index=0).seed == chunks[0].seed


def test_unreachable_dask_scheduler_is_one_clear_error() -> None:
    from trading_core.stress.compute import ComputeUnavailable, map_chunks

    with pytest.raises(ComputeUnavailable, match="tcp://127.0.0.1:9"):
        map_chunks(abs, [1, -2], scheduler="tcp://127.0.0.1:9", timeout_s=2)
    assert map_chunks(abs, [1, -2]) == [1, 2]
