"""The market model: costs, fill realism and exchange rules of one venue.

A ``MarketModel`` is an immutable value. It is built in code or from the ``venues:`` section of the
config (validated by pydantic), and hashes to a stable ``execution_model_hash()`` so every result
can say exactly which execution assumptions produced it. ``PortfolioModels`` gives every portfolio of
a kernel call its model (one shared, or one each) as the arrays the kernels read.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from trading_core.engine import enums as E

FillAt = Literal["close", "next_open"]
LatencyKind = Literal["none", "fixed", "uniform", "exponential"]


@dataclass(frozen=True)
class FeeTier:
    """Fees that apply once the account's rolling 30-day traded notional reaches ``min_volume_30d``."""

    min_volume_30d: float = 0.0
    maker_bps: float = 10.0
    taker_bps: float = 10.0


@dataclass(frozen=True)
class MarketModel:
    """Every execution assumption of the engine; defaults documented in docs/simulation.md."""

    fill_at: FillAt = "next_open"
    fee_tiers: tuple[FeeTier, ...] = (FeeTier(),)
    spread_bps: float = 0.0
    slippage_bps: float = 0.0
    impact_coef: float = 0.0
    vol_halflife_bars: float = 20.0
    participation_rate: float = 0.0
    touch_fill_prob: float = 1.0
    reject_prob: float = 0.0
    tick_size: float = 0.0
    lot_size: float = 0.0
    min_notional: float = 0.0
    max_orders_per_interval: int = 0
    rate_interval_bars: int = 1
    allow_short: bool = False
    short_margin: float = 1.0
    borrow_rate_annual: float = 0.0
    latency_kind: LatencyKind = "none"
    latency_unit: Literal["bars", "ms"] = "bars"
    latency_a: float = 0.0
    latency_b: float = 0.0
    risk_stop_pct: float = 0.02
    max_open_orders: int = 16
    rng_pool: int = 4096
    venue: str = "default"
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.fill_at not in ("close", "next_open"):
            raise ValueError(f"fill_at must be 'close' or 'next_open', got {self.fill_at!r}")
        if not self.fee_tiers:
            raise ValueError("fee_tiers must hold at least one tier")
        mins = [t.min_volume_30d for t in self.fee_tiers]
        if mins != sorted(mins) or mins[0] != 0.0:
            raise ValueError("fee_tiers must be sorted by min_volume_30d and start at 0")
        for name in ("participation_rate", "touch_fill_prob", "reject_prob"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {v}")
        if self.max_open_orders < 2 or self.rng_pool < 1 or self.rate_interval_bars < 1:
            raise ValueError("max_open_orders >= 2, rng_pool >= 1, rate_interval_bars >= 1")

    # ---- identity -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("extra")
        return d

    def execution_model_hash(self) -> str:
        """sha256 of the canonical JSON of every parameter: equal hashes mean equal execution rules."""
        return self._hash

    @functools.cached_property
    def _hash(self) -> str:  # the model is immutable: hash it once (every result and checkpoint asks)
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(blob.encode()).hexdigest()

    def replace(self, **changes: Any) -> MarketModel:
        return dataclasses.replace(self, **changes)

    @property
    def uses_rng(self) -> bool:
        return self.touch_fill_prob < 1.0 or self.reject_prob > 0.0 or self.latency_kind in (
            "uniform", "exponential")

    @classmethod
    def from_venue_config(cls, config: dict[str, Any], venue: str | None = None, **overrides: Any) -> MarketModel:
        """Build from ``{venues: {name: {...}}}`` (or one venue's dict); validated by ``VenueConfig``."""
        if "venues" in config:
            venues = config["venues"]
            if venue is None:
                if len(venues) != 1:
                    raise ValueError(f"several venues configured ({sorted(venues)}): name one")
                venue = next(iter(venues))
            if venue not in venues:
                raise ValueError(f"venue {venue!r} not configured (have {sorted(venues)})")
            raw = venues[venue]
        else:
            raw, venue = config, venue or "default"
        vc = VenueConfig.model_validate(raw)
        return vc.to_model(venue, **overrides)

    # ---- kernel form ------------------------------------------------------------------------
    def kernel_row(self, bar_ms: float) -> tuple[np.ndarray, np.ndarray]:
        """This model's (mp (N_MP,), tiers (n, 3)) row: the numbers a portfolio may hold on its own."""
        mp = np.zeros(E.N_MP, np.float64)
        scale = 1.0 / bar_ms if self.latency_unit == "ms" else 1.0
        mp[E.MP_SPREAD_BPS] = self.spread_bps
        mp[E.MP_SLIP_BPS] = self.slippage_bps
        mp[E.MP_IMPACT] = self.impact_coef
        mp[E.MP_PART] = self.participation_rate
        mp[E.MP_TOUCH] = self.touch_fill_prob
        mp[E.MP_REJECT] = self.reject_prob
        mp[E.MP_TICK] = self.tick_size
        mp[E.MP_LOT] = self.lot_size
        mp[E.MP_MIN_NOTIONAL] = self.min_notional
        mp[E.MP_MARGIN] = self.short_margin
        mp[E.MP_BORROW] = self.borrow_rate_annual * bar_ms / (365.0 * 86_400_000.0)
        mp[E.MP_LAT_A] = self.latency_a * scale
        mp[E.MP_LAT_B] = self.latency_b * scale
        mp[E.MP_RISK_STOP] = self.risk_stop_pct
        tiers = np.array([[t.min_volume_30d, t.maker_bps, t.taker_bps] for t in self.fee_tiers], np.float64)
        return mp, tiers

    def kernel_flags(self, *, allow_short: bool | None = None) -> np.ndarray:
        """The (N_MI,) switches of the kernel: fill timing, latency kind, rate limit, tiers, shorting."""
        mi = np.zeros(E.N_MI, np.int64)
        mi[E.MI_FILL_NEXT] = 1 if self.fill_at == "next_open" else 0
        mi[E.MI_LAT_KIND] = {"none": E.LAT_NONE, "fixed": E.LAT_FIXED, "uniform": E.LAT_UNIFORM,
                             "exponential": E.LAT_EXP}[self.latency_kind]
        mi[E.MI_RATE_MAX] = self.max_orders_per_interval
        mi[E.MI_RATE_BARS] = self.rate_interval_bars
        mi[E.MI_N_TIERS] = len(self.fee_tiers)
        mi[E.MI_ALLOW_SHORT] = int(self.allow_short if allow_short is None else allow_short)
        mi[E.MI_SERIES] = 1
        return mi

    def venue_rules(self) -> dict[str, Any]:
        """Everything but the per-portfolio numbers: what the portfolios of one kernel call share."""
        return dict(zip((*_VENUE_FIELDS, "fee_tiers"), self._venue_key(), strict=True))

    def _venue_key(self) -> tuple[Any, ...]:
        """``venue_rules()`` values as one tuple (compared for every portfolio of a call)."""
        return (*(getattr(self, k) for k in _VENUE_FIELDS), tuple(t.min_volume_30d for t in self.fee_tiers))

    def own_numbers(self) -> list[Any]:
        """The per-portfolio numbers (``PER_PORTFOLIO``), fee tiers as their (maker, taker) bps."""
        return [[[t.maker_bps, t.taker_bps] for t in self.fee_tiers] if k == "fee_tiers" else getattr(self, k)
                for k in PER_PORTFOLIO]

    def vol_lambda(self) -> float:
        """EWMA decay of the per-bar squared log return used by the impact model."""
        return math.exp(math.log(0.5) / self.vol_halflife_bars)


# Costs and probabilities one portfolio may hold on its own inside a kernel call (a Monte Carlo path
# with its own slippage, fees, fill probability and latency); fee tiers may differ in their bps.
# Every other field is the venue's rules and the kernel's switches, shared by all portfolios.
PER_PORTFOLIO = ("spread_bps", "slippage_bps", "impact_coef", "touch_fill_prob", "reject_prob",
                 "borrow_rate_annual", "latency_a", "latency_b", "fee_tiers")


_VENUE_FIELDS = tuple(f.name for f in dataclasses.fields(MarketModel) if f.name not in PER_PORTFOLIO and f.name != "extra")


@dataclass(frozen=True)
class PortfolioModels:
    """The market model of every portfolio of one kernel call: one shared by all, or one each.

    One mechanism for both: the kernels read row ``p`` of (P, N_MP) / (P, n_tiers, 3) arrays, and a
    shared model is one row broadcast with stride 0. Models given per portfolio must share
    ``venue_rules()``; identical ones collapse to a single shared model (same hash as before)."""

    models: tuple[MarketModel, ...]

    @classmethod
    def of(cls, model: MarketModel | PortfolioModels | Sequence[MarketModel] | None, n_portfolios: int
           ) -> PortfolioModels:
        if isinstance(model, PortfolioModels):
            if not model.shared and len(model.models) != n_portfolios:
                raise ValueError(f"{len(model.models)} market models for {n_portfolios} portfolios")
            return model
        if model is None or isinstance(model, MarketModel):
            models: tuple[MarketModel, ...] = (model or MarketModel(),)
        else:
            models = tuple(model)
            if len(models) != n_portfolios:
                raise ValueError(f"{len(models)} market models for {n_portfolios} portfolios: give one, or one each")
        if len(models) > 1:
            key = models[0]._venue_key()
            for i, m in enumerate(models[1:], 1):
                if m._venue_key() != key:
                    rules = models[0].venue_rules()
                    diff = sorted(k for k, v in m.venue_rules().items() if rules.get(k) != v)
                    raise ValueError(f"market model of portfolio {i} differs from portfolio 0 in {diff}: portfolios "
                                     f"of one call may differ only in {', '.join(PER_PORTFOLIO)}")
            if all(m == models[0] for m in models[1:]):
                models = models[:1]
        return cls(models)

    @property
    def base(self) -> MarketModel:
        """Portfolio 0's model: every venue rule (lot, tick, fill timing, ...) is the same in all."""
        return self.models[0]

    @property
    def shared(self) -> bool:
        return len(self.models) == 1

    @property
    def uses_rng(self) -> bool:
        return any(m.uses_rng for m in self.models)

    @property
    def impact_on(self) -> bool:
        return any(m.impact_coef > 0 for m in self.models)

    def execution_model_hash(self) -> str:
        """The shared model's hash; else sha256 of portfolio 0's hash and every portfolio's own numbers,
        in order (one JSON document: a thousand Monte Carlo paths hash in about a millisecond)."""
        return self._hash

    @functools.cached_property
    def _hash(self) -> str:
        if self.shared:
            return self.base.execution_model_hash()
        blob = json.dumps({"venue": self.base.execution_model_hash(), "own": [m.own_numbers() for m in self.models]},
                          separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def arrays(self, n_portfolios: int, bar_ms: float, *, allow_short: bool | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mp (P, N_MP), mi (N_MI,), tiers (P, n, 3)) for the kernels; a shared row has stride 0."""
        rows = [m.kernel_row(bar_ms) for m in self.models]
        mp = np.stack([r[0] for r in rows])
        tiers = np.stack([r[1] for r in rows])
        return (per_portfolio(mp, n_portfolios), self.base.kernel_flags(allow_short=allow_short),
                per_portfolio(tiers, n_portfolios))


def per_portfolio(rows: np.ndarray, n_portfolios: int) -> np.ndarray:
    """``rows`` (1 or P, ...) as a (P, ...) array: one row is broadcast with stride 0 (writable view,
    so the kernels' explicit signatures accept it; nothing writes it)."""
    if rows.shape[0] == n_portfolios:
        return rows
    if rows.shape[0] != 1:
        raise ValueError(f"{rows.shape[0]} model rows for {n_portfolios} portfolios")
    return np.lib.stride_tricks.as_strided(rows, (max(n_portfolios, 1), *rows.shape[1:]), (0, *rows.strides[1:]),
                                           writeable=True)


# ############# Config validation ############# #


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TierConfig(_Strict):
    min_volume_30d: float = Field(default=0.0, ge=0)
    maker_bps: float = Field(default=10.0, ge=-100, le=1000)
    taker_bps: float = Field(default=10.0, ge=0, le=1000)


class FeesConfig(_Strict):
    tiers: list[TierConfig] = Field(default_factory=lambda: [TierConfig()], min_length=1)

    @model_validator(mode="after")
    def _sorted(self) -> FeesConfig:
        mins = [t.min_volume_30d for t in self.tiers]
        if mins != sorted(mins) or mins[0] != 0.0:
            raise ValueError("fee tiers must be sorted by min_volume_30d and the first must start at 0")
        return self


class LatencyConfig(_Strict):
    kind: LatencyKind = "none"
    unit: Literal["bars", "ms"] = "bars"
    a: float = Field(default=0.0, ge=0)
    b: float = Field(default=0.0, ge=0)


class RateLimitConfig(_Strict):
    max_orders: int = Field(default=0, ge=0)
    interval_bars: int = Field(default=1, ge=1)


class ShortConfig(_Strict):
    allowed: bool = False
    margin: float = Field(default=1.0, gt=0)
    borrow_rate_annual: float = Field(default=0.0, ge=0)


class VenueConfig(_Strict):
    """One venue's fee schedule and exchange rules, as written under ``venues.<name>`` in config."""

    fees: FeesConfig = FeesConfig()
    tick_size: float = Field(default=0.0, ge=0)
    lot_size: float = Field(default=0.0, ge=0)
    min_notional: float = Field(default=0.0, ge=0)
    spread_bps: float = Field(default=0.0, ge=0)
    slippage_bps: float = Field(default=0.0, ge=0)
    impact_coef: float = Field(default=0.0, ge=0)
    vol_halflife_bars: float = Field(default=20.0, gt=0)
    participation_rate: float = Field(default=0.0, ge=0, le=1)
    touch_fill_prob: float = Field(default=1.0, ge=0, le=1)
    reject_prob: float = Field(default=0.0, ge=0, le=1)
    fill_at: FillAt = "next_open"
    rate_limit: RateLimitConfig = RateLimitConfig()
    latency: LatencyConfig = LatencyConfig()
    short: ShortConfig = ShortConfig()
    max_open_orders: int = Field(default=16, ge=2, le=1024)

    def to_model(self, venue: str, **overrides: Any) -> MarketModel:
        kw: dict[str, Any] = dict(
            venue=venue, fill_at=self.fill_at,
            fee_tiers=tuple(FeeTier(t.min_volume_30d, t.maker_bps, t.taker_bps) for t in self.fees.tiers),
            tick_size=self.tick_size, lot_size=self.lot_size, min_notional=self.min_notional,
            spread_bps=self.spread_bps, slippage_bps=self.slippage_bps, impact_coef=self.impact_coef,
            vol_halflife_bars=self.vol_halflife_bars, participation_rate=self.participation_rate,
            touch_fill_prob=self.touch_fill_prob, reject_prob=self.reject_prob,
            max_orders_per_interval=self.rate_limit.max_orders, rate_interval_bars=self.rate_limit.interval_bars,
            latency_kind=self.latency.kind, latency_unit=self.latency.unit, latency_a=self.latency.a,
            latency_b=self.latency.b, allow_short=self.short.allowed, short_margin=self.short.margin,
            borrow_rate_annual=self.short.borrow_rate_annual, max_open_orders=self.max_open_orders,
        )
        kw.update(overrides)
        return MarketModel(**kw)
