"""Position sizing: how much to trade, given equity, price, stop and what is already held.

Each rule is a small numpy function that works on scalars and on arrays alike (a backtest sizes
every bar at once, paper trading one order). ``position_size`` picks the rule named in
``SizingConfig``. The Markowitz allocator uses SciPy's SLSQP: a well-kept solver rather than a
home-made one, and no new dependency (cvxpy/PyPortfolioOpt are not installed).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InvalidInput
from .config import SizingConfig

__all__ = [
    "fixed_quantity", "percent_of_equity", "risk_based_quantity", "correlation_scale",
    "position_size", "markowitz_weights", "InfeasiblePortfolio",
]

ArrayLike = Any  # float or numpy array


class InfeasiblePortfolio(InvalidInput):
    """The allocation problem has no solution (bounds, target return) or the solver failed."""


def _positive(name: str, v: ArrayLike) -> np.ndarray:
    a = np.asarray(v, dtype=np.float64)
    if not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise InvalidInput(f"{name} must be finite and > 0, got {v!r}")
    return a


def _out(a: np.ndarray) -> ArrayLike:
    return float(a) if a.ndim == 0 else a


def fixed_quantity(quantity: float, price: ArrayLike) -> ArrayLike:
    """The same quantity whatever the price (shape follows ``price``): simple, and blind to risk."""
    q = float(_positive("quantity", quantity))
    return _out(np.full_like(_positive("price", price), q))


def percent_of_equity(equity: ArrayLike, fraction: float, price: ArrayLike) -> ArrayLike:
    """quantity = equity x fraction / price: each position is the same share of the account."""
    e, f, p = _positive("equity", equity), _positive("fraction", fraction), _positive("price", price)
    return _out(e * f / p)


def risk_based_quantity(equity: ArrayLike, risk_per_trade: float, price: ArrayLike,
                        stop_pct: ArrayLike, *, max_position_fraction: float | None = None) -> ArrayLike:
    """Size so that hitting the stop loses ``equity x risk_per_trade``.

    Max loss per trade = capital x risk_per_trade; loss per unit = price x stop_pct, so
    quantity = equity x risk_per_trade / (price x stop_pct) and notional = equity x
    risk_per_trade / stop_pct (2 % risk with a 5 % stop -> 40 % of equity). A tight stop would
    ask for a huge position, so ``max_position_fraction`` caps notional / equity.
    """
    e, r, p = _positive("equity", equity), _positive("risk_per_trade", risk_per_trade), _positive("price", price)
    s = _positive("stop_pct", stop_pct)
    if np.any(s >= 1):
        raise InvalidInput(f"stop_pct must be < 1 (a fraction of price), got {stop_pct!r}")
    q = e * r / (p * s)
    if max_position_fraction is not None:
        q = np.minimum(q, e * _positive("max_position_fraction", max_position_fraction) / p)
    return _out(q)


def correlation_scale(side: int, correlations: ArrayLike, exposures: ArrayLike, *,
                      floor: float = 0.0) -> float:
    """Factor in (0, 1] that shrinks a new position by the correlated exposure already held.

    Formula: with ``w_j`` the signed exposure of existing position j (notional / equity, + long),
    ``rho_j`` the return correlation of the new symbol with symbol j and ``s`` = +1 for a buy,
    -1 for a sell, the correlated exposure in the new trade's direction is
    ``c = sum_j s * w_j * rho_j`` over the j with ``|rho_j| > floor``, and the scale is
    ``1 / (1 + max(c, 0))``. No or uncorrelated exposure -> 1; one full (w = 1) position with
    rho = 1 -> 0.5; rho = 0.5 -> 0.67. A hedge (c < 0) never scales up. Why this shape: it is
    smooth, never zero (the risk check, not sizing, blocks trades) and grows with both the size
    and the correlation of what is already held.
    """
    rho = np.asarray(correlations, dtype=np.float64)
    w = np.asarray(exposures, dtype=np.float64)
    if rho.shape != w.shape:
        raise InvalidInput(f"correlations {rho.shape} and exposures {w.shape} must have the same shape")
    if not (np.all(np.isfinite(rho)) and np.all(np.isfinite(w))) or np.any(np.abs(rho) > 1 + 1e-9):
        raise InvalidInput("correlations must be finite in [-1, 1] and exposures finite")
    if side not in (0, 1):
        raise InvalidInput(f"side must be 0 (buy) or 1 (sell), got {side!r}")
    s = 1.0 if side == 0 else -1.0
    used = np.abs(rho) > floor
    c = float(np.sum(s * w[used] * rho[used]))
    return 1.0 / (1.0 + max(c, 0.0))


def position_size(config: SizingConfig, *, equity: ArrayLike, price: ArrayLike,
                  stop_pct: ArrayLike | None = None) -> ArrayLike:
    """Quantity by the method the config names (``fixed``, ``percent_equity`` or ``risk``).

    ``stop_pct`` defaults to ``config.default_stop_pct`` for the risk rule. Every method is capped
    at ``max_position_fraction`` of equity in notional.
    """
    if config.method == "fixed":
        q = np.asarray(fixed_quantity(config.fixed_quantity, price))
    elif config.method == "percent_equity":
        q = np.asarray(percent_of_equity(equity, config.equity_fraction, price))
    else:
        return risk_based_quantity(equity, config.risk_per_trade, price,
                                   config.default_stop_pct if stop_pct is None else stop_pct,
                                   max_position_fraction=config.max_position_fraction)
    cap = np.asarray(equity, dtype=np.float64) * config.max_position_fraction / np.asarray(price, np.float64)
    return _out(np.minimum(q, cap))


def markowitz_weights(expected_returns: ArrayLike, covariance: ArrayLike, *,
                      target_return: float | None = None, risk_aversion: float | None = None,
                      bounds: tuple[float, float] = (0.0, 1.0), tol: float = 1e-10) -> np.ndarray:
    """Long-only mean-variance weights summing to 1, solved with SciPy SLSQP.

    Objective, by the argument given (at most one):
      * neither: minimum variance ``min w'Sw``;
      * ``target_return``: ``min w'Sw`` subject to ``mu'w >= target_return`` (a target below the
        minimum-variance portfolio's return gives that portfolio);
      * ``risk_aversion`` (lambda > 0): ``max mu'w - lambda/2 w'Sw``.
    Always ``sum w = 1`` and ``lo <= w_i <= hi`` from ``bounds`` (lo >= 0: long-only).
    Raises ``InfeasiblePortfolio`` when the bounds cannot sum to 1, the target exceeds the best
    return the bounds allow, or the solver does not converge; ``InvalidInput`` for bad inputs.
    """
    mu = np.asarray(expected_returns, dtype=np.float64).ravel()
    cov = np.asarray(covariance, dtype=np.float64)
    n = mu.shape[0]
    if n == 0:
        raise InvalidInput("expected_returns is empty")
    if cov.shape != (n, n):
        raise InvalidInput(f"covariance must be {n}x{n} to match expected_returns, got {cov.shape}")
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(cov))):
        raise InvalidInput("expected_returns and covariance must be finite")
    if not np.allclose(cov, cov.T, atol=1e-12, rtol=1e-9):
        raise InvalidInput("covariance must be symmetric")
    if np.linalg.eigvalsh(cov).min() < -1e-10 * max(1.0, float(np.abs(cov).max())):
        raise InvalidInput("covariance must be positive semi-definite")
    if target_return is not None and risk_aversion is not None:
        raise InvalidInput("give target_return or risk_aversion, not both")
    if risk_aversion is not None and not risk_aversion > 0:
        raise InvalidInput(f"risk_aversion must be > 0, got {risk_aversion}")
    lo, hi = float(bounds[0]), float(bounds[1])
    if lo < 0:
        raise InvalidInput(f"bounds lower must be >= 0 (long-only), got {lo}")
    if hi < lo:
        raise InvalidInput(f"bounds upper {hi} is below lower {lo}")
    if n * lo > 1 + 1e-12 or n * hi < 1 - 1e-12:
        raise InfeasiblePortfolio(
            f"weights bounded to [{lo}, {hi}] for {n} assets cannot sum to 1 "
            f"(possible sums {n * lo:g}..{n * hi:g})")
    if target_return is not None:
        best = _max_return(mu, lo, hi)
        if target_return > best + 1e-12:
            raise InfeasiblePortfolio(
                f"target_return {target_return:g} is above {best:g}, the highest expected return "
                f"long-only weights in [{lo}, {hi}] can reach")

    if risk_aversion is None:
        def fun(w: np.ndarray) -> float:
            return float(w @ cov @ w)

        def jac(w: np.ndarray) -> np.ndarray:
            return 2.0 * cov @ w
    else:
        lam = float(risk_aversion)

        def fun(w: np.ndarray) -> float:
            return float(-(mu @ w) + 0.5 * lam * (w @ cov @ w))

        def jac(w: np.ndarray) -> np.ndarray:
            return -mu + lam * (cov @ w)

    cons: list[dict[str, Any]] = [{"type": "eq", "fun": lambda w: np.sum(w) - 1.0,
                                   "jac": lambda w: np.ones_like(w)}]
    if target_return is not None:
        t = float(target_return)
        cons.append({"type": "ineq", "fun": lambda w: mu @ w - t, "jac": lambda w: mu})
    x0 = np.clip(np.full(n, 1.0 / n), lo, hi)
    from scipy.optimize import minimize  # here, not at import: a plain backtest never loads SciPy's solvers

    res = minimize(fun, x0, jac=jac, method="SLSQP", bounds=[(lo, hi)] * n, constraints=cons,
                   options={"ftol": tol, "maxiter": 500})
    w = np.asarray(res.x, dtype=np.float64)
    ok = (res.success and abs(w.sum() - 1) < 1e-6 and np.all(w >= lo - 1e-7) and np.all(w <= hi + 1e-7)
          and (target_return is None or mu @ w >= target_return - 1e-7))
    if not ok:
        raise InfeasiblePortfolio(f"SLSQP did not find a feasible allocation: {res.message}")
    return np.clip(w, lo, hi)


def _max_return(mu: np.ndarray, lo: float, hi: float) -> float:
    """Best mu'w with lo <= w <= hi, sum w = 1: start at lo, fill the best assets up to hi."""
    w = np.full(mu.shape[0], lo)
    left = 1.0 - w.sum()
    for i in np.argsort(-mu):
        add = min(hi - lo, left)
        w[i] += add
        left -= add
        if left <= 0:
            break
    return float(mu @ w)
