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

from ._common import StreamBase
from .base import BoolArray, StrategyParams, as_bars
from .streaming import BarSlice

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


@numba.njit(cache=True, inline="always")
def position_step(cur: float, entry: bool, exit_: bool) -> float:
    """A member's desired position after this bar's signals (1 long, 0 flat)."""
    if entry and not exit_:
        return 1.0
    if exit_ and not entry:
        return 0.0
    return cur


@numba.njit(cache=True)
def member_positions(entries: np.ndarray, exits: np.ndarray) -> np.ndarray:
    """(T, M) desired position (1 long, 0 flat) of each member from its own signals."""
    T, M = entries.shape
    pos = np.zeros((T, M))
    for m in range(M):
        cur = 0.0
        for t in range(T):
            cur = position_step(cur, entries[t, m], exits[t, m])
            pos[t, m] = cur
    return pos


@numba.njit(cache=True, inline="always")
def bar_return(c: float, pc: float) -> float:
    """``close / previous close - 1`` with NaN -> 0 and +-inf -> +-max float (``np.nan_to_num``)."""
    r = c / pc - 1.0
    if np.isnan(r):
        return 0.0
    if np.isinf(r):
        return 1.7976931348623157e308 if r > 0 else -1.7976931348623157e308
    return r


@numba.njit(cache=True, inline="always")
def sharpe_step(s: float, s2: float, r: float, old: float, drop: bool, k: int) -> tuple[float, float, float]:
    """Running sums of the last ``k`` returns (``old`` leaves the window when ``drop``) and their
    Sharpe ``mean / std`` (population), 0 while undefined."""
    s += r
    s2 += r * r
    if drop:
        s -= old
        s2 -= old * old
    mean = s / k
    var = s2 / k - mean * mean
    return s, s2, (mean / np.sqrt(var) if var > 1e-18 and k >= 2 else 0.0)


@numba.njit(cache=True)
def _rolling_sharpe_nb(ret: np.ndarray, n: int) -> np.ndarray:
    T, M = ret.shape
    out = np.zeros((T, M))
    for m in range(M):
        s = 0.0
        s2 = 0.0
        for t in range(T):
            drop = t >= n
            s, s2, out[t, m] = sharpe_step(s, s2, ret[t, m], ret[t - n, m] if drop else 0.0, drop, min(t + 1, n))
    return out


@numba.njit(cache=True)
def weights_row(sharpe: np.ndarray, softmax: bool, temperature: float, floor: float, cap: float,
                out: np.ndarray) -> None:
    """Member weights of one bar from their Sharpe ratios: softmax (or positive part), then clipped
    to [floor, cap] and renormalised; equal weights when all scores are 0."""
    M = sharpe.shape[0]
    z = np.empty(M)
    if softmax:
        top = -np.inf
        for m in range(M):
            z[m] = sharpe[m] / temperature
            top = max(top, z[m])
        for m in range(M):
            z[m] = np.exp(z[m] - top)
    else:
        for m in range(M):
            z[m] = max(sharpe[m], 0.0)
    tot = 0.0
    for m in range(M):
        tot += z[m]
    w_sum = 0.0
    for m in range(M):
        w = z[m] / tot if tot > 0 else 1.0 / M
        w = min(max(w, floor), cap)
        out[m] = w
        w_sum += w
    for m in range(M):
        out[m] = out[m] / w_sum


@numba.njit(cache=True)
def _weights_nb(sharpe: np.ndarray, softmax: bool, temperature: float, floor: float, cap: float) -> np.ndarray:
    w = np.empty_like(sharpe)
    for t in range(sharpe.shape[0]):
        weights_row(sharpe[t], softmax, temperature, floor, cap, w[t])
    return w


@numba.njit(cache=True, inline="always")
def vote_step(long: bool, v: float, enter: float, leave: float) -> tuple[bool, bool, bool]:
    """(long, entered, exited) after a vote ``v``: enter at ``>= enter``, leave below ``leave``."""
    if not long and v >= enter:
        return True, True, False
    if long and v < leave:
        return False, False, True
    return long, False, False


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
        long, ent[t], ext[t] = vote_step(long, v, enter, leave)
    return ent, ext


