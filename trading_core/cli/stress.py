"""``trading stress``: crisis survival, Monte Carlo and parameter stability (docs/stress.md).

``trading stress [--strategy S] [--symbol S --venue V] [--crisis NAME ... | --start D --end D] [--paths N]
[--json]`` runs the survival report of every strategy (and buy-and-hold) with the risk layer on
and off through each window -- ``no data`` for windows the warehouse does not hold -- and stores
it in the ``stress`` schema; ``--paths N`` adds N Monte Carlo paths per crisis. ``trading stress
list`` shows the catalogue and what the warehouse covers, ``trading stress montecarlo`` runs only
the Monte Carlo, ``trading stress stability`` the parameter sweeps and walk-forward folds.
Parsing needs the standard library only; the runners are imported by the handlers.
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from typing import Any

from ..errors import InvalidInput


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stress", help="crisis survival, Monte Carlo and parameter stability",
                       description="Run strategies through historical crises (risk on and off), Monte Carlo "
                                   "paths and parameter sweeps; results go to the stress schema.")
    _window_flags(p)
    p.add_argument("--paths", default=None, help="also run N Monte Carlo paths per crisis (default: none)")
    p.set_defaults(handler=_run_survival)
    inner = p.add_subparsers(dest="stress_command", metavar="{list,montecarlo,stability}")
    ls = inner.add_parser("list", help="the crisis catalogue and which windows the warehouse covers")
    ls.add_argument("--json", action="store_true", help="print as JSON")
    ls.set_defaults(handler=_run_list)
    mc = inner.add_parser("montecarlo", help="Monte Carlo paths per crisis (block bootstrap and execution draws)")
    _window_flags(mc, strategy=False)
    mc.add_argument("--paths", default=None, help="paths per crisis (default: stress.montecarlo.paths)")
    mc.set_defaults(handler=_run_montecarlo)
    st = inner.add_parser("stability", help="grid sweeps, walk-forward folds, plateau score, overfit flag")
    st.add_argument("--sweep", action="append", default=[], help="a configured sweep name (repeatable; default all)")
    st.add_argument("--no-save", dest="save", action="store_false", help="do not write the stress schema")
    st.add_argument("--no-figures", dest="figures", action="store_false", help="do not write figures")
    st.add_argument("--json", action="store_true", help="print the results as JSON")
    st.set_defaults(handler=_run_stability)


def _window_flags(p: argparse.ArgumentParser, *, strategy: bool = True) -> None:
    if strategy:
        p.add_argument("--strategy", help="one configured or registered strategy (buy-and-hold always runs)")
    p.add_argument("--symbol", help="only this series of each crisis (with --venue)")
    p.add_argument("--venue", help="the venue of --symbol")
    p.add_argument("--timeframe", help="custom window: the series' timeframe (default: its universe's)")
    p.add_argument("--crisis", action="append", default=[], help="a crisis name (repeatable; default: all)")
    p.add_argument("--start", help="custom window: first day (YYYY-MM-DD); excludes --crisis")
    p.add_argument("--end", help="custom window: last day included (YYYY-MM-DD)")
    p.add_argument("--no-save", dest="save", action="store_false", help="do not write the stress schema")
    p.add_argument("--no-figures", dest="figures", action="store_false", help="do not write figures")
    p.add_argument("--json", action="store_true", help="print the results as JSON (max_drawdown per window)")


def _day(name: str, raw: str | None) -> date | None:
    if raw is None:
        return None
    from ..backtest.request import DATE_RANGE, MAX_END, MIN_START  # pydantic only, no Numba

    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(f"--{name} {raw!r}: expected a day YYYY-MM-DD") from None
    if not MIN_START.date() <= day < MAX_END.date():
        raise InvalidInput(f"--{name} {raw}: outside the supported range {DATE_RANGE}")
    return day


def _paths(raw: str | None) -> int | None:
    if raw is None:
        return None
    from ..stress.config import MAX_PATHS

    try:
        n = int(raw)
    except ValueError:
        raise InvalidInput(f"--paths {raw!r}: expected a whole number") from None
    if not 1 <= n <= MAX_PATHS:
        raise InvalidInput(f"--paths {n}: expected 1 .. {MAX_PATHS}")
    return n


def _check(args: argparse.Namespace) -> tuple[date | None, date | None]:
    start, end = _day("start", args.start), _day("end", args.end)
    if (start or end) and args.crisis:
        raise InvalidInput("stress: --crisis and --start/--end exclude each other")
    if (start is None) != (end is None):
        raise InvalidInput("stress: a custom window needs both --start and --end")
    if start and end and end < start:
        raise InvalidInput(f"stress: --end {end} is before --start {start}")
    if (start or args.symbol) and bool(args.symbol) != bool(args.venue):
        raise InvalidInput("stress: --symbol and --venue go together")
    if args.symbol:
        from ..symbols import check_symbol, check_venue

        check_symbol(args.symbol)
        check_venue(args.venue)
    if args.timeframe is not None:
        from ..timeframes import timeframe_ms

        timeframe_ms(args.timeframe)
    if getattr(args, "strategy", None) is not None:
        from ..strategies.registry import check_strategy_name  # names only: no strategy module is imported

        check_strategy_name(args.strategy)
    return start, end


def _setup(args: argparse.Namespace) -> tuple[Any, Any]:
    from ..config import load_config
    from ..warehouse import Warehouse

    cfg = load_config(args.config)
    wh = Warehouse(cfg.warehouse.path, deadline_s=cfg.warehouse.lock_deadline_s)
    if not wh.path.exists():
        raise InvalidInput(f"no warehouse at {wh.path}; load bars first (trading ingest sample)")
    return cfg, wh


def _run_survival(args: argparse.Namespace, *, montecarlo_only: bool = False) -> int:
    start, end = _check(args)
    paths = _paths(getattr(args, "paths", None))
    cfg, wh = _setup(args)
    from ..stress.suite import run_stress, select_crises

    crises = None if start else select_crises(cfg.stress, args.crisis or None)
    run = run_stress(cfg, wh, crises=crises, strategy=getattr(args, "strategy", None), symbol=args.symbol,
                     venue=args.venue, timeframe=args.timeframe, start=start, end=end,
                     montecarlo=montecarlo_only or paths is not None, paths=paths, persist=args.save,
                     figures=args.figures)
    if montecarlo_only:
        run.windows = []
    out = run.to_dict()
    if args.json:
        print(json.dumps(out, indent=2, default=str, allow_nan=False))
    else:
        print(_table(out))
    return 0


def _sensitivity(m: dict[str, Any]) -> str:
    """The drawn execution assumption the paths' return ranks most strongly with, if any."""
    corr = {k: v["corr_total_return"] for k, v in (m.get("execution") or {}).items()
            if v.get("corr_total_return") is not None}
    if not corr:
        return ""
    k = max(corr, key=lambda n: abs(corr[n]))
    if abs(corr[k]) < 0.3:  # weaker than this, the price paths, not the costs, set the outcome
        return f", no execution draw ranks with the return (strongest: {k}, rank corr {corr[k]:+.2f})"
    return f", return most sensitive to {k} (rank corr {corr[k]:+.2f})"


