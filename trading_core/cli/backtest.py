"""``trading backtest``: run a strategy over stored bars, store the result, print metrics and trades.

Every argument is validated here, in the handler, so a bad one is reported as ONE line
(``trading: ...``, exit 2) rather than argparse's usage block.
"""

from __future__ import annotations

import argparse
import json
import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from ..config import load_config
from ..errors import InvalidInput
from ..symbols import check_symbol, check_venue
from ..timeframes import TIMEFRAME_MS, timeframe_ms
from ..warehouse import Warehouse

if TYPE_CHECKING:
    from ..backtest import BacktestRequest, BacktestResult

_FILLS = ("next_open", "close")
_SIZINGS = ("all_in", "fixed", "risk")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "backtest", help="run a strategy over stored bars and report metrics",
        description="Run a strategy over warehouse bars through the simulation engine; the run, "
                    "its trades and equity are stored in the backtest schema.")
    p.add_argument("--strategy", help="a registered strategy name (docs/strategies.md lists them)")
    p.add_argument("--strategy-file", dest="strategy_file", metavar="PATH",
                   help="a YAML rule strategy (docs/strategies.md); excludes --strategy")
    p.add_argument("--param", action="append", default=[], metavar="K=V",
                   help="strategy parameter, repeatable (e.g. fast=20, grid=10:50,20:100)")
    p.add_argument("--symbol", help="e.g. ^GSPC or BTC/USD; A,B,... = one account holding them all (shared cash)")
    p.add_argument("--venue", help="e.g. yahoo or coinbase")
    p.add_argument("--timeframe", help=f"one of {', '.join(TIMEFRAME_MS)}")
    p.add_argument("--start", help="first day (YYYY-MM-DD) or instant (ISO 8601, UTC)")
    p.add_argument("--end", help="last day included (YYYY-MM-DD) or exclusive instant (ISO 8601)")
    p.add_argument("--cash", default="100000", help="starting cash (> 0; default 100000)")
    p.add_argument("--fee-bps", dest="fee_bps", default=None,
                   help="flat fee in basis points (>= 0; default: the venue's fee schedule)")
    p.add_argument("--slippage", default="none", help="none | fixed:<bps> | sqrt | sqrt:<k> (default none)")
    p.add_argument("--fill", default="next_open", help="next_open | close (default next_open)")
    p.add_argument("--sizing", default="all_in", help="all_in | fixed | risk (default all_in)")
    p.add_argument("--size", default="1", help="units for fixed, equity fraction at risk for risk (> 0)")
    p.add_argument("--short", action="store_true", help="exit signals open short positions")
    p.add_argument("--allocation", default="signals",
                   help="several symbols: signals (each signal sized alone; all_in = equal shares) | "
                        "markowitz (signals pick the held set, mean-variance weights size it)")
    p.add_argument("--rebalance-bars", dest="rebalance_bars", default="0",
                   help="markowitz: also rebalance every N bars (0 = only when the held set changes)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | auto (default cpu)")
    p.add_argument("--no-risk", dest="risk", action="store_false",
                   help="skip the risk layer (VIX filter, order checks, trailing stop) and signal filters")
    p.add_argument("--risk-config", dest="risk_config", metavar="PATH",
                   help="a YAML file whose `risk:` section (or top level) replaces the config's risk section")
    p.add_argument("--no-save", dest="save", action="store_false", help="do not write the backtest schema")
    p.add_argument("--json", action="store_true", help="print metrics, trades and fills as JSON")
    p.set_defaults(handler=_run)


# ############# Argument validation ############# #


def _required(args: argparse.Namespace, *names: str) -> None:
    missing = [f"--{n.replace('_', '-')}" for n in names if getattr(args, n) in (None, "")]
    if missing:
        raise InvalidInput(f"backtest: missing required argument(s) {', '.join(missing)}")


def _number(name: str, raw: str, *, allow_zero: bool = False) -> float:
    try:
        v = float(raw)
    except (TypeError, ValueError):
        raise InvalidInput(f"--{name} {raw!r}: expected a number") from None
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise InvalidInput(f"--{name} {raw!r}: expected a number {'>= 0' if allow_zero else '> 0'}")
    return v


def _instant(name: str, raw: str, *, end: bool) -> datetime:
    """A date means the whole day: ``--start`` its midnight, ``--end`` the next midnight (UTC)."""
    try:
        if len(raw) == 10:
            d = date.fromisoformat(raw)
            dt = datetime(d.year, d.month, d.day, tzinfo=UTC)
            return dt + timedelta(days=1) if end else dt
        dt = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(f"--{name} {raw!r}: expected a date YYYY-MM-DD or an ISO 8601 instant") from None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _choice(name: str, raw: str, allowed: tuple[str, ...]) -> str:
    if raw not in allowed:
        raise InvalidInput(f"--{name} {raw!r}: expected one of {', '.join(allowed)}")
    return raw


