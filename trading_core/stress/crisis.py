"""Black-swan stress: strategies (and buy-and-hold, the baseline) through crisis windows, with the
risk layer on and off, each judged by a survival report beside its normal-period baseline.

Every run is an ordinary ``BacktestRequest`` handed to ``backtest.run_backtest`` (not persisted):
risk off takes the one-call batch kernel, risk on the stepped Trader with breakers, kill switch
and trailing stop -- the same loop a paper session runs. Nothing here has trading logic of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from ..backtest import BacktestRequest, run_backtest
from ..backtest.request import calendar_for_venue
from ..errors import InvalidInput
from .catalogue import Coverage, coverage, window
from .config import Crisis, CrisisTarget, StrategySpec, StressConfig
from .survival import Survival, survival_report

__all__ = ["BASELINE", "WindowResult", "run_crisis", "run_window", "strategies_of"]

BASELINE = StrategySpec(name="buy_and_hold")


@dataclass(frozen=True)
class WindowResult:
    """One (crisis, series, strategy, risk) cell: ``survival`` None when the store has no data."""

    crisis: str
    target: CrisisTarget
    strategy: StrategySpec
    risk: bool
    start: datetime
    end: datetime
    coverage: Coverage
    survival: Survival | None
    baseline: Survival | None = None  # the strategy without risk layer in the ``baseline_days`` before
    execution_model_hash: str | None = None
    ts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)
    equity: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    note: str = ""

    @property
    def status(self) -> str:
        """``no data`` when nothing ran, else the window's coverage (``ok`` or ``partial``)."""
        return "no data" if self.survival is None else self.coverage.status

    def to_dict(self) -> dict[str, Any]:
        s = self.survival
        return {
            "crisis": self.crisis, "venue": self.target.venue, "symbol": self.target.symbol,
            "timeframe": self.target.timeframe, "strategy": self.strategy.name, "params": dict(self.strategy.params),
            "risk": self.risk, "start": self.start.isoformat(), "end": self.end.isoformat(),
            "status": self.status, "coverage": self.coverage.to_dict(), "note": self.note,
            "max_drawdown": s.max_drawdown if s is not None else None,
            "survived": s.survived if s is not None else None,
            "survival": s.to_dict() if s is not None else None,
            "baseline": self.baseline.to_dict() if self.baseline is not None else None,
            "execution_model_hash": self.execution_model_hash,
        }


def strategies_of(cfg: StressConfig, only: str | None = None) -> list[StrategySpec]:
    """Buy-and-hold first (the baseline every strategy is read against), then the configured ones;
    ``only`` keeps one of them (buy-and-hold stays)."""
    specs = [BASELINE] + [s for s in cfg.strategies if s.name != BASELINE.name]
    if only is not None:
        keep = [s for s in specs if s.name == only]
        if not keep:
            keep = [StrategySpec(name=only)]
        specs = [BASELINE] + [s for s in keep if s.name != BASELINE.name]
    return specs


def request_for(trading: Any, cfg: StressConfig, target: CrisisTarget, spec: StrategySpec, start: datetime,
                end: datetime, *, risk: bool) -> BacktestRequest:
    """The backtest of one cell: the config's venue rules and risk section, warm-up before ``start``."""
    asset_classes = {u.venue: u.asset_class for u in trading.market_data.universes}
    risk_cfg = None
    if risk:
        risk_cfg = trading.risk
        sc = trading.strategy(spec.name)
        if sc.trailing_stop is not None:
            risk_cfg = risk_cfg.model_copy(update={"trailing_stop": sc.trailing_stop})
    params = {**trading.strategy(spec.name).params, **spec.params}
    return BacktestRequest(
        strategy=spec.name, params={k: v for k, v in params.items() if isinstance(v, str | int | float)},
        symbol=target.symbol, venue=target.venue, timeframe=target.timeframe, start=start, end=end, cash=cfg.cash,
        calendar=calendar_for_venue(target.venue, asset_classes),  # type: ignore[arg-type]
        venue_config=dict(trading.venues.get(target.venue, {})), persist=False, risk=risk_cfg,
        warmup_bars=cfg.warmup_bars, seed=cfg.seed, device=cfg.compute.device)


