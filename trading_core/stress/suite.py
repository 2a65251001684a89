"""The stress and stability jobs end to end: run, store with lineage, draw the figures.

``run_stress`` is one run over one or more crisis windows (or a custom window): the survival
report of every strategy x series x risk mode, optionally the Monte Carlo of each covered crisis,
stored in ``stress.*`` in one transaction with the figures in ``<data_dir>/stress/<run_id>/``.
``run_stability_job`` does the same for the configured parameter sweeps. The CLI and the Dagster
assets both call these, so a scheduled run and ``trading stress`` give the same rows.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any

from ..config import PROJECT_ROOT
from ..errors import InvalidInput
from .catalogue import coverage, load_catalogue, window
from .config import Crisis, CrisisTarget, StressConfig
from .crisis import WindowResult, request_for, run_crisis, run_window, strategies_of
from .source import CachedBars

__all__ = ["StressRun", "code_version", "run_stability_job", "run_stress", "select_crises"]


@cache
def code_version() -> str:
    """The package version and, in a git checkout, the commit (``0.1.0+g1a2b3c4``, ``+dirty``)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        v = version("trading-platform")
    except PackageNotFoundError:
        v = "0+unknown"
    try:
        head = subprocess.run(["git", "-C", str(PROJECT_ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=5, check=False).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(PROJECT_ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        head, dirty = "", ""
    return f"{v}+g{head}{'.dirty' if dirty else ''}" if head else v


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class StressRun:
    """What one run produced; ``to_dict`` is the CLI's ``--json``."""

    run_id: str
    kind: str
    created_at: datetime
    windows: list[WindowResult] = field(default_factory=list)
    montecarlo: list[Any] = field(default_factory=list)  # MCResult
    montecarlo_no_data: list[dict[str, Any]] = field(default_factory=list)
    stability: list[Any] = field(default_factory=list)  # StabilityResult
    stability_no_data: list[dict[str, Any]] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    persisted: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "kind": self.kind, "created_at": self.created_at.isoformat(),
                "persisted": self.persisted, "windows": [w.to_dict() for w in self.windows],
                "montecarlo": [m.to_dict() for m in self.montecarlo] + self.montecarlo_no_data,
                "stability": [s.summary for s in self.stability] + self.stability_no_data,
                "figures": self.figures}


def select_crises(cfg: StressConfig, names: list[str] | None = None) -> list[Crisis]:
    """The catalogue's crises, or the named ones (an unknown name is an error listing the known)."""
    cat = load_catalogue(cfg.crises_file)
    if not names:
        return list(cat.crises)
    known = {c.name: c for c in cat.crises}
    missing = [n for n in names if n not in known]
    if missing:
        raise InvalidInput(f"unknown crisis {', '.join(missing)}; known: {', '.join(known)}")
    return [known[n] for n in names]


def _figures_dir(trading: Any, run_id: str) -> Path:
    return Path(trading.data_dir) / "stress" / run_id


def run_stress(trading: Any, warehouse: Any, *, crises: list[Crisis] | None = None, strategy: str | None = None,
               symbol: str | None = None, venue: str | None = None, timeframe: str | None = None,
               start: date | None = None, end: date | None = None, montecarlo: bool = False,
               paths: int | None = None, persist: bool = True, figures: bool = True, client: Any = None,
               run_id: str | None = None) -> StressRun:
    """Survival (and Monte Carlo) over crises or one custom window; stored and drawn when asked."""
    cfg: StressConfig = trading.stress
    store, warehouse = warehouse, CachedBars(warehouse)  # reads from memory; ``store`` is written
    rid = run_id or uuid.uuid4().hex
    run = StressRun(rid, "crisis" if not montecarlo else "crisis+montecarlo", datetime.now(UTC))
    plan: list[tuple[str, list[CrisisTarget], datetime, datetime]] = []
    if start is not None or end is not None:
        if start is None or end is None or symbol is None or venue is None:
            raise InvalidInput("stress: a custom window needs --start, --end, --symbol and --venue")
        tf = timeframe or next((u.timeframe for u in trading.market_data.universes if u.venue == venue and
                                symbol in u.symbols), None)
        if tf is None:
            raise InvalidInput(f"stress: {symbol} on {venue} is in no configured universe; pass --timeframe")
        s, e = window((start, end))
        if e <= s:
            raise InvalidInput(f"stress: --end {end} must be after --start {start}")
        plan.append(("custom", [CrisisTarget(venue=venue, symbol=symbol, timeframe=tf)], s, e))
        for target in plan[0][1]:
            cov = coverage(warehouse, target, s, e)
            for spec in strategies_of(cfg, strategy):
                for risk in (False, True):
                    run.windows.append(run_window(trading, cfg, warehouse, "custom", target, spec, s, e, risk=risk,
                                                  cov=cov))
    else:
        for c in crises if crises is not None else select_crises(cfg):
            run.windows.extend(run_crisis(trading, cfg, warehouse, c, strategy=strategy, symbol=symbol, venue=venue))
            s, e = window(c)
            plan.append((c.name, [t for t in c.targets if (symbol is None or t.symbol == symbol) and
                                  (venue is None or t.venue == venue)], s, e))
    if montecarlo:
        _montecarlo(trading, warehouse, run, plan, paths, client)
    if figures:
        run.figures = _draw(trading, run)
    if persist:
        _persist(trading, store, run)
        run.persisted = True
    return run


def _montecarlo(trading: Any, warehouse: Any, run: StressRun, plan: list[tuple[str, list[CrisisTarget], datetime,
                                                                               datetime]],
                paths: int | None, client: Any) -> None:
    """The Monte Carlo of each crisis on its first covered series (the configured MC strategy)."""
    from .montecarlo import run_montecarlo

    cfg: StressConfig = trading.stress
    mc = cfg.montecarlo if paths is None else cfg.montecarlo.model_copy(update={"paths": int(paths)})
    for name, targets, s, e in plan:
        covered = [t for t in targets if coverage(warehouse, t, s, e).status != "no data"]
        if not covered:
            run.montecarlo_no_data.append({"crisis": name, "status": "no data",
                                           "note": "; ".join(coverage(warehouse, t, s, e).note for t in targets)})
            continue
        req = request_for(trading, cfg, covered[0], mc.strategy, s, e, risk=mc.risk)
        try:
            res = run_montecarlo(req, warehouse, mc, seed=cfg.seed, crisis=name, device=cfg.compute.device,
                                 scheduler=cfg.compute.dask_scheduler, client=client,
                                 timeout_s=cfg.compute.timeout_s)
        except InvalidInput as err:
            run.montecarlo_no_data.append({"crisis": name, "status": "no data", "note": str(err)})
            continue
        run.montecarlo.append(res)


def _draw(trading: Any, run: StressRun) -> list[str]:
    from .figures import drawdown_figure, fan_figure, heatmap_figure, save_figure

    folder = _figures_dir(trading, run.run_id)
    out: list[str] = []
    by_crisis: dict[str, list[tuple[str, Any, Any]]] = {}
    for w in run.windows:
        if w.survival is not None and w.equity.size:
            label = f"{w.target.symbol} {w.strategy.name} risk {'on' if w.risk else 'off'}"
            by_crisis.setdefault(w.crisis, []).append((label, w.ts, w.equity))
    for crisis, curves in by_crisis.items():
        out += save_figure(drawdown_figure(f"Drawdown through {crisis}", curves), folder, f"drawdown_{crisis}")
    for m in run.montecarlo:
        out += save_figure(fan_figure(f"Monte Carlo {m.crisis}: {m.paths} paths, {m.strategy} risk "
                                      f"{'on' if m.risk else 'off'}", m.ts, m.equity_bands), folder,
                           f"montecarlo_{m.crisis}")
    for s in run.stability:
        sf = s.summary["surface"]
        out += save_figure(heatmap_figure(f"{s.sweep.name}: {s.sweep.metric} over the grid", sf["keys"], sf["axes"],
                                          sf["values"]), folder, f"heatmap_{s.sweep.name}")
    return out


def _survival_row(w: WindowResult) -> dict[str, Any]:
    s = w.survival
    d = w.to_dict()
    row: dict[str, Any] = {"crisis": w.crisis, "venue": w.target.venue, "symbol": w.target.symbol,
                           "timeframe": w.target.timeframe, "strategy": w.strategy.name, "risk": w.risk,
                           "status": w.status, "window_start": w.start, "window_end": w.end,
                           "detail": {"coverage": d["coverage"], "params": d["params"], "note": w.note,
                                      "baseline": d["baseline"],
                                      "failed_because": list(s.failed_because) if s else [],
                                      "execution_model_hash": w.execution_model_hash}}
    if s is not None:
        row.update(bars=s.bars, max_drawdown=s.max_drawdown, drawdown_peak=s.drawdown_peak,
                   drawdown_trough=s.drawdown_trough, drawdown_recovery=s.drawdown_recovery,
                   time_to_recover_days=s.time_to_recover_days, worst_day=s.worst_day,
                   worst_day_date=s.worst_day_date, breaker_trips=s.breaker_trips, final_equity=s.final_equity,
                   total_return=s.total_return, survived=s.survived)
    return row


def _persist(trading: Any, warehouse: Any, run: StressRun) -> None:
    from ..warehouse.stress import write_stress_run

    cfg: StressConfig = trading.stress
    ranges = [{"crisis": w.crisis, "venue": w.target.venue, "symbol": w.target.symbol,
               "timeframe": w.target.timeframe, "start": w.start.isoformat(), "end": w.end.isoformat(),
               "status": w.status} for w in run.windows if w.risk is False and w.strategy.name == "buy_and_hold"]
    ranges += [{"sweep": s.sweep.name, "venue": s.sweep.venue, "symbol": s.sweep.symbol,
                "timeframe": s.sweep.timeframe, "start": str(s.sweep.start), "end": str(s.sweep.end),
                "status": "ok"} for s in run.stability]
    hashes = sorted({w.execution_model_hash for w in run.windows if w.execution_model_hash} |
                    {m.execution_model_hash for m in run.montecarlo})
    scope = ",".join(sorted({w.crisis for w in run.windows} | {s.sweep.name for s in run.stability})) or "none"
    strategies = [s.model_dump(mode="json") for s in strategies_of(cfg)]
    config = {"stress": cfg.model_dump(mode="json"), "strategies": strategies,
              "risk": trading.risk.model_dump(mode="json"), "venues": trading.venues}
    summary = {"windows": len(run.windows), "no_data": sum(w.status == "no data" for w in run.windows),
               "failed": sum(1 for w in run.windows if w.survival is not None and not w.survival.survived),
               "montecarlo": len(run.montecarlo), "stability": len(run.stability)}
    mc_rows, pct_rows = [], []
    for m in run.montecarlo:
        key = {"crisis": m.crisis, "venue": m.venue, "symbol": m.symbol, "strategy": m.strategy, "risk": m.risk}
        mc_rows.append({**key, "mode": m.mode, "paths": m.paths, "draws": m.draws, "device": m.device,
                        "prob_ruin": m.summary["prob_ruin"], "ruin_drawdown": m.ruin_drawdown,
                        "prob_loss": m.summary["prob_loss"], "seconds": m.seconds,
                        "detail": {"execution": m.summary.get("execution", {}),
                                   "execution_model_hash": m.execution_model_hash, "seed": m.seed}})
        for metric in ("final_equity", "total_return", "max_drawdown"):
            pct_rows += [{**key, "metric": metric, "stat": k, "value": v} for k, v in m.summary[metric].items()]
    history, stab = [], []
    for s in run.stability:
        history += s.history_rows()
        sm = s.summary
        stab.append({"sweep": s.sweep.name, "strategy": s.sweep.strategy, "venue": s.sweep.venue,
                     "symbol": s.sweep.symbol, "metric": s.sweep.metric, "best_params": sm["best_params"],
                     "robust_params": sm["robust_params"], "plateau_score": sm["plateau_score"],
                     "optimum_drift": sm["optimum_drift"], "in_sample": sm["in_sample"],
                     "out_of_sample": sm["out_of_sample"], "overfit": sm["overfit"],
                     "detail": {k: v for k, v in sm.items() if k in ("folds", "sensitivity", "surface",
                                                                      "best_value", "robust_value")}})
    record = {"run_id": run.run_id, "kind": run.kind, "created_at": run.created_at, "scope": scope,
              "data_range": ranges, "config": config,
              "execution_model_hash": hashes[0] if len(hashes) == 1 else (_hash(hashes) if hashes else None),
              "seed": cfg.seed, "code_version": code_version(),
              "figures_dir": str(_figures_dir(trading, run.run_id)) if run.figures else None, "summary": summary}
    if hasattr(warehouse, "migrate"):
        warehouse.migrate()
    with warehouse.connect() as con:
        write_stress_run(con, record, survival=[_survival_row(w) for w in run.windows], montecarlo=mc_rows,
                         percentiles=pct_rows, history=history, stability=stab)
        con.execute("CHECKPOINT")


def run_stability_job(trading: Any, warehouse: Any, *, sweeps: list[str] | None = None, persist: bool = True,
                      figures: bool = True, client: Any = None, run_id: str | None = None) -> StressRun:
    """Every configured sweep (or the named ones): full-range surface and walk-forward folds."""
    from ..backtest.request import calendar_for_venue
    from .stability import run_stability

    cfg: StressConfig = trading.stress
    known = {s.name: s for s in cfg.stability.sweeps}
    if sweeps:
        missing = [n for n in sweeps if n not in known]
        if missing:
            raise InvalidInput(f"unknown sweep {', '.join(missing)}; configured: {', '.join(known) or 'none'}")
    chosen = [known[n] for n in sweeps] if sweeps else list(known.values())
    run = StressRun(run_id or uuid.uuid4().hex, "stability", datetime.now(UTC))
    source = CachedBars(warehouse)
    asset_classes = {u.venue: u.asset_class for u in trading.market_data.universes}
    for sw in chosen:
        try:
            run.stability.append(run_stability(
                sw, source, cfg.stability, venue_config=dict(trading.venues.get(sw.venue, {})),
                calendar=calendar_for_venue(sw.venue, asset_classes), cash=cfg.cash, warmup=cfg.warmup_bars,
                device=cfg.compute.device, scheduler=cfg.compute.dask_scheduler, client=client,
                timeout_s=cfg.compute.timeout_s))
        except InvalidInput as e:
            run.stability_no_data.append({"sweep": sw.name, "status": "no data", "note": str(e)})
    if figures:
        run.figures = _draw(trading, run)
    if persist:
        _persist(trading, warehouse, run)
        run.persisted = True
    return run
