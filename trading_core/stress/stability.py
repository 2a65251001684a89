"""Parameter stability: grid sweeps on the many-portfolio kernel, walk-forward optimisation, plateau
scores, optimum drift, sensitivity surfaces and an overfit flag.

A sweep is every combination of a grid as one portfolio of ONE ``simulate_signals`` call on the
same bars (the kernel steps them together). The plateau score asks whether the optimum sits on a
plateau -- its neighbours nearly as good -- or on a lucky spike: ``robustness`` of a cell is the
mean minus the standard deviation of the metric over its grid neighbourhood, and the sweep's
``plateau_score`` is the robustness of the best cell over the best value (1: a flat plateau; near
or below 0: a spike). Walk-forward chooses parameters on each training fold only and tests them on
the next fold, so no test bar ever enters a selection (pinned by a test).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from ..errors import InvalidInput
from ..strategies import Bars
from .config import StabilityConfig, SweepConfig, WalkForwardConfig

__all__ = ["FoldResult", "StabilityResult", "Surface", "evaluate_grid", "plateau_score", "robustness",
           "run_stability", "sensitivity", "split_folds", "walk_forward"]


@dataclass(frozen=True)
class Surface:
    """The metric of every grid combination on one period; ``values`` is shaped by the grid."""

    keys: tuple[str, ...]
    axes: tuple[tuple[float, ...], ...]
    values: np.ndarray
    start_ms: int
    end_ms: int

    def params_at(self, idx: tuple[int, ...]) -> dict[str, float]:
        return {k: _num(self.axes[d][i]) for d, (k, i) in enumerate(zip(self.keys, idx, strict=True))}

    def best(self) -> tuple[int, ...]:
        v = np.where(np.isfinite(self.values), self.values, -np.inf)
        return tuple(int(i) for i in np.unravel_index(int(np.argmax(v)), v.shape))


def _num(x: Any) -> float:
    f = float(x)
    return int(f) if f.is_integer() else f  # type: ignore[return-value]


def robustness(values: np.ndarray, radius: int = 1) -> np.ndarray:
    """Per cell: mean minus standard deviation of the finite metric values within ``radius`` grid
    steps (Chebyshev) -- high only where the neighbourhood is high AND even."""
    v = np.asarray(values, np.float64)
    out = np.full(v.shape, np.nan)
    for idx in np.ndindex(v.shape):
        sl = tuple(slice(max(0, i - radius), i + radius + 1) for i in idx)
        nb = v[sl]
        nb = nb[np.isfinite(nb)]
        if np.isfinite(v[idx]) and nb.size:
            out[idx] = float(nb.mean() - nb.std())
    return out


def plateau_score(values: np.ndarray, radius: int = 1, at: tuple[int, ...] | None = None) -> float | None:
    """Robustness of cell ``at`` (default: the best) over its value; None when that is not positive."""
    v = np.asarray(values, np.float64)
    if at is None:
        at = tuple(int(i) for i in np.unravel_index(int(np.nanargmax(np.where(np.isfinite(v), v, -np.inf))), v.shape))
    peak = v[at]
    if not np.isfinite(peak) or peak <= 0:
        return None
    return float(robustness(v, radius)[at] / peak)


def sensitivity(surface: Surface, at: tuple[int, ...]) -> dict[str, list[float | None]]:
    """1-D slices through ``at``: the metric along each parameter with the others held."""
    out: dict[str, list[float | None]] = {}
    for d, k in enumerate(surface.keys):
        sl = tuple(slice(None) if j == d else at[j] for j in range(len(at)))
        out[k] = [float(x) if np.isfinite(x) else None for x in surface.values[sl]]
    return out


# ############# Evaluating a grid ############# #


@dataclass(frozen=True)
class GridTask:
    """One grid on one period (picklable: a Dask chunk). ``bars`` may start with warm-up bars: only
    rows from ``first`` on are traded and scored."""

    sweep: SweepConfig
    bars: Bars
    first: int
    venue_config: dict[str, Any]
    calendar: str
    cash: float
    device: str
    tag: tuple[int, str]  # (fold, phase)


def evaluate_grid(task: GridTask) -> tuple[tuple[int, str], Surface]:
    """Every combination of the grid as one portfolio of one kernel call; invalid combinations
    (a strategy refusing the parameters, e.g. fast >= slow) score NaN."""
    from ..analytics.metrics import compute_metrics
    from ..backtest.runner import warmed_signals
    from ..engine import MarketModel
    from ..strategies import get_strategy
    from ..trading.batch import trade_signals as simulate_signals

    sw, b, f = task.sweep, task.bars, task.first
    hist = Bars(ts=b.ts[:f], open=b.open[:f], high=b.high[:f], low=b.low[:f], close=b.close[:f],
                volume=b.volume[:f], symbols=b.symbols) if f > 0 else None
    run = Bars(ts=b.ts[f:], open=b.open[f:], high=b.high[f:], low=b.low[f:], close=b.close[f:],
               volume=b.volume[f:], symbols=b.symbols)
    combos = sw.combinations()
    T = run.n_bars
    ent = np.zeros((T, len(combos)), np.bool_)
    ext = np.zeros((T, len(combos)), np.bool_)
    ok = np.zeros(len(combos), np.bool_)
    for p, combo in enumerate(combos):
        try:
            strat = get_strategy(sw.strategy, {**sw.fixed, **combo})
        except InvalidInput:
            continue
        e, x = warmed_signals(strat, hist, run)
        ent[:, p], ext[:, p], ok[p] = e[:, 0], x[:, 0], True
    model = MarketModel.from_venue_config(dict(task.venue_config), sw.venue) if task.venue_config else MarketModel()
    sim = simulate_signals(run.ts, run.open, run.high, run.low, run.close, run.volume, entries=ent, exits=ext,
                           model=model, cash=task.cash, device=task.device)
    eq = np.asarray(sim.equity, np.float64).reshape(T, -1)
    vals = np.full(len(combos), np.nan)
    for p in (int(i) for i in np.flatnonzero(ok)):
        m = compute_metrics(eq[:, p], timeframe=sw.timeframe, calendar=task.calendar, ts=run.ts)
        v = getattr(m, sw.metric)
        vals[p] = float(v) if v is not None and math.isfinite(v) else np.nan
    keys = tuple(sw.grid)
    axes = tuple(tuple(float(x) for x in sw.grid[k]) for k in keys)
    shape = tuple(len(a) for a in axes)
    return task.tag, Surface(keys, axes, vals.reshape(shape), int(run.ts[0]), int(run.ts[-1]))


# ############# Walk-forward ############# #


def split_folds(n_bars: int, wf: WalkForwardConfig) -> list[tuple[int, int, int, int]]:
    """(train_start, train_end, test_start, test_end) bar indices, ends exclusive; a test fold
    always starts where its training ends, and never overlaps it."""
    out: list[tuple[int, int, int, int]] = []
    k = 0
    while len(out) < wf.max_folds:
        train_end = wf.train_bars + k * wf.test_bars
        test_end = train_end + wf.test_bars
        if test_end > n_bars:
            break
        train_start = 0 if wf.mode == "anchored" else train_end - wf.train_bars
        out.append((train_start, train_end, train_end, test_end))
        k += 1
    return out


@dataclass(frozen=True)
class FoldResult:
    fold: int
    train: Surface
    test: Surface
    chosen: tuple[int, ...]
    in_sample: float
    out_of_sample: float


def _slice(b: Bars, lo: int, hi: int) -> Bars:
    return Bars(ts=b.ts[lo:hi], open=b.open[lo:hi], high=b.high[lo:hi], low=b.low[lo:hi], close=b.close[lo:hi],
                volume=b.volume[lo:hi], symbols=b.symbols)


def _choose(surface: Surface, select: str, radius: int) -> tuple[int, ...]:
    if select == "best":
        return surface.best()
    r = robustness(surface.values, radius)
    r = np.where(np.isfinite(r), r, -np.inf)
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(r)), r.shape))


def walk_forward(sweep: SweepConfig, bars: Bars, wf: WalkForwardConfig, *, radius: int, warmup: int,
                 venue_config: dict[str, Any], calendar: str, cash: float, device: str = "cpu",
                 scheduler: str | None = None, client: Any = None, timeout_s: float = 600.0) -> list[FoldResult]:
    """Choose on each training fold (its bars and the ``warmup`` bars before it only), test on the
    next fold (warmed on the bars before it). Folds run as chunks (in-process or Dask)."""
    from .compute import map_chunks

    tasks = []
    for i, (a, b, c, d) in enumerate(split_folds(bars.n_bars, wf)):
        wa, wc = max(0, a - warmup), max(0, c - warmup)
        tasks.append(GridTask(sweep, _slice(bars, wa, b), a - wa, venue_config, calendar, cash, device, (i, "in_sample")))
        tasks.append(GridTask(sweep, _slice(bars, wc, d), c - wc, venue_config, calendar, cash, device,
                              (i, "out_of_sample")))
    got = dict(map_chunks(evaluate_grid, tasks, scheduler=scheduler, client=client, timeout_s=timeout_s))
    out = []
    for i in range(len(tasks) // 2):
        tr, te = got[(i, "in_sample")], got[(i, "out_of_sample")]
        at = _choose(tr, wf.select, radius)
        out.append(FoldResult(i, tr, te, at, float(tr.values[at]), float(te.values[at])))
    return out


# ############# One sweep, whole ############# #


@dataclass
class StabilityResult:
    sweep: SweepConfig
    full: Surface
    folds: list[FoldResult]
    radius: int
    overfit_ratio: float
    summary: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        full, best = self.full, self.full.best()
        rob = robustness(full.values, self.radius)
        robust_at = tuple(int(i) for i in np.unravel_index(int(np.argmax(np.where(np.isfinite(rob), rob, -np.inf))),
                                                         rob.shape))
        is_ = [f.in_sample for f in self.folds if math.isfinite(f.in_sample)]
        oos = [f.out_of_sample for f in self.folds if math.isfinite(f.out_of_sample)]
        is_m = float(np.mean(is_)) if is_ else None
        oos_m = float(np.mean(oos)) if oos else None
        drift = None
        if len(self.folds) > 1:
            parts = []
            for d, axis in enumerate(full.axes):
                if len(axis) > 1:
                    chosen = [axis[f.chosen[d]] for f in self.folds]
                    parts.append(float(np.std(chosen) / (max(axis) - min(axis))))
            drift = float(np.mean(parts)) if parts else 0.0
        overfit = bool(is_m is not None and oos_m is not None and is_m > 0 and
                       (oos_m < 0 or oos_m < self.overfit_ratio * is_m))
        self.summary = {
            "sweep": self.sweep.name, "strategy": self.sweep.strategy, "metric": self.sweep.metric,
            "best_params": full.params_at(best), "best_value": _f(full.values[best]),
            "robust_params": full.params_at(robust_at), "robust_value": _f(full.values[robust_at]),
            "plateau_score": plateau_score(full.values, self.radius, best),
            "optimum_drift": drift, "in_sample": is_m, "out_of_sample": oos_m, "overfit": overfit,
            "folds": [{"fold": f.fold, "chosen": full.params_at(f.chosen), "in_sample": _f(f.in_sample),
                       "out_of_sample": _f(f.out_of_sample),
                       "train": [_iso(f.train.start_ms), _iso(f.train.end_ms)],
                       "test": [_iso(f.test.start_ms), _iso(f.test.end_ms)]} for f in self.folds],
            "sensitivity": sensitivity(full, best),
            "surface": {"keys": list(full.keys), "axes": [list(a) for a in full.axes],
                        "values": [[_f(x) for x in row] for row in np.atleast_2d(full.values)]},
        }

    def history_rows(self) -> list[dict[str, Any]]:
        """Every evaluated cell: the full-range sweep (fold -1) and each fold's both phases."""
        rows: list[dict[str, Any]] = []

        def add(s: Surface, fold: int, phase: str, chosen: tuple[int, ...] | None) -> None:
            rob = robustness(s.values, self.radius)
            for idx in np.ndindex(s.values.shape):
                p = s.params_at(idx)
                rows.append({"sweep": self.sweep.name, "fold": fold, "phase": phase, "strategy": self.sweep.strategy,
                             "params": p, "params_key": json.dumps(p, sort_keys=True),
                             "period_start": _dt(s.start_ms), "period_end": _dt(s.end_ms),
                             "metric": self.sweep.metric, "value": _f(s.values[idx]), "robustness": _f(rob[idx]),
                             "chosen": chosen == idx})

        add(self.full, -1, "full", self.full.best())
        for f in self.folds:
            add(f.train, f.fold, "in_sample", f.chosen)
            add(f.test, f.fold, "out_of_sample", f.chosen)
        return rows


