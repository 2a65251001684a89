"""Shared pieces of the rule strategies: a position-state loop, per-column indicators, grids.

Why a state loop: rules such as "exit after N bars", "exit at the swing high seen at entry" or a
stop fixed at the entry close depend on WHEN the position was opened, which a purely vectorised
expression cannot know. The loop is the only sequential part; every condition it consumes is
computed vectorised beforehand, and it reads nothing after bar ``t`` when deciding bar ``t``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
from numba import njit

from .base import BoolArray, FloatArray

# Comparison codes for bars_held atoms (shared with the YAML builder).
OP_LT, OP_LE, OP_GT, OP_GE, OP_EQ, OP_NE = 0, 1, 2, 3, 4, 5


@njit(cache=True)
def _atom_true(op: int, h: float, v: float) -> bool:
    if op == 0:
        return h < v
    if op == 1:
        return h <= v
    if op == 2:
        return h > v
    if op == 3:
        return h >= v
    if op == 4:
        return h == v
    return h != v


@njit(cache=True)
def hold_step(long: bool, t0: int, stop: float, target: float, t: int, entry: bool, exit_row: np.ndarray,
              atom_ops: np.ndarray, atom_vals: np.ndarray, close: float, stop_px: float,
              target_px: float) -> tuple[bool, int, float, float, bool, bool]:
    """One bar of ``hold_nb`` for one column (the rule code shared with per-bar streams).

    State in: (long, t0 = entry bar, frozen stop, frozen target); ``exit_row`` is the (2**K,)
    exit condition of bar ``t`` per atom truth assignment. Returns the new state and this bar's
    (entered, exited).
    """
    if not long:
        if entry:
            return True, t, stop_px, target_px, True, False
        return False, t0, stop, target, False, False
    h = float(t - t0)
    idx = 0
    for k in range(atom_ops.shape[0]):
        if _atom_true(atom_ops[k], h, atom_vals[k]):
            idx += 1 << k
    if exit_row[idx] or (not np.isnan(stop) and close <= stop) or (not np.isnan(target) and close >= target):
        return False, t0, stop, target, False, True
    return True, t0, stop, target, False, False


@njit(cache=True)
def hold_nb(entry: np.ndarray, exit_table: np.ndarray, atom_ops: np.ndarray, atom_vals: np.ndarray,
            close: np.ndarray, stop_px: np.ndarray, target_px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Long-only position state per column: (entries, exits), each (T, N) bool.

    * Flat at bar t and ``entry[t]`` -> entry; ``stop_px[t]``/``target_px[t]`` are frozen then.
    * Long: ``bars_held = t - entry bar``; the K bars_held atoms (``bars_held <op> value``) give
      an index ``sum(atom_k << k)`` into ``exit_table`` (2**K, T, N), the exit condition
      evaluated for that truth assignment. Exit also when close <= frozen stop or >= frozen
      target (NaN disables either). No exit on the entry bar, no re-entry on the exit bar.
    Each bar is one ``hold_step``.
    """
    n_rows, n_cols = entry.shape
    entries = np.zeros((n_rows, n_cols), dtype=np.bool_)
    exits = np.zeros((n_rows, n_cols), dtype=np.bool_)
    for j in range(n_cols):
        long = False
        t0 = 0
        stop = np.nan
        target = np.nan
        for t in range(n_rows):
            long, t0, stop, target, ent, ex = hold_step(long, t0, stop, target, t, entry[t, j], exit_table[:, t, j],
                                                        atom_ops, atom_vals, close[t, j], stop_px[t, j],
                                                        target_px[t, j])
            entries[t, j] = ent
            exits[t, j] = ex
    return entries, exits


def simple_atoms(max_bars: int) -> tuple[np.ndarray, np.ndarray]:
    """The bars_held atoms of ``hold``: ``bars_held >= max_bars`` when ``max_bars`` > 0, else none."""
    if max_bars > 0:
        return np.array([OP_GE], dtype=np.int64), np.array([float(max_bars)])
    return np.zeros(0, dtype=np.int64), np.zeros(0)


def simple_exit_table(exit_cond: np.ndarray, max_bars: int) -> np.ndarray:
    """``exit_table`` of ``hold`` for one exit condition (any shape; the table adds a leading
    axis): with a time exit, row 1 (``bars_held >= max_bars`` true) always exits."""
    exit_cond = np.asarray(exit_cond, dtype=np.bool_)
    if max_bars > 0:
        return np.ascontiguousarray(np.stack([exit_cond, np.ones_like(exit_cond)]))
    return np.ascontiguousarray(exit_cond[None])


