"""Configuration of the stress and stability jobs (the ``stress:`` section of config/trading.yaml).

Pydantic only (no NumPy, no engine) so ``trading_core.config`` can import it cheaply. Everything
that changes an outcome is a field here and is stored whole with every run (``stress.runs.config``).
The crisis catalogue lives in its own file (``config/crises.yaml``, ``crises_file``) because it is
data a user extends, not a tuning knob.
"""

from __future__ import annotations

import itertools
import math
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..symbols import Symbol, Venue
from ..timeframes import Timeframe

__all__ = [
    "ComputeConfig", "Crisis", "CrisisCatalogue", "CrisisTarget", "Distribution", "ExecutionSampling",
    "MonteCarloConfig", "SchedulesConfig", "StabilityConfig", "StrategySpec", "StressConfig", "SurvivalLimits",
    "SweepConfig", "WalkForwardConfig",
]

MAX_PATHS = 100_000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# ############# Crisis catalogue ############# #


class CrisisTarget(_Strict):
    """One series a crisis applies to."""

    venue: Venue
    symbol: Symbol
    timeframe: Timeframe


class Crisis(_Strict):
    """A named window: ``start`` inclusive, ``end`` inclusive (whole UTC days)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,47}$")  # a Dagster partition key and a path part
    title: str = Field(min_length=1, max_length=200)
    start: date
    end: date
    kind: Literal["equity", "crypto"]
    targets: tuple[CrisisTarget, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _order(self) -> Crisis:
        if self.end <= self.start:
            raise ValueError(f"crisis {self.name}: end {self.end} must be after start {self.start}")
        return self


class CrisisCatalogue(_Strict):
    """The whole ``config/crises.yaml`` file."""

    crises: tuple[Crisis, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> CrisisCatalogue:
        names = [c.name for c in self.crises]
        if len(set(names)) != len(names):
            raise ValueError(f"crisis names must be unique: {sorted(n for n in names if names.count(n) > 1)}")
        return self

    def get(self, name: str) -> Crisis:
        for c in self.crises:
            if c.name == name:
                return c
        raise KeyError(name)


# ############# Strategies, limits ############# #


class StrategySpec(_Strict):
    """A strategy the stress suite runs (buy-and-hold is always added as the baseline)."""

    name: str = Field(min_length=1, max_length=64)
    params: dict[str, str | float | int] = Field(default_factory=dict)


class SurvivalLimits(_Strict):
    """A window is survived when the drawdown stays above ``-max_drawdown`` and the final equity
    keeps at least ``min_final_equity`` of the starting cash."""

    max_drawdown: float = Field(default=0.35, gt=0, le=1)
    min_final_equity: float = Field(default=0.7, ge=0, le=10)


# ############# Monte Carlo ############# #


class Distribution(_Strict):
    """A scalar distribution: ``fixed`` (value), ``uniform`` (low..high), ``normal`` (mean, std,
    clipped to low..high), ``lognormal`` (median, sigma, clipped to low..high)."""

    kind: Literal["fixed", "uniform", "normal", "lognormal"] = "fixed"
    value: float = Field(default=0.0, ge=0, le=1e6)
    low: float = Field(default=0.0, ge=0, le=1e6)
    high: float = Field(default=0.0, ge=0, le=1e6)
    mean: float = Field(default=0.0, ge=0, le=1e6)
    std: float = Field(default=0.0, ge=0, le=1e6)

    @model_validator(mode="after")
    def _bounds(self) -> Distribution:
        if self.kind != "fixed" and self.high < self.low:
            raise ValueError(f"{self.kind} distribution: high {self.high} < low {self.low}")
        return self

    @property
    def is_constant(self) -> bool:
        return self.kind == "fixed" or (self.kind == "uniform" and self.low == self.high) or (
            self.kind in ("normal", "lognormal") and self.std == 0)


class ExecutionSampling(_Strict):
    """Distributions of the execution assumptions a Monte Carlo draw samples (bps, ms, probability)."""

    slippage_bps: Distribution = Distribution(kind="uniform", low=0.0, high=10.0)
    fee_bps: Distribution = Distribution(kind="uniform", low=0.0, high=10.0)
    latency_ms: Distribution = Distribution(kind="fixed", value=0.0)
    fill_prob: Distribution = Distribution(kind="uniform", low=0.9, high=1.0)

    @field_validator("fill_prob")
    @classmethod
    def _prob(cls, v: Distribution) -> Distribution:
        if max(v.value, v.high, v.mean if v.kind == "normal" else 0.0) > 1.0:
            raise ValueError("fill_prob must stay within [0, 1]")
        return v


class MonteCarloConfig(_Strict):
    """Paths per crisis; ``mode`` bootstrap (block bootstrap of the window's bar returns), execution
    (real bars, sampled execution assumptions) or both. Every path draws its own execution
    assumptions; ``paths_per_chunk`` paths are one engine call (one unit of parallel work)."""

    paths: int = Field(default=1000, ge=1, le=MAX_PATHS)
    paths_per_chunk: int = Field(default=100, ge=1, le=10_000)
    mode: Literal["bootstrap", "execution", "both"] = "both"
    block_bars: int = Field(default=10, ge=1, le=10_000)
    ruin_drawdown: float = Field(default=0.5, gt=0, le=1)
    percentiles: tuple[float, ...] = (1.0, 5.0, 25.0, 50.0, 75.0, 95.0, 99.0)
    strategy: StrategySpec = StrategySpec(name="ma_crossover", params={"fast": 10, "slow": 30})
    risk: bool = True
    execution: ExecutionSampling = ExecutionSampling()

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        if isinstance(data, dict) and "paths_per_draw" in data:
            raise ValueError("paths_per_draw was replaced by paths_per_chunk: every path now draws its own "
                             "execution assumptions, and paths_per_chunk only sets how many paths one engine "
                             "call (one unit of parallel work) holds")
        return data

    @field_validator("percentiles")
    @classmethod
    def _pct(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if not v or any(not 0 <= p <= 100 for p in v):
            raise ValueError("percentiles must be in [0, 100]")
        return tuple(sorted(set(v)))


# ############# Stability ############# #


class SweepConfig(_Strict):
    """A parameter grid of one strategy on one series: every combination is one portfolio of ONE
    kernel call. ``metric`` is what the sweep maximises."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,47}$")
    strategy: str = Field(min_length=1, max_length=64)
    venue: Venue
    symbol: Symbol
    timeframe: Timeframe
    start: date
    end: date
    grid: dict[str, tuple[int | float, ...]] = Field(min_length=1, max_length=2)
    fixed: dict[str, str | float | int] = Field(default_factory=dict)
    metric: Literal["sharpe", "total_return", "calmar"] = "sharpe"

    @field_validator("grid")
    @classmethod
    def _grid(cls, v: dict[str, tuple[int | float, ...]]) -> dict[str, tuple[int | float, ...]]:
        for k, vals in v.items():
            if not vals or len(set(vals)) != len(vals) or any(not math.isfinite(float(x)) for x in vals):
                raise ValueError(f"grid {k}: values must be distinct finite numbers")
        if math.prod(len(x) for x in v.values()) > 2000:
            raise ValueError("grid has more than 2000 combinations")
        return {k: tuple(sorted(vals)) for k, vals in v.items()}

    def combinations(self) -> list[dict[str, int | float]]:
        keys = list(self.grid)
        return [dict(zip(keys, vals, strict=True)) for vals in itertools.product(*(self.grid[k] for k in keys))]