@numba.njit(cache=True)
def _ensemble_update_nb(me: np.ndarray, mx: np.ndarray, close: np.ndarray, t: int, n: int, softmax: bool,
                        temperature: float, floor: float, cap: float, enter: float, leave: float,
                        pos: np.ndarray, pc: np.ndarray, s1: np.ndarray, s2: np.ndarray, ring: np.ndarray,
                        long: np.ndarray, ent: np.ndarray, ext: np.ndarray) -> None:
    """One bar of ``Ensemble.signals`` for S symbols: member flags (S, M) -> (S,) entries/exits.

    State: ``pos`` (S, M) positions of the previous bar, ``pc`` (S,) previous close, Sharpe sums
    ``s1``/``s2`` (S, M), ``ring`` (S, M, n) the last n returns, ``long`` (S,) the vote's state."""
    S, M = me.shape
    drop = t >= n
    q = t % n
    k = min(t + 1, n)
    sh = np.empty(M)
    w = np.empty(M)
    for s in range(S):
        r = bar_return(close[s], pc[s]) if t > 0 else 0.0
        for m in range(M):
            ret = pos[s, m] * r if t > 0 else 0.0
            s1[s, m], s2[s, m], sh[m] = sharpe_step(s1[s, m], s2[s, m], ret, ring[s, m, q] if drop else 0.0, drop, k)
            ring[s, m, q] = ret
            pos[s, m] = position_step(pos[s, m], me[s, m], mx[s, m])
        weights_row(sh, softmax, temperature, floor, cap, w)
        v = 0.0
        for m in range(M):
            v += w[m] * pos[s, m]
        long[s], ent[s], ext[s] = vote_step(long[s], v, enter, leave)
        pc[s] = close[s]


@numba.njit(cache=True)
def _member_returns_nb(pos: np.ndarray, close: np.ndarray) -> np.ndarray:
    """(T, M) hypothetical return of each member: its previous position x this bar's return."""
    T, M = pos.shape
    ret = np.zeros((T, M))
    for t in range(1, T):
        r = bar_return(close[t], close[t - 1])
        for m in range(M):
            ret[t, m] = pos[t - 1, m] * r
    return ret


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
        ret = _member_returns_nb(pos, np.ascontiguousarray(b.close[:, symbol]))
        sharpe = _rolling_sharpe_nb(ret, self.params.lookback)
        p = self.params
        return pos, _weights_nb(sharpe, p.scheme == "softmax", p.temperature, p.floor, p.cap)

    def signals(self, bars: Any) -> tuple[BoolArray, BoolArray]:
        b = as_bars(bars)
        entries = np.zeros((b.n_bars, b.n_symbols), np.bool_)
        exits = np.zeros_like(entries)
        for s in range(b.n_symbols):
            pos, w = self.weights(b, s)
            e, x = _vote_nb(pos, w, self.params.entry_threshold, self.params.exit_threshold)
            entries[:, s], exits[:, s] = e, x
        return entries, exits

    def stream(self, n_symbols: int) -> EnsembleStream:
        return EnsembleStream(self, n_symbols)


class EnsembleStream(StreamBase):
    """Member streams, then per symbol the same steps as the batch (positions, returns, rolling
    Sharpe over a ring of ``lookback`` returns, weights, vote) in ``_ensemble_update_nb``."""

    _arrays = ("pos", "pc", "s1", "s2", "ring", "long")

    def __init__(self, ens: Ensemble, n_symbols: int) -> None:
        super().__init__(n_symbols)
        self.p = ens.params
        self.members = [m.stream(n_symbols) for m in ens.members]
        M = len(self.members)
        self.pos = np.zeros((n_symbols, M))
        self.pc = np.full(n_symbols, np.nan)
        self.s1 = np.zeros((n_symbols, M))
        self.s2 = np.zeros((n_symbols, M))
        self.ring = np.zeros((n_symbols, M, self.p.lookback))
        self.long = np.zeros(n_symbols, np.bool_)

    def parts(self) -> dict[str, Any]:
        return {f"m{i}": m for i, m in enumerate(self.members)}

    def update(self, bar: BarSlice) -> tuple[BoolArray, BoolArray]:
        S = self.columns
        flags = [m.update(bar) for m in self.members]
        me = np.ascontiguousarray(np.stack([e[:S] for e, _ in flags], axis=1))
        mx = np.ascontiguousarray(np.stack([x[:S] for _, x in flags], axis=1))
        ent = np.zeros(S, np.bool_)
        ext = np.zeros(S, np.bool_)
        p = self.p
        _ensemble_update_nb(me, mx, np.ascontiguousarray(bar.close, dtype=np.float64), self.t, p.lookback,
                            p.scheme == "softmax", p.temperature, p.floor, p.cap, p.entry_threshold,
                            p.exit_threshold, self.pos, self.pc, self.s1, self.s2, self.ring, self.long, ent, ext)
        self.t += 1
        return ent, ext