def hold(entry: BoolArray, exit_cond: BoolArray, close: FloatArray, *, max_bars: int = 0,
         stop_px: FloatArray | None = None, target_px: FloatArray | None = None) -> tuple[BoolArray, BoolArray]:
    """``hold_nb`` for the common case: one exit condition plus an optional time exit.

    ``max_bars`` > 0 exits once ``bars_held >= max_bars`` (the YAML ``bars_held >= N``).
    """
    entry = np.ascontiguousarray(entry, dtype=np.bool_)
    exit_cond = np.ascontiguousarray(exit_cond, dtype=np.bool_)
    nan = np.full(entry.shape, np.nan)
    table = simple_exit_table(exit_cond, max_bars)
    ops, vals = simple_atoms(max_bars)
    return hold_nb(entry, np.ascontiguousarray(table), ops, vals, np.ascontiguousarray(close, dtype=np.float64),
                   nan if stop_px is None else np.ascontiguousarray(stop_px, dtype=np.float64),
                   nan if target_px is None else np.ascontiguousarray(target_px, dtype=np.float64))


def per_column(fn: Callable[..., Any], *arrays: FloatArray, **kw: Any) -> Any:
    """Apply a 1-D feature function (trading_core.features) to each symbol column of (T, S) arrays.

    Returns one (T, S) array, or a tuple of them when ``fn`` returns a tuple.
    """
    n_cols = arrays[0].shape[1]
    outs = [fn(*(a[:, j] for a in arrays), **kw) for j in range(n_cols)]
    if isinstance(outs[0], tuple):
        return tuple(np.column_stack([o[i] for o in outs]) for i in range(len(outs[0])))
    return np.column_stack(outs)


def prev(x: np.ndarray, n: int = 1) -> np.ndarray:
    """``x`` shifted ``n`` bars later (NaN / False first): the value known at the previous close."""
    out = np.full(x.shape, np.nan) if x.dtype.kind == "f" else np.zeros(x.shape, dtype=x.dtype)
    if n < x.shape[0]:
        out[n:] = x[:-n]
    return out


def crosses_above(a: np.ndarray, b: np.ndarray) -> BoolArray:
    """True where ``a > b`` now and ``a <= b`` at the previous bar (NaN on either side: False)."""
    out = np.zeros(np.broadcast(a, b).shape, dtype=np.bool_)
    a, b = np.broadcast_arrays(a, b)
    with np.errstate(invalid="ignore"):
        out[1:] = (a[1:] > b[1:]) & (a[:-1] <= b[:-1])
    return out


def parse_grid(v: Any, arity: int, kinds: tuple[type, ...], what: str) -> Any:
    """``"14:30:70,21:25:75"`` -> ((14, 30.0, 70.0), (21, 25.0, 75.0)); other values pass through."""
    if not isinstance(v, str):
        return v
    out = []
    for part in v.replace(" ", "").split(","):
        if not part:
            continue
        bits = part.split(":")
        if len(bits) != arity:
            raise ValueError(f"grid entry {part!r} is not {what}")
        try:
            out.append(tuple(k(b) for k, b in zip(kinds, bits, strict=True)))
        except ValueError:
            raise ValueError(f"grid entry {part!r} is not {what} (numbers)") from None
    if not out:
        raise ValueError("grid is empty")
    return tuple(out)


def tile_cols(x: np.ndarray, reps: int) -> np.ndarray:
    """(T, S) -> (T, reps*S), variant-major as the portfolio layout requires."""
    return np.tile(x, (1, reps))


# ############# Per-bar twins (the streaming side of the same rules) ############# #


@njit(cache=True)
def _hold_update_nb(long: np.ndarray, t0: np.ndarray, stop: np.ndarray, target: np.ndarray, t: int,
                    entry: np.ndarray, exit_table: np.ndarray, atom_ops: np.ndarray, atom_vals: np.ndarray,
                    close: np.ndarray, stop_px: np.ndarray, target_px: np.ndarray, ent: np.ndarray,
                    ext: np.ndarray) -> None:
    for j in range(entry.shape[0]):
        long[j], t0[j], stop[j], target[j], ent[j], ext[j] = hold_step(
            long[j], t0[j], stop[j], target[j], t, entry[j], exit_table[:, j], atom_ops, atom_vals, close[j],
            stop_px[j], target_px[j])


