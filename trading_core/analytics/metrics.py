"""Performance metrics of an equity curve, its trades and costs, and a benchmark comparison.

Conventions (chosen to match empyrical-reloaded, the independent library the tests check against):

- Returns are simple bar returns of the equity curve, ``r_t = e_t / e_{t-1} - 1``; T equity points
  give T-1 returns. ``ppy`` (bars per year) comes from
  ``trading_core.timeframes.periods_per_year(timeframe, calendar)``: 252 daily bars for equities,
  365 x 24 hourly bars for crypto, and so on.
- ``cagr`` compounds over the *number of bars*, not calendar days:
  ``(e_last / e_first) ** (ppy / (T - 1)) - 1`` (empyrical ``annual_return``). A curve that ends at
  or below zero has cagr -1.
- ``volatility`` is the sample standard deviation (ddof=1) of bar returns times ``sqrt(ppy)``.
- ``risk_free`` is an annual rate, turned into a per-bar rate by ``rf / ppy`` (0 by default, as in
  every empyrical comparison).
- ``sharpe = mean(r - rf_bar) / std(r - rf_bar, ddof=1) * sqrt(ppy)``.
- ``sortino = mean(r - rf_bar) * ppy / (sqrt(mean(min(r - rf_bar, 0) ** 2)) * sqrt(ppy))``: the
  downside deviation is taken over *all* bars (empyrical ``downside_risk``), not only losing ones.
- ``max_drawdown`` is ``min(e / cummax(e) - 1)`` (a negative fraction, 0 for a curve that never
  falls); ``calmar = cagr / |max_drawdown|``.
- Benchmark: ``beta = cov(r, b) / var(b)`` (population moments; the ddof cancels), ``alpha`` is
  annualised by compounding the mean per-bar residual, ``(1 + mean(r - rf - beta (b - rf))) ** ppy
  - 1`` (empyrical ``alpha_beta``). ``tracking_error = std(r - b, ddof=1) sqrt(ppy)`` and
  ``information_ratio = mean(r - b) / std(r - b, ddof=1) sqrt(ppy)`` (empyrical ``excess_sharpe``
  times ``sqrt(ppy)``). ``excess_return`` is total return minus the benchmark's total return.

Undefined values are ``None``, never an exception and never a huge number from dividing by a
rounding residue: fewer than two returns (no volatility), zero volatility (flat equity: no Sharpe),
no losing bar (no Sortino), no drawdown (no Calmar), no trades (no win rate, expectancy), no losing
trade (no profit factor), a constant benchmark (no beta/alpha). Empyrical returns ``nan`` or
``inf`` in some of these cases; ``None`` is what JSON and the warehouse can carry.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from ..timeframes import periods_per_year

ArrayLike = npt.ArrayLike
FloatArray = npt.NDArray[np.float64]

__all__ = [
    "DrawdownInfo",
    "PerformanceMetrics",
    "compute_metrics",
    "drawdown_info",
    "simple_returns",
]


@dataclass(frozen=True)
class DrawdownInfo:
    """The deepest drawdown: where it peaked, bottomed and (if it did) recovered, as bar indices."""

    max_drawdown: float
    peak: int
    trough: int
    recovery: int | None


@dataclass(frozen=True)
class PerformanceMetrics:
    """Metrics of one portfolio. Fractions, not percent; money in the account currency.

    ``None`` means "undefined for this curve" (see the module docstring for each case).
    """

    timeframe: str
    calendar: str
    periods_per_year: float
    bars: int
    start: datetime | None
    end: datetime | None
    initial_equity: float
    final_equity: float
    total_return: float
    cagr: float | None
    volatility: float | None
    sharpe: float | None
    sortino: float | None
    calmar: float | None
    max_drawdown: float
    max_drawdown_peak: datetime | None
    max_drawdown_trough: datetime | None
    max_drawdown_recovery: datetime | None
    time_to_recover_bars: int | None
    time_to_recover_days: float | None
    trades: int
    win_rate: float | None
    profit_factor: float | None
    expectancy: float | None
    gross_profit: float
    gross_loss: float
    exposure: float | None
    turnover: float | None
    fees_paid: float
    slippage_paid: float
    benchmark_return: float | None = None
    excess_return: float | None = None
    alpha: float | None = None
    beta: float | None = None
    tracking_error: float | None = None
    information_ratio: float | None = None
    open_trades: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: datetimes as ISO-8601 UTC strings, non-finite floats as None."""
        out: dict[str, Any] = {}
        for k, v in asdict(self).items():
            if isinstance(v, datetime):
                out[k] = v.isoformat()
            elif isinstance(v, float) and not math.isfinite(v):
                out[k] = None
            else:
                out[k] = v
        return out

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


# ############# Building blocks ############# #


