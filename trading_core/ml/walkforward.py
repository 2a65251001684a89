"""Purged walk-forward folds with an embargo (rolling or anchored windows).

The last ``folds x test_bars`` rows are cut into consecutive test windows. Each fold trains only
on rows before its test window whose label is decided *before* the window starts minus the
embargo: a row whose label looks into the test window (``label_end >= test start``) would leak the
test outcome into training, and its neighbours share most of their feature history with the
first test rows. ``check_no_leakage`` verifies that property on any fold, so a fold built
without purging (or by hand) is refused before anything is scored on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..errors import TradingError
from .config import WalkForwardConfig

__all__ = ["Fold", "LeakageError", "check_no_leakage", "walk_forward_folds"]

I64 = npt.NDArray[np.int64]


class LeakageError(TradingError):
    """A training row's label overlaps (or comes within the embargo of) the test window."""


@dataclass(frozen=True)
class Fold:
    """Row positions (into the dataset) of one fold's training and test rows."""

    number: int
    train: I64
    test: I64


def walk_forward_folds(bar: I64, label_end: I64, config: WalkForwardConfig, *, purge: bool = True) -> list[Fold]:
    """Folds over rows with bar indices ``bar`` and label-decision bars ``label_end`` (both sorted
    by bar). ``purge=False`` exists only to demonstrate the leak ``check_no_leakage`` catches."""
    n = int(bar.shape[0])
    k, test_n = config.folds, config.test_bars
    if n < k * test_n + 100:
        test_n = max(20, (n - 100) // k)
    first_test = n - k * test_n
    if first_test < 50:
        raise TradingError(f"walk-forward: {n} rows are too few for {k} folds of {test_n} test rows")
    folds: list[Fold] = []
    for f in range(k):
        t0, t1 = first_test + f * test_n, first_test + (f + 1) * test_n
        test = np.arange(t0, t1, dtype=np.int64)
        lo = 0 if config.scheme == "anchored" else max(0, t0 - config.train_bars)
        train = np.arange(lo, t0, dtype=np.int64)
        if purge:
            cutoff = bar[t0] - config.embargo_bars
            train = train[label_end[train] < cutoff]
        folds.append(Fold(f, train, test))
    return folds


def check_no_leakage(fold: Fold, bar: I64, label_end: I64, embargo_bars: int) -> None:
    """Raise ``LeakageError`` when a training row's label window [bar, label_end] comes within
    ``embargo_bars`` of the test window's bars, or a row is in both sets."""
    if np.intersect1d(fold.train, fold.test).size:
        raise LeakageError(f"fold {fold.number}: rows in both train and test")
    if fold.train.size == 0 or fold.test.size == 0:
        return
    lo, hi = int(bar[fold.test].min()), int(label_end[fold.test].max())
    s, e = bar[fold.train], label_end[fold.train]
    bad = (e >= lo - embargo_bars) & (s <= hi + embargo_bars)
    if bad.any():
        i = int(fold.train[np.flatnonzero(bad)[0]])
        raise LeakageError(f"fold {fold.number}: {int(bad.sum())} training row(s) overlap the test window "
                           f"(first: row {i}, label decided at bar {int(label_end[i])}, test starts at bar {lo})")