class HoldState:
    """``hold_nb`` one bar at a time on N columns: the same ``hold_step`` per column.

    ``update(entry, exit_table, close, stop_px, target_px)`` takes this bar's (N,) entry flags, the
    (2**K, N) exit table (see ``hold_nb``), closes and optional stop/target prices (read at entry
    only) and returns this bar's (entries, exits). ``update_simple`` is ``hold``'s case: one exit
    condition and the time exit ``max_bars`` given at construction.
    """

    _arrays: ClassVar[tuple[str, ...]] = ("long", "t0", "stop", "target")

    def __init__(self, n_cols: int, atom_ops: np.ndarray | None = None, atom_vals: np.ndarray | None = None, *,
                 max_bars: int = 0) -> None:
        self.n_cols = int(n_cols)
        self.max_bars = int(max_bars)
        if atom_ops is None:
            atom_ops, atom_vals = simple_atoms(self.max_bars)
        self.atom_ops = np.ascontiguousarray(atom_ops, dtype=np.int64)
        self.atom_vals = np.ascontiguousarray(atom_vals, dtype=np.float64)
        self.t = 0
        self.long = np.zeros(n_cols, np.bool_)
        self.t0 = np.zeros(n_cols, np.int64)
        self.stop = np.full(n_cols, np.nan)
        self.target = np.full(n_cols, np.nan)
        self._nan = np.full(n_cols, np.nan)

    def update(self, entry: np.ndarray, exit_table: np.ndarray, close: np.ndarray, stop_px: np.ndarray | None = None,
               target_px: np.ndarray | None = None) -> tuple[BoolArray, BoolArray]:
        ent = np.zeros(self.n_cols, np.bool_)
        ext = np.zeros(self.n_cols, np.bool_)
        _hold_update_nb(self.long, self.t0, self.stop, self.target, self.t,
                        np.ascontiguousarray(entry, dtype=np.bool_),
                        np.ascontiguousarray(exit_table, dtype=np.bool_), self.atom_ops, self.atom_vals,
                        np.ascontiguousarray(close, dtype=np.float64),
                        self._nan if stop_px is None else np.ascontiguousarray(stop_px, dtype=np.float64),
                        self._nan if target_px is None else np.ascontiguousarray(target_px, dtype=np.float64),
                        ent, ext)
        self.t += 1
        return ent, ext

    def update_simple(self, entry: np.ndarray, exit_cond: np.ndarray, close: np.ndarray,
                      stop_px: np.ndarray | None = None, target_px: np.ndarray | None = None) -> tuple[BoolArray, BoolArray]:
        """The bar of ``hold(entry, exit_cond, close, max_bars=..., stop_px=..., target_px=...)``."""
        return self.update(entry, simple_exit_table(exit_cond, self.max_bars), close, stop_px, target_px)

    def state(self) -> dict[str, Any]:
        out: dict[str, Any] = {"n_cols": self.n_cols, "t": self.t, "atom_ops": self.atom_ops.copy(),
                               "atom_vals": self.atom_vals.copy()}
        out.update({a: getattr(self, a).copy() for a in self._arrays})
        return out

    def load_state(self, state: dict[str, Any]) -> None:
        if int(state["n_cols"]) != self.n_cols or not (
                np.array_equal(state["atom_ops"], self.atom_ops) and np.array_equal(state["atom_vals"], self.atom_vals)):
            raise ValueError("HoldState: state of another shape or other bars_held rules")
        load_arrays(self, state, self._arrays)
        self.t = int(state["t"])


def load_arrays(obj: Any, state: dict[str, Any], names: tuple[str, ...]) -> None:
    """Copy ``state[name]`` into the existing array ``obj.<name>`` for each name (shape-checked)."""
    for name in names:
        mine = getattr(obj, name)
        got = np.asarray(state[name])
        if got.shape != mine.shape:
            raise ValueError(f"{type(obj).__name__}: state {name} has shape {got.shape}, expected {mine.shape}")
        mine[...] = got


class StreamBase:
    """What every strategy stream shares: ``columns``, the bar counter ``t``, and ``state()`` /
    ``load_state`` over its own arrays (``_arrays``) and its parts (``parts()``: indicator
    states, hold states, member streams), flattened into one dict with ``part/key`` names."""

    _arrays: ClassVar[tuple[str, ...]] = ()
    columns: int

    def __init__(self, columns: int) -> None:
        self.columns = int(columns)
        self.t = 0

    def parts(self) -> dict[str, Any]:
        return {}

    def state(self) -> dict[str, Any]:
        out: dict[str, Any] = {"columns": self.columns, "t": self.t}
        out.update({a: np.array(getattr(self, a), copy=True) for a in self._arrays})
        for name, part in self.parts().items():
            for k, v in part.state().items():
                out[f"{name}/{k}"] = v
        return out

    def load_state(self, state: dict[str, Any]) -> None:
        if int(state["columns"]) != self.columns:
            raise ValueError(f"{type(self).__name__}: state has {state['columns']} columns, this one {self.columns}")
        load_arrays(self, state, self._arrays)
        for name, part in self.parts().items():
            pre = name + "/"
            part.load_state({k[len(pre):]: v for k, v in state.items() if k.startswith(pre)})
        self.t = int(state["t"])
