"""Regime rotation: a meta-strategy that runs the member strategies configured for each regime.

The regime of bar t comes from ``trading_core.features`` (``compute_features`` then
``label_regimes``) computed on the same bars the strategy sees; both are causal scans, so the
label at t uses bars up to t only (no look-ahead; a test checks that truncating the bars leaves
earlier labels unchanged). During the features' warm-up there is no label and nothing is active.

At bar t the active members are ``mapping[regime[t]]``; the rotation's entry fires when any
active member's entry fires, its exit when any active member's exit fires, and -- because a
position opened under one regime's rules has no owner once that regime ends -- also on every bar
whose regime differs from the previous bar's (``exit_on_switch``, default true). A regime mapped
to ``[]`` (e.g. ``high_vol_stress``) trades nothing.

Config (structured params from ``strategies.regime_rotation.presets``, carried as JSON text):
``mapping='{"trending_up": ["ma_crossover"], "ranging": ["rsi_mean_reversion",
"bollinger_mean_reversion"], "high_vol_stress": []}'``; members may be ``{name, params}``.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import numpy as np
import polars as pl
from pydantic import Field, field_validator

from ._common import StreamBase
from .base import BoolArray, StrategyParams, as_bars
from .ensemble import build_members
from .streaming import BarSlice

__all__ = ["RegimeRotation", "RegimeRotationParams", "regime_codes", "rotate"]

DEFAULT_MAPPING = json.dumps({"trending_up": ["ma_crossover"],
                              "ranging": ["rsi_mean_reversion", "bollinger_mean_reversion"],
                              "trending_down": [], "high_vol_stress": []})


def _parse_mapping(raw: str) -> dict[str, list[Any]]:
    from ..features.regimes import REGIMES

    m = json.loads(raw)
    if not isinstance(m, dict):
        raise ValueError("mapping: expected a JSON object {regime: [members]}")
    bad = sorted(set(m) - set(REGIMES))
    if bad:
        raise ValueError(f"mapping: unknown regime(s) {bad}; expected {list(REGIMES)}")
    for k, v in m.items():
        if not isinstance(v, list):
            raise ValueError(f"mapping.{k}: expected a list of members")
    return m


class RegimeRotationParams(StrategyParams):
    mapping: str = Field(default=DEFAULT_MAPPING, description="JSON {regime: [member name or {name, params}]}")
    exit_on_switch: bool = True

    @field_validator("mapping")
    @classmethod
    def _mapping(cls, v: str) -> str:
        _parse_mapping(v)
        return v


def regime_codes(bars: Any, symbol: int = 0, config: Any = None) -> np.ndarray:
    """(T,) regime index into ``REGIMES`` per bar, -1 during warm-up (causal)."""
    from ..features.compute import compute_features
    from ..features.regimes import REGIMES, label_regimes

    b = as_bars(bars)
    frame = pl.DataFrame({
        "ts": pl.Series(b.ts).cast(pl.Datetime("ms", "UTC")), "open": b.open[:, symbol],
        "high": b.high[:, symbol], "low": b.low[:, symbol], "close": b.close[:, symbol],
        "volume": b.volume[:, symbol]})
    labels = label_regimes(compute_features(frame), config)
    joined = frame.select("ts").join(labels.select("ts", "regime"), on="ts", how="left")
    code = {name: i for i, name in enumerate(REGIMES)}
    return np.array([code.get(r, -1) if r is not None else -1 for r in joined["regime"].to_list()], np.int64)


def rotate(regime: np.ndarray, member_entries: np.ndarray, member_exits: np.ndarray, active: np.ndarray,
           exit_on_switch: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Combine (T, M) member signals given (T,) regime codes and an (R, M) active table."""
    T = regime.shape[0]
    act = np.zeros((T, active.shape[1]), dtype=bool)
    ok = regime >= 0
    act[ok] = active[regime[ok]]
    entries: np.ndarray = np.asarray((member_entries & act).any(axis=1), dtype=bool)
    exits: np.ndarray = np.asarray((member_exits & act).any(axis=1), dtype=bool)
    if exit_on_switch and T > 1:
        exits[1:] |= regime[1:] != regime[:-1]
    return entries, exits