def _run_montecarlo(args: argparse.Namespace) -> int:
    return _run_survival(args, montecarlo_only=True)


def _run_stability(args: argparse.Namespace) -> int:
    cfg, wh = _setup(args)
    from ..stress.suite import run_stability_job

    run = run_stability_job(cfg, wh, sweeps=args.sweep or None, persist=args.save, figures=args.figures)
    out = run.to_dict()
    if args.json:
        print(json.dumps(out, indent=2, default=str, allow_nan=False))
    else:
        print(_table(out))
    return 0


def _run_list(args: argparse.Namespace) -> int:
    cfg, wh = _setup(args)
    from ..stress.catalogue import coverage, window
    from ..stress.suite import select_crises

    rows = []
    for c in select_crises(cfg.stress):
        s, e = window(c)
        for t in c.targets:
            cov = coverage(wh, t, s, e)
            rows.append({"crisis": c.name, "title": c.title, "start": str(c.start), "end": str(c.end),
                         "venue": t.venue, "symbol": t.symbol, "timeframe": t.timeframe, "status": cov.status,
                         "note": cov.note})
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            print(f"{r['crisis']:<26} {r['start']} .. {r['end']}  {r['symbol']:<8} {r['venue']:<9} {r['status']}")
    return 0


def _pct(v: Any) -> str:
    return "-" if v is None else f"{v:+.1%}"


def _table(out: dict[str, Any]) -> str:
    lines = [f"stress run {out['run_id']} ({'stored' if out['persisted'] else 'not stored'})"]
    if out["windows"]:
        lines.append(f"{'crisis':<26} {'symbol':<8} {'strategy':<20} {'risk':<4} {'status':<8} {'max dd':>8} "
                     f"{'return':>8} {'trips':>5}  verdict")
        for w in out["windows"]:
            s = w["survival"] or {}
            verdict = "-" if w["survived"] is None else ("survived" if w["survived"] else "FAILED")
            lines.append(f"{w['crisis']:<26} {w['symbol']:<8} {w['strategy']:<20} {'on' if w['risk'] else 'off':<4} "
                         f"{w['status']:<8} {_pct(w['max_drawdown']):>8} {_pct(s.get('total_return')):>8} "
                         f"{s.get('breaker_trips', '-')!s:>5}  {verdict}")
    for m in out["montecarlo"]:
        if m.get("status") == "no data":
            lines.append(f"montecarlo {m['crisis']}: no data ({m['note']})")
        else:
            lines.append(f"montecarlo {m['crisis']}: {m['paths']} paths, median return "
                         f"{_pct(m['total_return']['p50'])}, p5 drawdown {_pct(m['max_drawdown']['p5'])}, "
                         f"P(ruin) {m['prob_ruin']:.1%}, {m['paths_per_s']} paths/s{_sensitivity(m)}")
    for s in out["stability"]:
        if s.get("status") == "no data":
            lines.append(f"stability {s['sweep']}: no data ({s['note']})")
        else:
            lines.append(f"stability {s['sweep']}: best {s['best_params']} robust {s['robust_params']} plateau "
                         f"{s['plateau_score']} drift {s['optimum_drift']} IS {s['in_sample']} OOS "
                         f"{s['out_of_sample']} overfit {s['overfit']}")
    if out["figures"]:
        lines.append(f"figures: {len(out['figures'])} files in {out['figures'][0].rsplit('/', 1)[0]}")
    return "\n".join(lines)