def _strategy_file(args: argparse.Namespace) -> None:
    """``--strategy-file F`` is ``--strategy yaml --param file=<abs F> --param sha256=<content>``.

    The absolute path and content hash go into the stored request, so a run records exactly which
    rules it used and refuses a file edited between validation and run.
    """
    path = getattr(args, "strategy_file", None)
    if not path:
        return
    if args.strategy:
        raise InvalidInput("backtest: --strategy and --strategy-file are mutually exclusive")
    from ..strategies.yaml_builder import file_sha256

    resolved = Path(path).expanduser().resolve()
    if not resolved.is_file():
        raise InvalidInput(f"--strategy-file {path}: no such file")
    args.strategy = "yaml"
    args.param = [*args.param, f"file={resolved}", f"sha256={file_sha256(resolved)}"]


def build_request(args: argparse.Namespace, cfg: Any) -> BacktestRequest:
    # The backtest stack (Numba kernels) is imported here, not at parse time, so other commands
    # start quickly.
    from ..backtest import BacktestRequest, calendar_for_venue, parse_slippage
    from ..strategies import get_strategy, parse_params

    """Validate every argument and return the request; raise ``InvalidInput`` naming the bad one."""
    _strategy_file(args)
    _required(args, "strategy", "symbol", "venue", "timeframe", "start", "end")
    params = _config_params(args.strategy, dict(parse_params(args.param)), cfg)
    get_strategy(args.strategy, params)  # unknown names and bad params fail before any I/O
    universe = [check_symbol(x.strip()) for x in str(args.symbol).split(",")]
    if len(set(universe)) != len(universe):
        raise InvalidInput(f"--symbol {args.symbol}: a symbol is named twice")
    symbol = universe[0]
    venue = check_venue(args.venue)
    allocation = _choice("allocation", getattr(args, "allocation", "signals"), ("signals", "markowitz"))
    if allocation == "markowitz" and len(universe) < 2:
        raise InvalidInput("--allocation markowitz needs two or more symbols (--symbol A,B,...)")
    rebalance = _number("rebalance-bars", str(getattr(args, "rebalance_bars", "0")), allow_zero=True)
    if rebalance != int(rebalance):
        raise InvalidInput(f"--rebalance-bars {args.rebalance_bars!r}: expected a whole number of bars")
    timeframe_ms(args.timeframe)
    start = _instant("start", args.start, end=False)
    end = _instant("end", args.end, end=True)
    if end <= start:
        raise InvalidInput(f"--end {args.end} must be after --start {args.start}")
    try:
        parse_slippage(args.slippage)
    except ValueError as e:
        raise InvalidInput(f"--slippage: {e}") from None
    asset_classes = {u.venue: u.asset_class for u in cfg.market_data.universes}
    try:
        return BacktestRequest(
            strategy=args.strategy, params=params, symbol=symbol, venue=venue, timeframe=args.timeframe,
            start=start, end=end, cash=_number("cash", args.cash),
            fee_bps=None if args.fee_bps is None else _number("fee-bps", args.fee_bps, allow_zero=True),
            slippage=args.slippage, fill=_choice("fill", args.fill, _FILLS),  # type: ignore[arg-type]
            sizing=_choice("sizing", args.sizing, _SIZINGS),  # type: ignore[arg-type]
            size=_number("size", args.size), short=bool(args.short),
            device=_choice("device", args.device, ("cpu", "cuda", "auto")),  # type: ignore[arg-type]
            calendar=calendar_for_venue(venue, asset_classes),  # type: ignore[arg-type]
            venue_config=dict(cfg.venues.get(venue, {})), persist=bool(args.save),
            symbols=tuple(universe) if len(universe) > 1 else (), allocation=allocation,  # type: ignore[arg-type]
            rebalance_bars=int(rebalance), **_risk_fields(args, cfg),
        )
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(x) for x in err["loc"]) or "request"
        raise InvalidInput(f"backtest {where}: {err['msg'].removeprefix('Value error, ')}") from None


def _config_params(strategy: str, cli: dict[str, str], cfg: Any) -> dict[str, str | float | int]:
    """``strategies.<name>.params`` as defaults, then ``preset=<name>`` from its presets, then
    the command line's other ``--param`` values (the most specific wins).

    Structured values (lists, mappings: a composite's members) travel as JSON text because the
    request stores flat parameters; composite strategies parse them back.
    """
    sc = cfg.strategy(strategy) if hasattr(cfg, "strategy") else None
    out: dict[str, Any] = dict(sc.params) if sc is not None else {}
    preset = cli.pop("preset", None)
    if preset is not None:
        if sc is None or preset not in sc.presets:
            known = ", ".join(sorted(sc.presets)) if sc is not None and sc.presets else "none"
            raise InvalidInput(f"--param preset={preset}: no preset {preset!r} in strategies.{strategy}.presets "
                               f"(known: {known})")
        out.update(sc.presets[preset])
    out.update(cli)
    return {k: json.dumps(v) if isinstance(v, list | dict) else (int(v) if isinstance(v, bool) else v)
            for k, v in out.items()}