class WalkForwardConfig(_Strict):
    """Folds over the sweep's bars: train ``train_bars`` (rolling) or everything so far (anchored),
    then test the chosen parameters on the next ``test_bars``."""

    mode: Literal["rolling", "anchored"] = "rolling"
    train_bars: int = Field(default=500, ge=20, le=1_000_000)
    test_bars: int = Field(default=125, ge=5, le=1_000_000)
    max_folds: int = Field(default=12, ge=1, le=200)
    select: Literal["best", "robust"] = "robust"


class StabilityConfig(_Strict):
    """Sweeps and walk-forward settings; ``radius`` is the neighbourhood (grid steps) the plateau
    score averages over; a parameter set is flagged overfit when its out-of-sample metric keeps less
    than ``overfit_ratio`` of the in-sample one (or turns negative)."""

    sweeps: tuple[SweepConfig, ...] = (
        SweepConfig(name="gspc_ma", strategy="ma_crossover", venue="yahoo", symbol="^GSPC", timeframe="1d",
                    start=date(2003, 1, 1), end=date(2018, 12, 31),
                    grid={"fast": (5, 10, 15, 20, 30), "slow": (40, 60, 80, 100, 150)}),
    )
    walk_forward: WalkForwardConfig = WalkForwardConfig()
    radius: int = Field(default=1, ge=1, le=5)
    overfit_ratio: float = Field(default=0.3, ge=0, le=1)


# ############# Scheduling, compute ############# #


class SchedulesConfig(_Strict):
    """Cron strings (UTC) of the Dagster schedules; ``enabled`` false leaves them stopped."""

    stress_cron: str = Field(default="0 3 * * 6", min_length=9, max_length=64)
    stability_cron: str = Field(default="30 2 * * *", min_length=9, max_length=64)
    enabled: bool = True


class ComputeConfig(_Strict):
    """Where chunks run: in-process (``dask_scheduler`` None, the default) or on the Dask
    distributed scheduler at that address (``tcp://host:8786``). ``device`` is the engine's."""

    dask_scheduler: str | None = Field(default=None, pattern=r"^(tcp|tls|inproc|ucx)://[A-Za-z0-9_.\-\[\]:/]+$")
    device: Literal["auto", "cpu", "cuda"] = "cpu"
    timeout_s: float = Field(default=600.0, gt=0, le=86_400)


class StressConfig(_Strict):
    """The ``stress:`` section."""

    crises_file: Path = Path("config/crises.yaml")
    strategies: tuple[StrategySpec, ...] = (
        StrategySpec(name="ma_crossover", params={"fast": 10, "slow": 30}),
        StrategySpec(name="rsi_mean_reversion"),
        StrategySpec(name="macd"),
        StrategySpec(name="bollinger_breakout"),
    )
    cash: float = Field(default=100_000.0, gt=0, le=1e15)
    warmup_bars: int = Field(default=200, ge=0, le=100_000)
    baseline_days: int = Field(default=365, ge=30, le=20_000)
    seed: int = Field(default=7, ge=0, le=2**63 - 1)
    limits: SurvivalLimits = SurvivalLimits()
    montecarlo: MonteCarloConfig = MonteCarloConfig()
    stability: StabilityConfig = StabilityConfig()
    schedules: SchedulesConfig = SchedulesConfig()
    compute: ComputeConfig = ComputeConfig()