def simple_returns(equity: ArrayLike) -> FloatArray:
    """Bar returns ``e[1:] / e[:-1] - 1`` along axis 0 (a zero equity gives inf/nan, not a crash)."""
    e = np.asarray(equity, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return e[1:] / e[:-1] - 1.0


def drawdown_info(equity: ArrayLike) -> DrawdownInfo:
    """Deepest peak-to-trough fall of a 1-D equity curve and the bar where it was made good.

    The peak is the last running high before the trough; recovery is the first later bar whose
    equity is back at or above that high (None while it is not).
    """
    e = np.asarray(equity, dtype=np.float64)
    if e.ndim != 1 or e.size == 0:
        raise ValueError("equity must be a non-empty 1-D array")
    running_max = np.maximum.accumulate(e)
    with np.errstate(divide="ignore", invalid="ignore"):
        dd = np.where(running_max > 0, e / running_max - 1.0, 0.0)
    trough = int(np.argmin(dd))
    mdd = float(dd[trough])
    if mdd >= 0.0:
        return DrawdownInfo(0.0, 0, 0, None)
    peak_value = running_max[trough]
    peak = int(np.flatnonzero(e[: trough + 1] == peak_value)[-1])
    after = np.flatnonzero(e[trough + 1 :] >= peak_value)
    recovery = int(trough + 1 + after[0]) if after.size else None
    return DrawdownInfo(mdd, peak, trough, recovery)


def _opt(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _sample_std(x: FloatArray) -> float:
    """ddof=1 std, exactly 0 for constant input (no 1e-18 residue to divide by)."""
    if x.size < 2:
        return math.nan
    if np.all(x == x[0]):
        return 0.0
    return float(np.std(x, ddof=1))


def _to_datetime(ts: Any) -> datetime | None:
    """One timestamp (datetime, numpy datetime64, or int epoch milliseconds) as aware UTC."""
    if ts is None:
        return None
    if isinstance(ts, datetime):
        return ts if ts.tzinfo else ts.replace(tzinfo=UTC)
    ms = int(ts.astype("datetime64[ms]").astype(np.int64)) if isinstance(ts, np.datetime64) else int(ts)
    return datetime.fromtimestamp(ms / 1000.0, tz=UTC)


def _ts_ms(ts: ArrayLike | None, n: int) -> npt.NDArray[np.int64] | None:
    """Timestamps as int64 epoch ms (accepts datetime64, ints, or a list of datetimes)."""
    if ts is None:
        return None
    arr = np.asarray(ts)
    if arr.dtype.kind == "M":
        out = arr.astype("datetime64[ms]").astype(np.int64)
    elif arr.dtype.kind in "iu":
        out = arr.astype(np.int64)
    else:
        out = np.array([int(_to_datetime(t).timestamp() * 1000) for t in arr], dtype=np.int64)  # type: ignore[union-attr]
    if out.shape != (n,):
        raise ValueError(f"ts has shape {out.shape}, expected ({n},) like equity")
    return out


# ############# Metrics ############# #


def compute_metrics(
    equity: ArrayLike,
    *,
    timeframe: str,
    calendar: str = "crypto",
    ts: ArrayLike | None = None,
    trade_pnl: ArrayLike | None = None,
    position: ArrayLike | None = None,
    traded_value: float | ArrayLike | None = None,
    fees: float | ArrayLike = 0.0,
    slippage: float | ArrayLike = 0.0,
    benchmark_returns: ArrayLike | None = None,
    risk_free: float = 0.0,
    open_trades: int = 0,
) -> PerformanceMetrics:
    """All metrics of one portfolio.

    Args:
        equity: (T,) account value marked at each bar's close (T >= 1).
        timeframe, calendar: set the annualisation (``periods_per_year``).
        ts: (T,) bar open times (datetime64, epoch ms or datetimes) for the drawdown dates.
        trade_pnl: net PnL of each *closed* round trip (fees included) for win rate, profit factor
            and expectancy; ``trades`` counts them. ``open_trades`` counts trips still open at
            the end (reported, not scored: their PnL is not yet decided).
        position: (T,) units held after each bar; exposure is the fraction of bars with a non-zero
            position.
        traded_value: total |qty x price| traded (or the per-fill values); turnover is it divided
            by the mean equity, i.e. how many times the average book was traded.
        fees, slippage: paid amounts (scalar or per-fill arrays, summed).
        benchmark_returns: (T-1,) simple returns of the benchmark over the same bars.
        risk_free: annual risk-free rate (see the module docstring).
    """
    e = np.asarray(equity, dtype=np.float64)
    if e.ndim != 1 or e.size == 0:
        raise ValueError(f"equity must be a non-empty 1-D array, got shape {e.shape}")
    if not np.all(np.isfinite(e)):
        raise ValueError("equity contains NaN or infinite values")
    n = e.size
    ppy = float(periods_per_year(timeframe, calendar))
    t_ms = _ts_ms(ts, n)
    r = simple_returns(e)
    rf_bar = risk_free / ppy
    adj = r - rf_bar

    initial, final = float(e[0]), float(e[-1])
    total_return = final / initial - 1.0 if initial > 0 else math.nan
    cagr: float | None = None
    if r.size >= 1 and initial > 0:
        growth = final / initial
        cagr = -1.0 if growth <= 0 else _opt(growth ** (ppy / r.size) - 1.0)

    std = _sample_std(adj)
    volatility = _opt(_sample_std(r) * math.sqrt(ppy))
    sharpe = _opt(float(np.mean(adj)) / std * math.sqrt(ppy)) if std and math.isfinite(std) else None

    sortino: float | None = None
    if r.size >= 2:
        downside = math.sqrt(float(np.mean(np.minimum(adj, 0.0) ** 2))) * math.sqrt(ppy)
        if downside > 0:
            sortino = _opt(float(np.mean(adj)) * ppy / downside)

    dd = drawdown_info(e)
    calmar = _opt(cagr / abs(dd.max_drawdown)) if (cagr is not None and dd.max_drawdown < 0) else None

    def at(i: int | None) -> datetime | None:
        return None if (i is None or t_ms is None) else _to_datetime(int(t_ms[i]))

    recover_bars = None if (dd.recovery is None or dd.max_drawdown >= 0) else dd.recovery - dd.trough
    recover_days = (
        (float(t_ms[dd.recovery] - t_ms[dd.trough]) / 86_400_000.0)
        if (recover_bars is not None and t_ms is not None) else None
    )
    has_dd = dd.max_drawdown < 0

    # Trades.
    pnl = np.asarray(trade_pnl if trade_pnl is not None else [], dtype=np.float64).ravel()
    wins, losses = pnl[pnl > 0], pnl[pnl < 0]
    gross_profit, gross_loss = float(wins.sum()), float(-losses.sum())
    win_rate = wins.size / pnl.size if pnl.size else None
    profit_factor = gross_profit / gross_loss if gross_loss > 0 else None
    expectancy = float(pnl.mean()) if pnl.size else None

    exposure: float | None = None
    if position is not None:
        pos = np.asarray(position, dtype=np.float64)
        if pos.shape != (n,):
            raise ValueError(f"position has shape {pos.shape}, expected ({n},)")
        exposure = float(np.count_nonzero(pos)) / n
    turnover: float | None = None
    if traded_value is not None:
        mean_equity = float(e.mean())
        traded = float(np.abs(np.asarray(traded_value, dtype=np.float64)).sum())
        turnover = traded / mean_equity if mean_equity > 0 else None

    bench: dict[str, float | None] = {}
    if benchmark_returns is not None:
        bench = _benchmark(r, np.asarray(benchmark_returns, dtype=np.float64), rf_bar, ppy,
                           total_return)

    return PerformanceMetrics(
        timeframe=timeframe, calendar=calendar, periods_per_year=ppy, bars=n,
        start=at(0), end=at(n - 1),
        initial_equity=initial, final_equity=final, total_return=total_return,
        cagr=cagr, volatility=volatility, sharpe=sharpe, sortino=sortino, calmar=calmar,
        max_drawdown=dd.max_drawdown,
        max_drawdown_peak=at(dd.peak) if has_dd else None,
        max_drawdown_trough=at(dd.trough) if has_dd else None,
        max_drawdown_recovery=at(dd.recovery) if has_dd else None,
        time_to_recover_bars=recover_bars, time_to_recover_days=recover_days,
        trades=int(pnl.size), win_rate=win_rate, profit_factor=profit_factor, expectancy=expectancy,
        gross_profit=gross_profit, gross_loss=gross_loss,
        exposure=exposure, turnover=turnover,
        fees_paid=float(np.sum(fees)), slippage_paid=float(np.sum(slippage)),
        open_trades=int(open_trades),
        **bench,  # type: ignore[arg-type]
    )


def _benchmark(r: FloatArray, b: FloatArray, rf_bar: float, ppy: float,
               total_return: float) -> dict[str, float | None]:
    """Alpha, beta, excess return, tracking error and information ratio against ``b``."""
    if b.shape != r.shape:
        raise ValueError(f"benchmark_returns has shape {b.shape}, expected {r.shape} (T-1 returns)")
    if not np.all(np.isfinite(b)):
        raise ValueError("benchmark_returns contains NaN or infinite values")
    bench_total = float(np.prod(1.0 + b) - 1.0)
    out: dict[str, float | None] = {
        "benchmark_return": bench_total,
        "excess_return": _opt(total_return - bench_total),
        "alpha": None, "beta": None, "tracking_error": None, "information_ratio": None,
    }
    if r.size < 2:
        return out
    b_res = b - b.mean()
    var_b = float(np.mean(b_res * b_res))
    if var_b >= 1e-30:
        beta = float(np.mean(b_res * r)) / var_b
        resid = (r - rf_bar) - beta * (b - rf_bar)
        out["beta"] = beta
        out["alpha"] = _opt((1.0 + float(resid.mean())) ** ppy - 1.0)
    active = r - b
    te = _sample_std(active)
    if te > 0:
        out["tracking_error"] = te * math.sqrt(ppy)
        out["information_ratio"] = float(active.mean()) / te * math.sqrt(ppy)
    return out