def _f(x: Any) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000.0, tz=UTC)


def _iso(ms: int) -> str:
    return _dt(ms).isoformat()


def load_sweep_bars(sweep: SweepConfig, warehouse: Any) -> Bars:
    """The sweep's bars from the warehouse; fewer than needed is ``no data`` naming the series."""
    from ..strategies.base import aligned_bars
    from .catalogue import window

    start, end = window((sweep.start, sweep.end))
    frame = warehouse.read_bars(sweep.venue, sweep.symbol, sweep.timeframe, start, end)
    if frame.height < 30:
        raise InvalidInput(f"stability sweep {sweep.name}: {frame.height} {sweep.timeframe} bar(s) of {sweep.symbol} "
                           f"on {sweep.venue} in {sweep.start} .. {sweep.end}: no data; ingest them first")
    return aligned_bars([frame], (sweep.symbol,))


def run_stability(sweep: SweepConfig, warehouse: Any, cfg: StabilityConfig, *, venue_config: dict[str, Any],
                  calendar: str, cash: float, warmup: int, device: str = "cpu", scheduler: str | None = None,
                  client: Any = None, timeout_s: float = 600.0) -> StabilityResult:
    """The full-range sweep plus walk-forward folds of one configured sweep."""
    bars = load_sweep_bars(sweep, warehouse)
    _, full = evaluate_grid(GridTask(sweep, bars, 0, venue_config, calendar, cash, device, (-1, "full")))
    folds = walk_forward(sweep, bars, cfg.walk_forward, radius=cfg.radius, warmup=warmup, venue_config=venue_config,
                         calendar=calendar, cash=cash, device=device, scheduler=scheduler, client=client,
                         timeout_s=timeout_s)
    return StabilityResult(sweep, full, folds, cfg.radius, cfg.overfit_ratio)