class RegimeRotation:
    """Per-regime member strategies on one variant; one portfolio per symbol."""

    name: ClassVar[str] = "regime_rotation"
    Params: ClassVar[type[StrategyParams]] = RegimeRotationParams

    def __init__(self, params: RegimeRotationParams | None = None, *, regime_config: Any = None) -> None:
        from ..features.regimes import REGIMES

        self.params = params or RegimeRotationParams()
        self.regime_config = regime_config
        mapping = _parse_mapping(self.params.mapping)
        specs: list[Any] = []
        keys: list[str] = []
        for members in mapping.values():
            for m in members:
                key = json.dumps(m, sort_keys=True)
                if key not in keys:
                    keys.append(key)
                    specs.append(m)
        self.members = build_members(json.dumps(specs)) if specs else []
        self.active = np.zeros((len(REGIMES), len(specs)), dtype=bool)
        for r, name in enumerate(REGIMES):
            for m in mapping.get(name, []):
                self.active[r, keys.index(json.dumps(m, sort_keys=True))] = True

    def variants(self) -> list[dict[str, Any]]:
        return [self.params.model_dump()]

    def warmup_bars(self) -> int:
        return max([int(m.warmup_bars()) for m in self.members] + [250])

    def signals(self, bars: Any) -> tuple[BoolArray, BoolArray]:
        b = as_bars(bars)
        T, S = b.n_bars, b.n_symbols
        entries = np.zeros((T, S), np.bool_)
        exits = np.zeros_like(entries)
        sigs = [m.signals(b) for m in self.members]
        for s in range(S):
            me = np.zeros((T, len(self.members)), bool)
            mx = np.zeros_like(me)
            for i, (e, x) in enumerate(sigs):
                me[:, i] = np.asarray(e, bool).reshape(T, -1)[:, s]
                mx[:, i] = np.asarray(x, bool).reshape(T, -1)[:, s]
            e, x = rotate(regime_codes(b, s, self.regime_config), me, mx, self.active, self.params.exit_on_switch)
            entries[:, s], exits[:, s] = e, x
        return entries, exits

    def stream(self, n_symbols: int) -> RegimeRotationStream:
        return RegimeRotationStream(self, n_symbols)


class RegimeStream(StreamBase):
    """The regime code of each bar (``regime_codes``), incrementally: the regime inputs of
    ``compute_features`` (ADX, SMA slope in ATRs, percentile of realised volatility, with the
    default ``FeatureSpec``) from their per-bar states, then one bar of the labeller's own rules
    (``regimes._label_nb``, continued from the previous label and its dwell)."""

    _arrays = ("cur", "dwell")

    def __init__(self, n_symbols: int, config: Any = None) -> None:
        from ..features.compute import FeatureSpec
        from ..features.regimes import RegimeConfig, _params
        from ..features.streaming import (
            AdxState,
            AtrState,
            MaSlopeState,
            RealisedVolState,
            RollingPercentileState,
        )

        super().__init__(n_symbols)
        spec = FeatureSpec()
        self.config = config or RegimeConfig()
        self._p = _params(self.config)
        self.atr = AtrState(n_symbols, n=spec.atr)
        self.adx = AdxState(n_symbols, n=spec.adx)
        self.slope = MaSlopeState(n_symbols, spec.slope_ma, spec.slope_bars)
        self.rvol = RealisedVolState(n_symbols, n=spec.rvol_window, periods_per_year=spec.periods_per_year)
        self.pct = RollingPercentileState(n_symbols, spec.rvol_pct_window)
        self.cur = np.full(n_symbols, -1, np.int64)
        self.dwell = np.zeros(n_symbols, np.int64)

    def parts(self) -> dict[str, Any]:
        return {"atr": self.atr, "adx": self.adx, "slope": self.slope, "rvol": self.rvol, "pct": self.pct}

    def update_codes(self, bar: BarSlice) -> np.ndarray:
        from ..features.regimes import _label_nb

        atr = self.atr.update(bar.high, bar.low, bar.close)
        adx = self.adx.update(bar.high, bar.low, bar.close)[0]
        slope = self.slope.update(bar.close, scale=atr)
        vpct = self.pct.update(self.rvol.update(bar.close))
        for s in range(self.columns):
            code = int(_label_nb(adx[s:s + 1], slope[s:s + 1], vpct[s:s + 1], self._p, self.config.min_dwell,
                                 int(self.cur[s]), int(self.dwell[s]))[0])
            self.dwell[s] = 0 if code < 0 else 1 if code != self.cur[s] else self.dwell[s] + 1
            self.cur[s] = code
        self.t += 1
        return self.cur.copy()


class RegimeRotationStream(StreamBase):
    """Member streams, the regime stream, and ``rotate``'s rule for this bar."""

    _arrays = ("prev",)

    def __init__(self, rot: RegimeRotation, n_symbols: int) -> None:
        super().__init__(n_symbols)
        self.exit_on_switch = rot.params.exit_on_switch
        self.active = rot.active
        self.members = [m.stream(n_symbols) for m in rot.members]
        self.regime = RegimeStream(n_symbols, rot.regime_config)
        self.prev = np.full(n_symbols, -1, np.int64)

    def parts(self) -> dict[str, Any]:
        return {"regime": self.regime, **{f"m{i}": m for i, m in enumerate(self.members)}}

    def update(self, bar: BarSlice) -> tuple[BoolArray, BoolArray]:
        S, M = self.columns, len(self.members)
        flags = [m.update(bar) for m in self.members]
        me = np.stack([e[:S] for e, _ in flags], axis=1) if M else np.zeros((S, 0), bool)
        mx = np.stack([x[:S] for _, x in flags], axis=1) if M else np.zeros((S, 0), bool)
        code = self.regime.update_codes(bar)
        act = np.zeros((S, M), dtype=bool)
        ok = code >= 0
        act[ok] = self.active[code[ok]]
        entries = np.asarray((me & act).any(axis=1), dtype=bool)
        exits = np.asarray((mx & act).any(axis=1), dtype=bool)
        if self.exit_on_switch and self.t > 0:
            exits |= code != self.prev
        self.prev = code
        self.t += 1
        return entries, exits
