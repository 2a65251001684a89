"""Performance sliced by market regime: regimes are data, so any run can be read per regime.

Each bar's return (close to close of the account) is attributed to the regime label of that bar
(``features.regimes``, decided at the bar's close from data up to it). The slice of a regime is
the set of its bars, wherever they fall, so "how did this strategy do in high-volatility stress"
is one lookup. Bars without a label (before the features' warm-up, or not computed) are counted
under ``unlabelled``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..timeframes import periods_per_year
from .metrics import simple_returns

__all__ = ["metrics_by_regime", "UNLABELLED"]

UNLABELLED = "unlabelled"


def metrics_by_regime(equity: np.ndarray, labels: list[str | None], *, timeframe: str, calendar: str,
                      position: np.ndarray | None = None,
                      benchmark_returns: np.ndarray | None = None) -> dict[str, Any]:
    """Per regime: ``bars``, ``share`` of the run's return bars, ``total_return`` (compounded over
    the regime's bars), ``annualised_return`` (mean bar return x bars per year), ``volatility``,
    ``sharpe`` (None when flat), ``exposure`` (share of its bars holding a position) and
    ``benchmark_return`` (the benchmark compounded over the same bars).

    ``equity``/``position``: (T,); ``labels``: (T,) regime per bar; ``benchmark_returns``: (T-1,)
    the same bar returns ``compute_metrics`` compares against (one symbol, or the basket).
    """
    e = np.asarray(equity, dtype=np.float64)
    if e.shape[0] != len(labels):
        raise ValueError(f"{e.shape[0]} equity values but {len(labels)} labels")
    if e.shape[0] < 2:
        return {}
    r = simple_returns(e)  # r[i] is earned during bar i + 1
    lab = np.array([UNLABELLED if x is None else str(x) for x in labels[1:]], dtype=object)
    held = None if position is None else (np.asarray(position, dtype=np.float64)[1:] != 0)
    bench = None if benchmark_returns is None else np.asarray(benchmark_returns, dtype=np.float64)
    if bench is not None and bench.shape != r.shape:
        raise ValueError(f"{bench.shape[0]} benchmark returns for {r.shape[0]} bar returns")
    ppy = periods_per_year(timeframe, calendar)
    out: dict[str, Any] = {}
    for name in sorted(set(lab.tolist())):
        m = lab == name
        rr = r[m]
        rr = rr[np.isfinite(rr)]
        n = int(m.sum())
        sd = float(rr.std(ddof=1)) if rr.size > 1 else 0.0
        mean = float(rr.mean()) if rr.size else 0.0
        out[name] = {
            "bars": n,
            "share": n / r.shape[0],
            "total_return": float(np.prod(1.0 + rr) - 1.0),
            "annualised_return": mean * ppy,
            "volatility": sd * math.sqrt(ppy),
            "sharpe": mean / sd * math.sqrt(ppy) if sd > 0 else None,
            "exposure": float(held[m].mean()) if held is not None and n else None,
            "benchmark_return": float(np.prod(1.0 + bench[m][np.isfinite(bench[m])]) - 1.0)
            if bench is not None else None,
        }
    return out