def _risk_fields(args: argparse.Namespace, cfg: Any) -> dict[str, Any]:
    """``risk``/``filters`` of the request: from the config (or ``--risk-config``), none with --no-risk."""
    if not getattr(args, "risk", True):
        return {"risk": None, "filters": None}
    risk = cfg.risk
    path = getattr(args, "risk_config", None)
    if path:
        import yaml

        from ..risk import load_risk_config

        try:
            raw = yaml.safe_load(Path(path).expanduser().read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as e:
            raise InvalidInput(f"--risk-config {path}: {e}") from None
        if not isinstance(raw, dict):
            raise InvalidInput(f"--risk-config {path}: expected a mapping")
        risk = load_risk_config(raw.get("risk", raw), source=f"{path}: risk")
    sc = cfg.strategy(args.strategy)
    if sc.trailing_stop is not None:
        risk = risk.model_copy(update={"trailing_stop": sc.trailing_stop})
    return {"risk": risk, "filters": None if sc.filters.is_noop else sc.filters}


# ############# Handler ############# #


def _run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    request = build_request(args, cfg)
    wh = Warehouse(cfg.warehouse.path, deadline_s=cfg.warehouse.lock_deadline_s)
    if not wh.path.exists():
        raise InvalidInput(f"no warehouse at {wh.path}; load bars first (trading ingest sample)")
    from ..backtest import run_backtest

    result = run_backtest(request, wh)
    if args.json:
        print(json.dumps(payload(result), indent=2, default=str, allow_nan=False))
    else:
        print(table(result))
    return 0


def payload(result: BacktestResult) -> dict[str, Any]:
    """The ``--json`` document: run identity, metrics of portfolio 0, every portfolio, trades, fills."""
    d = result.to_dict(include_fills=True)
    portfolios = d.pop("portfolios")
    d["metrics"] = portfolios[0]["metrics"] if portfolios else {}
    d["portfolios"] = [{k: v for k, v in p.items() if k != "trades"} for p in portfolios]
    d["trades"] = [t for p in portfolios for t in p["trades"]]
    return d


def _fmt(v: Any, pct: bool = False) -> str:
    if v is None:
        return "-"
    if pct:
        return f"{v * 100:.2f}%"
    return f"{v:,.2f}" if isinstance(v, float) else str(v)


def table(result: BacktestResult) -> str:
    """A short human summary: one line per portfolio."""
    req = result.request
    head = (f"backtest {result.run_id[:12]}: {req.strategy} on {','.join(req.universe)} ({req.venue}, {req.timeframe}, "
            f"{result.calendar} calendar), {result.bars} bars")
    cols = ["pf", "params", "final equity", "return", "cagr", "sharpe", "sortino", "max dd", "trades",
            "win rate", "fees"]
    rows = [cols]
    for p in result.portfolios:
        m = p.metrics
        params = " ".join(f"{k}={v}" for k, v in p.params.items()) or "-"
        rows.append([str(p.portfolio), params, _fmt(m.final_equity), _fmt(m.total_return, True),
                     _fmt(m.cagr, True), _fmt(None if m.sharpe is None else round(m.sharpe, 3)),
                     _fmt(None if m.sortino is None else round(m.sortino, 3)),
                     _fmt(m.max_drawdown, True), f"{m.trades}+{m.open_trades} open",
                     _fmt(m.win_rate, True), _fmt(m.fees_paid)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(cols))]
    lines = [head] + ["  ".join(c.rjust(w) if i > 1 else c.ljust(w) for i, (c, w) in enumerate(
        zip(r, widths, strict=True))) for r in rows]
    if result.risk is not None and result.risk.get("enabled"):
        counts = ", ".join(f"{k} {v}" for k, v in sorted(result.risk.get("counts", {}).items())) or "none"
        lines.append(f"risk decisions: {counts}; breaker transitions: {len(result.breaker_events)}"
                     + (f"; filters: {', '.join(f'{k} {v}' for k, v in sorted(result.filters.items()))}"
                        if result.filters else ""))
    lines.append(f"driver {result.driver}; execution model {result.execution_model_hash[:16]}"
                 + (f"; stored as backtest run {result.run_id}" if result.persisted else "; not stored"))
    return "\n".join(lines)
