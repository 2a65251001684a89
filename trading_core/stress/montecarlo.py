"""Monte Carlo through the many-portfolio kernel and the Trader: one path = one account.

A path is (a) a block bootstrap of the crisis window's own bars -- blocks of consecutive bar moves
(open/high/low/close relative to the previous close, and volume) drawn with replacement and chained
from the first real close -- and/or (b) a draw of the execution assumptions (slippage, fees,
latency, fill probability) from configured distributions -- one draw per path: every account of a
kernel call holds its own market model (``engine.PortfolioModels``). Paths are grouped in chunks of
``paths_per_chunk`` (the unit of parallel work): each path of a chunk is one synthetic symbol traded
by its own account under its own execution draw. Risk off, a chunk is ONE ``simulate_signals`` call
(CPU parallel over accounts, or CUDA); risk on, it is ONE stepped Trader
(``backtest.stepped.run_stepped``) with breakers and stops, P accounts per bar.

Every chunk carries its own seed (from the run seed, the crisis and the chunk number), so a result
is the same in-process, on a Dask cluster, on CPU or on CUDA.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from ..backtest import BacktestRequest
from ..engine import FeeTier, MarketModel, PortfolioModels
from ..errors import InvalidInput
from ..strategies import Bars
from .config import Distribution, ExecutionSampling, MonteCarloConfig

__all__ = ["MCChunk", "MCResult", "bootstrap_paths", "build_chunks", "draw_model", "run_chunk", "run_montecarlo",
           "summarise"]


def _seed(*parts: Any) -> int:
    """A stable 63-bit seed from any parts (Python's ``hash`` is salted per process)."""
    return int.from_bytes(hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()[:8], "big") >> 1


def sample(dist: Distribution, rng: np.random.Generator | None) -> float:
    """One draw; a constant distribution consumes no randomness (so it cannot shift other draws,
    and needs no generator)."""
    if dist.kind == "fixed":
        return float(dist.value)
    if dist.is_constant:
        x = dist.low if dist.kind == "uniform" else dist.mean
    elif rng is None:
        raise ValueError(f"a {dist.kind} distribution needs a random generator")
    elif dist.kind == "uniform":
        return float(rng.uniform(dist.low, dist.high))
    elif dist.kind == "normal":
        x = float(rng.normal(dist.mean, dist.std))
    else:
        x = float(dist.mean * np.exp(rng.normal(0.0, dist.std)))
    hi = dist.high if dist.high > dist.low else float("inf")
    return float(min(max(x, dist.low), hi))


DRAWN = ("slippage_bps", "fee_bps", "latency_ms", "fill_prob")


def _sampled_latency(sampling: ExecutionSampling) -> bool:
    """Whether paths get a drawn fixed latency (the same latency kind for every path of a call)."""
    lat = sampling.latency_ms
    return not (lat.is_constant and sample(lat, None) == 0.0)


def draw_model(base: MarketModel, sampling: ExecutionSampling, rng: np.random.Generator) -> tuple[MarketModel,
                                                                                                 dict[str, float]]:
    """The base model with sampled slippage (bps), a flat fee (bps), a fixed latency (ms) and a fill
    probability p (a touched limit fills with p; the venue refuses an order with 1 - p). Only the
    per-portfolio numbers change, so the paths of one call share the venue's rules."""
    d = {"slippage_bps": sample(sampling.slippage_bps, rng), "fee_bps": sample(sampling.fee_bps, rng),
         "latency_ms": sample(sampling.latency_ms, rng), "fill_prob": min(1.0, sample(sampling.fill_prob, rng))}
    changes: dict[str, Any] = {"slippage_bps": d["slippage_bps"], "fee_tiers": (FeeTier(0.0, d["fee_bps"], d["fee_bps"]),),
                               "touch_fill_prob": d["fill_prob"], "reject_prob": 1.0 - d["fill_prob"]}
    if _sampled_latency(sampling):
        changes.update(latency_kind="fixed", latency_unit="ms", latency_a=d["latency_ms"], latency_b=0.0)
    return base.replace(**changes), d


def bootstrap_paths(bars: Bars, n: int, block: int, rng: np.random.Generator) -> Bars:
    """``n`` block-bootstrap paths of a one-symbol window as ``n`` symbols of the same bars' times."""
    T = bars.n_bars
    c = bars.close[:, 0]
    prev = c[:-1]
    rel = np.stack([bars.open[1:, 0] / prev, bars.high[1:, 0] / prev, bars.low[1:, 0] / prev, c[1:] / prev])
    vol = bars.volume[1:, 0]
    m = T - 1
    block = max(1, min(block, m))
    n_blocks = -(-m // block)
    starts = rng.integers(0, m - block + 1, size=(n, n_blocks))
    idx = (starts[:, :, None] + np.arange(block)[None, None, :]).reshape(n, -1)[:, :m].T  # (m, n)
    growth = np.vstack([np.ones((1, n)), np.cumprod(rel[3][idx], axis=0)])  # close path / c0
    close = c[0] * growth
    base = close[:-1]
    o = np.vstack([np.full((1, n), bars.open[0, 0]), base * rel[0][idx]])
    h = np.vstack([np.full((1, n), bars.high[0, 0]), base * rel[1][idx]])
    lo = np.vstack([np.full((1, n), bars.low[0, 0]), base * rel[2][idx]])
    v = np.vstack([np.full((1, n), bars.volume[0, 0]), vol[idx]])
    h = np.maximum.reduce([h, o, close])
    lo = np.minimum.reduce([lo, o, close])
    return Bars(ts=bars.ts.copy(), open=o, high=h, low=lo, close=close, volume=v,
                symbols=tuple(f"PATH{i:05d}" for i in range(n)))


def _replicate(bars: Bars, n: int) -> Bars:
    return Bars(ts=bars.ts.copy(), **{k: np.repeat(getattr(bars, k)[:, :1], n, axis=1)
                                      for k in ("open", "high", "low", "close", "volume")},
                symbols=tuple(f"PATH{i:05d}" for i in range(n)))


class _PathSource:
    """What ``run_stepped`` reads from a warehouse, served from frames the chunk carries: every
    synthetic path shares the real series' history (the Trader's warm-up), VIX is the real one."""

    def __init__(self, history: pl.DataFrame, vix: pl.DataFrame | None, vix_key: tuple[str, str, str]) -> None:
        self.history, self.vix, self.vix_key = history, vix, vix_key
        self._slices: dict[tuple[bool, datetime | None, datetime | None], pl.DataFrame] = {}

    def read_bars(self, venue: str, symbol: str, timeframe: str, start: datetime | None = None,
                  end: datetime | None = None) -> pl.DataFrame:
        is_vix = (venue, symbol, timeframe) == self.vix_key and self.vix is not None
        key = (is_vix, start, end)  # every path asks for the same slice: cut it once
        f = self._slices.get(key)
        if f is None:
            f = self.vix if is_vix and self.vix is not None else self.history
            if start is not None:
                f = f.filter(pl.col("ts") >= start)
            if end is not None:
                f = f.filter(pl.col("ts") < end)
            self._slices[key] = f
        return f


@dataclass(frozen=True)
class MCChunk:
    """Everything one chunk needs (no warehouse): picklable for a Dask worker."""

    index: int
    seed: int
    n_paths: int
    mode: str
    block_bars: int
    request: BacktestRequest
    bars: Bars  # the real window, one symbol
    history: pl.DataFrame  # real bars before the window (strategy and Trader warm-up)
    vix: pl.DataFrame | None
    sampling: ExecutionSampling
    base_model: MarketModel
    device: str


@dataclass(frozen=True)
class ChunkResult:
    index: int
    final_equity: np.ndarray  # (n,)
    max_drawdown: np.ndarray  # (n,)
    equity: np.ndarray  # (T, n) float64
    draws: np.ndarray  # (n, len(DRAWN)): each path's execution draw; (0, len(DRAWN)) in bootstrap mode
    device: str
    model_hash: str


def _history_bars(frame: pl.DataFrame, n: int) -> Bars | None:
    if frame.height == 0:
        return None
    one = Bars(ts=frame["ts"].dt.epoch("ms").to_numpy().astype(np.int64),
               **{k: frame[k].cast(pl.Float64).to_numpy().reshape(-1, 1) for k in
                  ("open", "high", "low", "close", "volume")})
    return _replicate(one, n)


def run_chunk(chunk: MCChunk) -> ChunkResult:
    """Run one chunk: draw its paths and its execution model from its own seed, trade them."""
    from ..backtest.runner import position_rules_for, protection_for, warmed_signals
    from ..backtest.stepped import run_stepped
    from ..strategies import get_strategy
    from ..trading.batch import trade_signals as simulate_signals

    rng = np.random.default_rng(np.random.SeedSequence(chunk.seed))
    n = chunk.n_paths
    paths = bootstrap_paths(chunk.bars, n, chunk.block_bars, rng) if chunk.mode in ("bootstrap", "both") \
        else _replicate(chunk.bars, n)
    if chunk.mode in ("execution", "both"):
        drawn = [draw_model(chunk.base_model, chunk.sampling, rng) for _ in range(n)]
        model: MarketModel | PortfolioModels = PortfolioModels.of([m for m, _ in drawn], n)
        draws = np.array([[d[k] for k in DRAWN] for _, d in drawn], np.float64).reshape(n, len(DRAWN))
    else:
        model, draws = chunk.base_model, np.zeros((0, len(DRAWN)))
    engine_seed = int(rng.integers(0, 2**62))
    req = chunk.request
    strategy = get_strategy(req.strategy, req.params)
    if len(strategy.variants()) != 1:
        raise InvalidInput(f"montecarlo: strategy {req.strategy} must have one parameter set, not a grid")
    w = int(req.warmup_bars)
    hist = _history_bars(chunk.history.tail(w), n) if w > 0 else None
    entries, exits = warmed_signals(strategy, hist, paths)
    symbol_of = np.arange(n, dtype=np.int64)
    if req.risk is None:
        sim = simulate_signals(paths.ts, paths.open, paths.high, paths.low, paths.close, paths.volume,
                               entries=entries, exits=exits, symbol_of=symbol_of, model=model, cash=req.cash,
                               size_mode=req.sizing, size=req.size, short=req.short, device=chunk.device,
                               seed=engine_seed)
        equity, device = np.asarray(sim.equity, np.float64).reshape(paths.n_bars, n), str(sim.device)
    else:
        mf = req.risk.market_filter
        src = _PathSource(chunk.history, chunk.vix, (mf.vix_venue, mf.vix_symbol, mf.vix_timeframe))
        stepped_req = req.model_copy(update={"seed": engine_seed, "device": chunk.device})
        st = run_stepped(stepped_req, src, paths, entries, exits, symbol_of, symbol_of.copy(), model,
                         protection_for(stepped_req, strategy), f"mc-{chunk.index}", position_rules_for(strategy))
        equity, device = st.equity, chunk.device
    peak = np.maximum.accumulate(equity, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        mdd = np.where(peak > 0, equity / peak - 1.0, 0.0).min(axis=0)
    return ChunkResult(chunk.index, equity[-1].copy(), mdd, equity, draws, device, model.execution_model_hash())


@dataclass
class MCResult:
    """All paths of one crisis: per-path finals, percentiles, probability of ruin."""

    crisis: str
    venue: str
    symbol: str
    strategy: str
    risk: bool
    mode: str
    paths: int
    draws: int
    device: str
    seed: int
    cash: float
    ts: np.ndarray
    final_equity: np.ndarray
    max_drawdown: np.ndarray
    equity_bands: dict[str, np.ndarray]  # percentile -> (T,) equity across paths
    draws_used: np.ndarray  # (paths, len(DRAWN)) every path's execution draw; 0 rows in bootstrap mode
    execution_model_hash: str
    ruin_drawdown: float
    percentiles: tuple[float, ...]
    seconds: float = 0.0
    summary: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"crisis": self.crisis, "venue": self.venue, "symbol": self.symbol, "strategy": self.strategy,
                "risk": self.risk, "mode": self.mode, "paths": self.paths, "draws": self.draws,
                "device": self.device, "seed": self.seed, "seconds": round(self.seconds, 3),
                "paths_per_s": round(self.paths / self.seconds, 1) if self.seconds > 0 else None,
                "execution_model_hash": self.execution_model_hash, **self.summary}


def summarise(final_equity: np.ndarray, max_drawdown: np.ndarray, cash: float, ruin_drawdown: float,
              percentiles: tuple[float, ...]) -> dict[str, Any]:
    """Percentiles of final equity, total return and max drawdown; probability of ruin (a path whose
    drawdown reached ``-ruin_drawdown``)."""
    ret = final_equity / cash - 1.0

    def pct(x: np.ndarray) -> dict[str, float]:
        return {f"p{p:g}": float(np.percentile(x, p)) for p in percentiles} | {"mean": float(np.mean(x))}

    return {"final_equity": pct(final_equity), "total_return": pct(ret), "max_drawdown": pct(max_drawdown),
            "prob_ruin": float(np.mean(max_drawdown <= -ruin_drawdown)), "ruin_drawdown": ruin_drawdown,
            "prob_loss": float(np.mean(ret < 0))}


def build_chunks(request: BacktestRequest, warehouse: Any, mc: MonteCarloConfig, *, seed: int, key: str,
                 device: str = "cpu") -> list[MCChunk]:
    """Read the window, its history and VIX once; split ``mc.paths`` into seeded chunks."""
    from ..backtest.runner import build_market_model
    from ..backtest.stepped import history_lead
    from ..strategies.base import aligned_bars
    from ..timeframes import timeframe_ms

    frame = warehouse.read_bars(request.venue, request.symbol, request.timeframe, request.start, request.end)
    if frame.height < 3:
        raise InvalidInput(f"montecarlo {key}: {frame.height} {request.timeframe} bar(s) of {request.symbol} on "
                           f"{request.venue} from {request.start.date()} to {request.end.date()}: no data")
    bars = aligned_bars([frame], (request.symbol,))
    lead = max(history_lead(request.timeframe, request.resolved_calendar()),
               timedelta(milliseconds=timeframe_ms(request.timeframe) * (request.warmup_bars + 1)) * 1.6
               + timedelta(days=7))
    history = warehouse.read_bars(request.venue, request.symbol, request.timeframe, request.start - lead,
                                  request.start)
    vix = None
    if request.risk is not None:
        mf = request.risk.market_filter
        vix = warehouse.read_bars(mf.vix_venue, mf.vix_symbol, mf.vix_timeframe,
                                  request.start - timedelta(days=mf.max_vix_age_days + 10),
                                  request.end + timedelta(days=2))
    base = build_market_model(request)
    out, left, i = [], mc.paths, 0
    while left > 0:
        k = min(mc.paths_per_chunk, left)
        out.append(MCChunk(i, _seed(seed, key, i), k, mc.mode, mc.block_bars, request, bars, history, vix,
                           mc.execution, base, device))
        left -= k
        i += 1
    return out


def run_montecarlo(request: BacktestRequest, warehouse: Any, mc: MonteCarloConfig, *, seed: int, crisis: str,
                   device: str = "cpu", scheduler: str | None = None, client: Any = None,
                   timeout_s: float = 600.0) -> MCResult:
    """All paths of one window, chunked in-process or on Dask; identical for the same seed."""
    from .compute import map_chunks

    chunks = build_chunks(request, warehouse, mc, seed=seed, key=crisis, device=device)
    t0 = time.perf_counter()
    results = sorted(map_chunks(run_chunk, chunks, scheduler=scheduler, client=client,
                                        timeout_s=timeout_s), key=lambda r: r.index)
    seconds = time.perf_counter() - t0
    final = np.concatenate([r.final_equity for r in results])
    mdd = np.concatenate([r.max_drawdown for r in results])
    eq = np.hstack([r.equity for r in results])
    draws = np.vstack([r.draws for r in results])
    bands = {f"p{p:g}": np.percentile(eq, p, axis=1) for p in (5, 25, 50, 75, 95)}
    res = MCResult(crisis, request.venue, request.symbol, request.strategy, request.risk is not None, mc.mode,
                   int(final.size), int(draws.shape[0]), results[0].device, seed, request.cash, chunks[0].bars.ts,
                   final, mdd, bands, draws, results[0].model_hash if mc.mode == "bootstrap" else
                   hashlib.sha256("".join(r.model_hash for r in results).encode()).hexdigest(),
                   mc.ruin_drawdown, mc.percentiles, seconds)
    res.summary = summarise(final, mdd, request.cash, mc.ruin_drawdown, mc.percentiles)
    res.summary["execution"] = execution_effects(draws, final / request.cash - 1.0, mdd)
    return res


def spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    """Rank correlation of two samples; None when either is constant (no ordering to compare)."""
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    from scipy.stats import spearmanr  # lazy: only a Monte Carlo summary needs scipy.stats

    return float(spearmanr(x, y).statistic)


def execution_effects(draws: np.ndarray, total_return: np.ndarray, max_drawdown: np.ndarray) -> dict[str, Any]:
    """Per drawn assumption: its spread across paths and its rank correlation with each path's total
    return and max drawdown -- which execution assumption the strategy's outcome is sensitive to."""
    out: dict[str, Any] = {}
    if draws.shape[0] == 0:
        return out
    for j, name in enumerate(DRAWN):
        x = draws[:, j]
        out[name] = {"p5": float(np.percentile(x, 5)), "p50": float(np.percentile(x, 50)),
                     "p95": float(np.percentile(x, 95)), "min": float(x.min()), "max": float(x.max()),
                     "corr_total_return": spearman(x, total_return), "corr_max_drawdown": spearman(x, max_drawdown)}
    return out
