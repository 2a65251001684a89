"""Ensemble: several member strategies vote, weighted by their recent risk-adjusted performance.

Each member's signals become its *desired position* (long from an entry to the next exit, decided
at bar close). Its hypothetical per-bar return is that position held over the next bar
(``pos[t-1] x (close[t]/close[t-1] - 1)``), so the return of bar t is known at t's close. A rolling
Sharpe over ``lookback`` bars of those returns gives each member a score; weights are a softmax
of the scores (``scheme="softmax"``, temperature ``temperature``) or proportional to the positive
part (``"positive"``: members with Sharpe <= 0 get only the floor), then clipped to
[``floor``, ``cap``] and renormalised. The vote at bar t is sum(weight[t] x pos[t]); the
ensemble is long while the vote >= ``entry_threshold`` and leaves when it drops below
``exit_threshold`` (hysteresis). All causal: weights at t use returns up to t only.

Why positions, not raw entry events: members fire entries on different bars; voting on the
states they want to be in makes the combination independent of when each one happened to fire.

Members come from the config as structured params (``strategies.ensemble.presets``), carried as
JSON text: ``members='[{"name": "ma_crossover", "params": {"fast": 20, "slow": 100}},
"buy_and_hold"]'``. Each member must be a single-variant strategy.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, Literal

import numba
import numpy as np
from pydantic import Field, field_validator

from .base import BoolArray, StrategyParams, as_bars

__all__ = ["Ensemble", "EnsembleParams", "parse_members", "member_positions"]


def parse_members(raw: str) -> list[tuple[str, dict[str, Any]]]:
    """``members`` JSON (list of names or {name, params}) or ``a,b,c`` -> [(name, params)]."""
    text = raw.strip()
    items: Any = json.loads(text) if text.startswith("[") else [s.strip() for s in text.split(",") if s.strip()]
    out: list[tuple[str, dict[str, Any]]] = []
    for it in items:
        if isinstance(it, str):
            out.append((it, {}))
        elif isinstance(it, dict) and isinstance(it.get("name"), str):
            out.append((it["name"], dict(it.get("params") or {})))
        else:
            raise ValueError(f"member {it!r}: expected a name or {{name, params}}")
    if not out:
        raise ValueError("at least one member is needed")
    return out


def build_members(raw: str) -> list[Any]:
    """Members as strategies, through the registry (so their params are validated by name)."""
    from .registry import get_strategy

    members = []
    for name, params in parse_members(raw):
        s = get_strategy(name, {k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in params.items()})
        if len(s.variants()) != 1:
            raise ValueError(f"member {name}: a member must be one variant, not a grid")
        members.append(s)
    return members


class EnsembleParams(StrategyParams):
    members: str = Field(default='["ma_crossover", "buy_and_hold"]',
                         description="JSON list of member names or {name, params}")
    lookback: int = Field(default=63, ge=2, le=5000, description="bars in the rolling Sharpe")
    scheme: Literal["softmax", "positive"] = "softmax"
    temperature: float = Field(default=1.0, gt=0)
    floor: float = Field(default=0.0, ge=0, le=1, description="minimum weight of a member")
    cap: float = Field(default=1.0, gt=0, le=1, description="maximum weight of a member")
    entry_threshold: float = Field(default=0.5, gt=0, le=1)
    exit_threshold: float = Field(default=0.3, ge=0, le=1)

    @field_validator("members")
    @classmethod
    def _members(cls, v: str) -> str:
        parse_members(v)
        return v


@numba.njit(cache=True)
def member_positions(entries: np.ndarray, exits: np.ndarray) -> np.ndarray:
    """(T, M) desired position (1 long, 0 flat) of each member from its own signals."""
    T, M = entries.shape
    pos = np.zeros((T, M))
    for m in range(M):
        cur = 0.0
        for t in range(T):
            if entries[t, m] and not exits[t, m]:
                cur = 1.0
            elif exits[t, m] and not entries[t, m]:
                cur = 0.0
            pos[t, m] = cur
    return pos


@numba.njit(cache=True)
def _rolling_sharpe_nb(ret: np.ndarray, n: int) -> np.ndarray:
    T, M = ret.shape
    out = np.zeros((T, M))
    for m in range(M):
        s = 0.0
        s2 = 0.0
        for t in range(T):
            s += ret[t, m]
            s2 += ret[t, m] * ret[t, m]
            if t >= n:
                s -= ret[t - n, m]
                s2 -= ret[t - n, m] * ret[t - n, m]
            k = min(t + 1, n)
            mean = s / k
            var = s2 / k - mean * mean
            out[t, m] = mean / np.sqrt(var) if var > 1e-18 and k >= 2 else 0.0
    return out


@numba.njit(cache=True)
def _vote_nb(pos: np.ndarray, w: np.ndarray, enter: float, leave: float) -> tuple[np.ndarray, np.ndarray]:
    T = pos.shape[0]
    ent = np.zeros(T, np.bool_)
    ext = np.zeros(T, np.bool_)
    long = False
    for t in range(T):
        v = 0.0
        for m in range(pos.shape[1]):
            v += w[t, m] * pos[t, m]
        if not long and v >= enter:
            ent[t] = True
            long = True
        elif long and v < leave:
            ext[t] = True
            long = False
    return ent, ext


class Ensemble:
    """Weighted vote of member strategies; one variant, one portfolio per symbol."""

    name: ClassVar[str] = "ensemble"
    Params: ClassVar[type[StrategyParams]] = EnsembleParams

    def __init__(self, params: EnsembleParams | None = None) -> None:
        self.params = params or EnsembleParams()
        self.members = build_members(self.params.members)

    def variants(self) -> list[dict[str, Any]]:
        return [self.params.model_dump()]

    def warmup_bars(self) -> int:
        return max(int(m.warmup_bars()) for m in self.members) + self.params.lookback

    def weights(self, bars: Any, symbol: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(positions (T, M), weights (T, M)) of the members on one symbol; rows sum to 1."""
        b = as_bars(bars)
        T = b.n_bars
        ent = np.zeros((T, len(self.members)), np.bool_)
        ext = np.zeros_like(ent)
        for m, s in enumerate(self.members):
            e, x = s.signals(b)
            ent[:, m] = np.asarray(e, dtype=np.bool_).reshape(T, -1)[:, symbol]
            ext[:, m] = np.asarray(x, dtype=np.bool_).reshape(T, -1)[:, symbol]
        pos = member_positions(ent, ext)
        close = b.close[:, symbol]
        ret = np.zeros((T, len(self.members)))
        if T > 1:
            r = np.nan_to_num(close[1:] / close[:-1] - 1.0)
            ret[1:] = pos[:-1] * r[:, None]
        sharpe = _rolling_sharpe_nb(ret, self.params.lookback)
        p = self.params
        if p.scheme == "softmax":
            z = sharpe / p.temperature
            z = np.exp(z - z.max(axis=1, keepdims=True))
        else:
            z = np.maximum(sharpe, 0.0)
        tot = z.sum(axis=1, keepdims=True)
        w = np.where(tot > 0, z / np.where(tot > 0, tot, 1.0), 1.0 / len(self.members))
        w = np.clip(w, p.floor, p.cap)
        w = w / w.sum(axis=1, keepdims=True)
        return pos, w

    def signals(self, bars: Any) -> tuple[BoolArray, BoolArray]:
        b = as_bars(bars)
        entries = np.zeros((b.n_bars, b.n_symbols), np.bool_)
        exits = np.zeros_like(entries)
        for s in range(b.n_symbols):
            pos, w = self.weights(b, s)
            e, x = _vote_nb(pos, w, self.params.entry_threshold, self.params.exit_threshold)
            entries[:, s], exits[:, s] = e, x
        return entries, exits