def _survival(result: Any, cfg: StressConfig, request: BacktestRequest) -> Survival:
    trips = sum(1 for e in result.breaker_events
                if e.get("from_state") == "active" and e.get("to_state") != "active")
    return survival_report(result.ts, result.equity[:, 0], timeframe=request.timeframe,
                           calendar=request.resolved_calendar(), limits=cfg.limits, breaker_trips=trips,
                           trades=len(result.portfolios[0].trades) if result.portfolios else 0)


_UNSET: Any = object()


def normal_baseline(trading: Any, cfg: StressConfig, warehouse: Any, target: CrisisTarget, spec: StrategySpec,
                    start: datetime) -> Survival | None:
    """The strategy's own rules (risk layer off: one batch kernel call) over the ``baseline_days``
    before a window, the "normal period" a crisis result is read against; None when not stored."""
    b_start = start - timedelta(days=cfg.baseline_days)
    if coverage(warehouse, target, b_start, start).status == "no data":
        return None
    req = request_for(trading, cfg, target, spec, b_start, start, risk=False)
    if spec.name == BASELINE.name:
        req = req.model_copy(update={"warmup_bars": 0})
    try:
        return _survival(run_backtest(req, warehouse), cfg, req)
    except InvalidInput:
        return None


def run_window(trading: Any, cfg: StressConfig, warehouse: Any, crisis: str, target: CrisisTarget,
               spec: StrategySpec, start: datetime, end: datetime, *, risk: bool,
               cov: Coverage | None = None, baseline: Any = _UNSET) -> WindowResult:
    """One cell; ``no data`` (with what is stored) when the warehouse does not hold the window."""
    cov = cov or coverage(warehouse, target, start, end)
    base = WindowResult(crisis, target, spec, risk, start, end, cov, None)
    if cov.status == "no data":
        return base
    request = request_for(trading, cfg, target, spec, start, end, risk=risk)
    if spec.name == BASELINE.name:  # buys on its first bar: warming it up would buy before the window
        request = request.model_copy(update={"warmup_bars": 0})
    try:
        result = run_backtest(request, warehouse)
    except InvalidInput as e:  # e.g. fewer than two bars in a partial window: said, not skipped
        return WindowResult(crisis, target, spec, risk, start, end,
                            Coverage("no data", cov.stored_first, cov.stored_last, str(e)), None)
    if baseline is _UNSET:
        baseline = normal_baseline(trading, cfg, warehouse, target, spec, start)
    return WindowResult(crisis, target, spec, risk, start, end, cov, _survival(result, cfg, request), baseline,
                        result.execution_model_hash, np.asarray(result.ts), result.equity[:, 0].copy(),
                        "" if cov.status == "ok" else cov.note)


def run_crisis(trading: Any, cfg: StressConfig, warehouse: Any, crisis: Crisis, *, strategy: str | None = None,
               symbol: str | None = None, venue: str | None = None,
               risk_modes: tuple[bool, ...] = (False, True)) -> list[WindowResult]:
    """Every target x strategy x risk mode of one crisis (``symbol``/``venue`` narrow the targets)."""
    start, end = window(crisis)
    targets = [t for t in crisis.targets if (symbol is None or t.symbol == symbol) and (venue is None or
                                                                                         t.venue == venue)]
    if not targets and symbol is not None:
        raise InvalidInput(f"crisis {crisis.name} does not apply to {symbol}"
                           f"{' on ' + venue if venue else ''}; its series: "
                           + ", ".join(f"{t.symbol} ({t.venue})" for t in crisis.targets))
    out: list[WindowResult] = []
    for target in targets:
        cov = coverage(warehouse, target, start, end)
        for spec in strategies_of(cfg, strategy):
            base = normal_baseline(trading, cfg, warehouse, target, spec, start) if cov.status != "no data" else None
            for risk in risk_modes:
                out.append(run_window(trading, cfg, warehouse, crisis.name, target, spec, start, end, risk=risk,
                                      cov=cov, baseline=base))
    return out
