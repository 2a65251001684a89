"""Shared pieces of the rule strategies: a position-state loop, per-column indicators, grids.

Why a state loop: rules such as "exit after N bars", "exit at the swing high seen at entry" or a
stop fixed at the entry close depend on WHEN the position was opened, which a purely vectorised
expression cannot know. The loop is the only sequential part; every condition it consumes is
computed vectorised beforehand, and it reads nothing after bar ``t`` when deciding bar ``t``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
def hold_nb(entry: np.ndarray, exit_table: np.ndarray, atom_ops: np.ndarray, atom_vals: np.ndarray,
            close: np.ndarray, stop_px: np.ndarray, target_px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Long-only position state per column: (entries, exits), each (T, N) bool.

    * Flat at bar t and ``entry[t]`` -> entry; ``stop_px[t]``/``target_px[t]`` are frozen then.
    * Long: ``bars_held = t - entry bar``; the K bars_held atoms (``bars_held <op> value``) give
      an index ``sum(atom_k << k)`` into ``exit_table`` (2**K, T, N), the exit condition
      evaluated for that truth assignment. Exit also when close <= frozen stop or >= frozen
      target (NaN disables either). No exit on the entry bar, no re-entry on the exit bar.
    """
    n_rows, n_cols = entry.shape
    n_atoms = atom_ops.shape[0]
    entries = np.zeros((n_rows, n_cols), dtype=np.bool_)
    exits = np.zeros((n_rows, n_cols), dtype=np.bool_)
    for j in range(n_cols):
        long = False
        t0 = 0
        stop = np.nan
        target = np.nan
        for t in range(n_rows):
            if not long:
                if entry[t, j]:
                    entries[t, j] = True
                    long = True
                    t0 = t
                    stop = stop_px[t, j]
                    target = target_px[t, j]
                continue
            h = float(t - t0)
            idx = 0
            for k in range(n_atoms):
                if _atom_true(atom_ops[k], h, atom_vals[k]):
                    idx += 1 << k
            c = close[t, j]
            if exit_table[idx, t, j] or (not np.isnan(stop) and c <= stop) or (
                    not np.isnan(target) and c >= target):
                exits[t, j] = True
                long = False
    return entries, exits


def hold(entry: BoolArray, exit_cond: BoolArray, close: FloatArray, *, max_bars: int = 0,
         stop_px: FloatArray | None = None, target_px: FloatArray | None = None) -> tuple[BoolArray, BoolArray]:
    """``hold_nb`` for the common case: one exit condition plus an optional time exit.

    ``max_bars`` > 0 exits once ``bars_held >= max_bars`` (the YAML ``bars_held >= N``).
    """
    entry = np.ascontiguousarray(entry, dtype=np.bool_)
    exit_cond = np.ascontiguousarray(exit_cond, dtype=np.bool_)
    nan = np.full(entry.shape, np.nan)
    if max_bars > 0:
        table = np.stack([exit_cond, np.ones_like(exit_cond)])
        ops, vals = np.array([OP_GE], dtype=np.int64), np.array([float(max_bars)])
    else:
        table = exit_cond[None]
        ops, vals = np.zeros(0, dtype=np.int64), np.zeros(0)
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
