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

# Parsing (``register``) needs only the standard library and the light ``errors``/``timeframes``
# modules; config, pydantic, the warehouse (DuckDB/Polars) and the backtest stack (Numba) are
# imported by the functions that use them, so ``--help`` and argument errors return at once.
from ..errors import InvalidInput
from ..timeframes import TIMEFRAME_MS, timeframe_ms

if TYPE_CHECKING:
    from ..backtest import BacktestRequest, BacktestResult

_FILLS = ("next_open", "close")
_SIZINGS = ("all_in", "fixed", "risk")
# request fields set straight from a flag of the same name
_FLAG_FIELDS = frozenset({"start", "end", "cash", "fee_bps", "slippage", "fill", "sizing", "size", "device",
                          "allocation", "rebalance_bars", "warmup_bars"})


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
    p.add_argument("--symbol", help="e.g. ^GSPC or BTC/USD; A,B,... = one account holding them all (shared cash); "
                   "venue:SYMBOL names its venue (coinbase:BTC/USD,yahoo:^GSPC: one portfolio across venues, "
                   "stepped on the union of their bars)")
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
    p.add_argument("--warmup-bars", dest="warmup_bars", default="0",
                   help="feed the strategy this many bars before --start first, trading none of them "
                        "(a paper session's warm-up; default 0: the strategy starts cold at --start)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | auto (default cpu)")
    p.add_argument("--risk", dest="risk", action="store_const", const=True, default=None,
                   help="apply the config's risk layer (VIX filter, order checks, circuit breakers with the "
                        "kill switch, trailing stop); off by default unless the config sets backtest.risk: true")
    p.add_argument("--no-risk", dest="no_risk", action="store_true",
                   help="run without the risk layer even when the config's backtest.risk is true")
    p.add_argument("--risk-config", dest="risk_config", metavar="PATH",
                   help="a YAML file whose `risk:` section (or top level) replaces the config's risk section; "
                        "implies --risk")
    p.add_argument("--no-filters", dest="no_filters", action="store_true",
                   help="ignore the strategy's signal filters (strategies.<name>.filters apply by default)")
    p.add_argument("--no-save", dest="save", action="store_false", help="do not write the backtest schema")
    p.add_argument("--json", action="store_true", help="print metrics, trades and fills as JSON")
    p.set_defaults(handler=_run)


# ############# Argument validation ############# #


def _required(args: argparse.Namespace, *names: str) -> None:
    missing = [f"--{n.replace('_', '-')}" for n in names if getattr(args, n) in (None, "")]
    if missing:
        raise InvalidInput(f"backtest: missing required argument(s) {', '.join(missing)}")


def _number(name: str, raw: str, *, allow_zero: bool = False, most: float | None = None,
            least: float | None = None) -> float:
    """A finite number > 0 (>= 0 with ``allow_zero``; >= ``least`` when given) and at most
    ``most``; else ``InvalidInput`` naming the flag (a huge value would overflow the engine's
    arithmetic into inf, a subnormal one round every trade to nothing)."""
    try:
        v = float(raw)
    except (TypeError, ValueError):
        raise InvalidInput(f"--{name} {raw!r}: expected a number") from None
    bounds = (">= 0" if allow_zero else "> 0") + (f" and <= {most:g}" if most is not None else "")
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero) or (most is not None and v > most):
        raise InvalidInput(f"--{name} {raw!r}: expected a number {bounds}")
    if least is not None and v < least:
        raise InvalidInput(f"--{name} {raw!r}: expected a number >= {least:g}")
    return v


MIN_CASH = 1.0  # one unit of the quote currency: less is not an account (1e-320 traded in subnormals)


def _instant(name: str, raw: str, *, end: bool) -> datetime:
    """A date means the whole day: ``--start`` its midnight, ``--end`` the next midnight (UTC).

    Refuses a time outside ``request.MIN_START .. MAX_END`` (epoch-ms/ns bar times) by flag."""
    from ..backtest.request import DATE_RANGE, MAX_END, MIN_START

    out_of_range = InvalidInput(f"--{name} {raw!r}: outside the supported date range {DATE_RANGE}")
    try:
        if len(raw) == 10:
            d = date.fromisoformat(raw)
            dt = datetime(d.year, d.month, d.day, tzinfo=UTC)
            dt = dt + timedelta(days=1) if end else dt
        else:
            dt = datetime.fromisoformat(raw)
            dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    except OverflowError:
        raise out_of_range from None
    except ValueError:
        raise InvalidInput(f"--{name} {raw!r}: expected a date YYYY-MM-DD or an ISO 8601 instant") from None
    if not MIN_START <= dt <= MAX_END:
        raise out_of_range
    return dt


def _whole(name: str, raw: Any) -> int:
    """A whole number of bars, 0 .. MAX_BARS_PARAM."""
    from ..backtest.request import MAX_BARS_PARAM

    v = _number(name, str(raw), allow_zero=True, most=MAX_BARS_PARAM)
    if v != int(v):
        raise InvalidInput(f"--{name} {raw!r}: expected a whole number of bars")
    return int(v)


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
    if not resolved.is_file():  # say what it is instead: missing, a directory, /dev/zero, a FIFO
        from ..yaml_io import _kind

        try:
            what = f"is {_kind(resolved.stat().st_mode)}, not a regular file"
        except FileNotFoundError:
            what = "no such file"
        except OSError as e:
            what = e.strerror or str(e)
        raise InvalidInput(f"--strategy-file {path}: {what}")
    args.strategy = "yaml"
    args.param = [*args.param, f"file={resolved}", f"sha256={file_sha256(resolved)}"]


def _calendar(venue: str, venues: list[str], asset_classes: dict[str, str]) -> str:
    """The run's calendar (annualisation): the venue's; across venues the union's -- crypto (every
    day) when any symbol trades 24/7, whichever symbol is named first."""
    from ..backtest import calendar_for_venue

    cals = {calendar_for_venue(v, asset_classes) for v in (venues or [venue])}
    return "crypto" if "crypto" in cals else "equity"


def build_request(args: argparse.Namespace, cfg: Any) -> BacktestRequest:
    # The backtest stack (Numba kernels) is imported here, not at parse time, so other commands
    # start quickly.
    from pydantic import ValidationError

    from ..backtest import BacktestRequest, parse_slippage
    from ..backtest.request import MAX_BARS_PARAM, MAX_CASH, MAX_SIZE
    from ..backtest.runner import check_work
    from ..strategies import get_strategy, parse_params
    from ..symbols import check_symbol, check_venue

    """Validate every argument and return the request; raise ``InvalidInput`` naming the bad one."""
    from ..backtest.runner import parse_universe

    _strategy_file(args)
    venues: list[str] = []
    if args.symbol is not None:  # venue:SYMBOL[@timeframe] tokens may name the venue and timeframe
        parsed, venues, tf = parse_universe(str(args.symbol), args.venue, args.timeframe)
        args.venue = args.venue or venues[0]
        args.timeframe = tf
    _required(args, "strategy", "symbol", "venue", "timeframe", "start", "end")
    params = _config_params(args.strategy, dict(parse_params(args.param)), cfg)
    strategy = get_strategy(args.strategy, params)  # unknown names and bad params fail before any I/O
    universe = [check_symbol(x) for x in parsed]
    if len(set(universe)) != len(universe):
        raise InvalidInput(f"--symbol {args.symbol}: a symbol is named twice")
    check_work(args.strategy, len(strategy.variants()), len(universe))  # a huge grid: refused now, not in minutes
    symbol = universe[0]
    venue = check_venue(venues[0] if venues else args.venue)  # the first symbol's venue leads
    allocation = _choice("allocation", getattr(args, "allocation", "signals"), ("signals", "markowitz"))
    if allocation == "markowitz" and len(universe) < 2:
        raise InvalidInput("--allocation markowitz needs two or more symbols (--symbol A,B,...)")
    rebalance = _number("rebalance-bars", str(getattr(args, "rebalance_bars", "0")), allow_zero=True,
                        most=MAX_BARS_PARAM)
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
            start=start, end=end, cash=_number("cash", args.cash, least=MIN_CASH, most=MAX_CASH),
            fee_bps=None if args.fee_bps is None else _number("fee-bps", args.fee_bps, allow_zero=True, most=1000),
            slippage=args.slippage, fill=_choice("fill", args.fill, _FILLS),  # type: ignore[arg-type]
            sizing=_choice("sizing", args.sizing, _SIZINGS),  # type: ignore[arg-type]
            size=_number("size", args.size, most=MAX_SIZE), short=bool(args.short),
            device=_choice("device", args.device, ("cpu", "cuda", "auto")),  # type: ignore[arg-type]
            calendar=_calendar(venue, venues, asset_classes),  # type: ignore[arg-type]
            venue_config=dict(cfg.venues.get(venue, {})), persist=bool(args.save),
            symbols=tuple(universe) if len(universe) > 1 else (), allocation=allocation,  # type: ignore[arg-type]
            venues=tuple(venues) if len(universe) > 1 and len(set(venues)) > 1 else (),
            rebalance_bars=int(rebalance), warmup_bars=_whole("warmup-bars", getattr(args, "warmup_bars", "0")),
            **_risk_fields(args, cfg),
        )
    except ValidationError as e:
        err = e.errors()[0]
        loc = [str(x) for x in err["loc"]]
        # a field the command line sets is named by its flag (--fee-bps), others by their path
        where = f"--{loc[0].replace('_', '-')}" if len(loc) == 1 and loc[0] in _FLAG_FIELDS else \
            "backtest " + (".".join(loc) or "request")
        raise InvalidInput(f"{where}: {err['msg'].removeprefix('Value error, ')}") from None


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


def risk_source(args: argparse.Namespace, cfg: Any) -> str | None:
    """What turned the risk layer on (``--risk``, ``--risk-config``, ``backtest.risk``), or None: off.

    Off unless asked, as in vectorbt, backtrader and freqtrade; a flag beats the config's profile.
    ``--no-risk`` together with ``--risk`` or ``--risk-config`` is a contradiction, not a choice."""
    on, off = getattr(args, "risk", None) is True, bool(getattr(args, "no_risk", False))
    path = getattr(args, "risk_config", None)
    if off and (on or path):
        raise InvalidInput(f"backtest: {'--risk' if on else '--risk-config'} and --no-risk contradict each other; "
                           "pass one of them")
    if on:
        return "--risk"
    if path:
        return "--risk-config"
    if off:
        return None
    bt = getattr(cfg, "backtest", None)
    return "config backtest.risk" if bt is not None and bt.risk else None


def _risk_fields(args: argparse.Namespace, cfg: Any) -> dict[str, Any]:
    """``risk``/``filters`` of the request.

    ``risk``: the config's section (or ``--risk-config``'s) when the risk layer is on
    (``risk_source``), else None. ``filters``: the strategy's signal filters whenever configured
    -- they are strategy behaviour, not protections, so they do not follow the risk switch --
    unless ``--no-filters``."""
    sc = cfg.strategy(args.strategy)
    filters = None if getattr(args, "no_filters", False) or sc.filters.is_noop else sc.filters
    if risk_source(args, cfg) is None:
        return {"risk": None, "filters": filters}
    risk = cfg.risk
    path = getattr(args, "risk_config", None)
    if path:
        from ..risk import load_risk_config_file

        try:
            risk = load_risk_config_file(Path(path).expanduser())
        except OSError as e:
            raise InvalidInput(f"--risk-config {path}: {e.strerror or e}") from None
    if sc.trailing_stop is not None:
        risk = risk.model_copy(update={"trailing_stop": sc.trailing_stop})
    return {"risk": risk, "filters": filters}


# ############# Handler ############# #


def _check_plain_flags(args: argparse.Namespace) -> None:
    """The flags that need neither the config nor a strategy (numbers, choices, dates), checked
    with ``build_request``'s own rules and messages before the config, the strategies and the
    engine are imported: a mistyped value is refused in a fraction of a second."""
    from ..backtest.request import MAX_BARS_PARAM, MAX_CASH, MAX_SIZE  # pydantic only, no Numba

    _number("cash", args.cash, least=MIN_CASH, most=MAX_CASH)
    if args.fee_bps is not None:
        _number("fee-bps", args.fee_bps, allow_zero=True, most=1000)
    _number("size", args.size, most=MAX_SIZE)
    _choice("fill", args.fill, _FILLS)
    _choice("sizing", args.sizing, _SIZINGS)
    _choice("device", args.device, ("cpu", "cuda", "auto"))
    _choice("allocation", getattr(args, "allocation", "signals"), ("signals", "markowitz"))
    _number("rebalance-bars", str(getattr(args, "rebalance_bars", "0")), allow_zero=True, most=MAX_BARS_PARAM)
    _whole("warmup-bars", getattr(args, "warmup_bars", "0"))
    if args.timeframe:
        timeframe_ms(args.timeframe)
    start = _instant("start", args.start, end=False) if args.start else None
    end = _instant("end", args.end, end=True) if args.end else None
    if start is not None and end is not None and end <= start:
        raise InvalidInput(f"--end {args.end} must be after --start {args.start}")
    if args.strategy and not getattr(args, "strategy_file", None):
        from ..strategies.registry import check_strategy_name  # names only: no strategy module is imported

        check_strategy_name(args.strategy)


def _run(args: argparse.Namespace) -> int:
    _check_plain_flags(args)
    from ..config import load_config

    cfg = load_config(args.config)
    request = build_request(args, cfg)
    from ..warehouse import Warehouse

    wh = Warehouse(cfg.warehouse.path, deadline_s=cfg.warehouse.lock_deadline_s)
    if not wh.path.exists():
        raise InvalidInput(f"no warehouse at {wh.path}; load bars first (trading ingest sample)")
    from ..backtest import run_backtest

    result = run_backtest(request, wh)
    impact = risk_impact(result, wh, enabled_by=risk_source(args, cfg))
    if args.json:
        print(json.dumps(payload(result, impact), indent=2, default=str, allow_nan=False))
    else:
        print(table(result, impact))
    return 0


def payload(result: BacktestResult, impact: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``--json`` document: run identity, metrics of portfolio 0, every portfolio, trades, fills;
    ``risk`` also carries ``risk_impact``'s facts (``enabled_by``, ``changed_result``, ``changes``,
    ``without_risk``) when given."""
    d = result.to_dict(include_fills=True)
    portfolios = d.pop("portfolios")
    d["metrics"] = portfolios[0]["metrics"] if portfolios else {}
    d["portfolios"] = [{k: v for k, v in p.items() if k != "trades"} for p in portfolios]
    d["trades"] = [t for p in portfolios for t in p["trades"]]
    if impact is not None:
        d["risk"] = {**d["risk"], **impact}
    return d


# ############# What the risk layer changed ############# #


def risk_impact(result: BacktestResult, warehouse: Any, *, enabled_by: str | None = None) -> dict[str, Any]:
    """Whether the risk layer changed this run, and what the same request gives without it.

    Changed = any order refused or resized by the risk layer, any breaker transition, any
    kill-switch flatten, or any fill of a trailing stop. Then the request is run again with
    ``risk=None`` (signal filters kept: they apply with or without the risk layer), not stored,
    and its final equity and Sharpe are reported next to this run's.
    """
    out: dict[str, Any] = {"enabled_by": enabled_by, "changed_result": False}
    if result.risk is None or not result.risk.get("enabled"):
        return out
    changes = _risk_changes(result)
    out["changes"] = changes
    if not (changes["refused"] or changes["resized"] or changes["breaker_transitions"]
            or changes["kill_switch"] or changes["trailing_stop_fills"]):
        return out
    from ..backtest import run_backtest

    plain = run_backtest(result.request.model_copy(update={"risk": None, "persist": False}), warehouse)
    out["changed_result"] = True
    out["without_risk"] = {**(_headline(plain.portfolios[0].metrics) if plain.portfolios else {}),
                           "driver": plain.driver,
                           "portfolios": [{"portfolio": p.portfolio, **_headline(p.metrics)} for p in plain.portfolios]}
    return out


def _headline(m: Any) -> dict[str, Any]:
    return {"final_equity": m.final_equity, "total_return": m.total_return, "sharpe": m.sharpe,
            "max_drawdown": m.max_drawdown}


def _risk_changes(result: BacktestResult) -> dict[str, Any]:
    """The risk layer's interventions in a run: refusals by reason, resizes, breaker transitions
    (trips by rule), kill-switch flattens (when, which account, which rule) and trailing-stop fills."""
    from ..engine.enums import OrderType

    assert result.risk is not None
    counts: dict[str, int] = result.risk.get("counts", {})
    refused = {k: v for k, v in sorted(counts.items()) if k not in ("none", "resized") and v}
    trips: dict[str, int] = {}
    for ev in result.breaker_events:
        if str(ev.get("event", "")).startswith("trip") and ev.get("rule"):
            trips[str(ev["rule"])] = trips.get(str(ev["rule"]), 0) + 1
    kills: list[dict[str, Any]] = []
    rows = result.risk_rows
    if rows is not None and rows.height and "inputs" in rows.columns:
        for r in rows.iter_rows(named=True):
            inputs = r.get("inputs") or {}
            if not inputs.get("kill_switch"):
                continue
            account, bar = str(r["portfolio"]), int(inputs.get("bar", -1))
            rule = next((str(ev.get("rule")) for ev in result.breaker_events
                         if ev.get("to_state") == "halted" and ev.get("ts") == r["ts"]
                         and (ev.get("scope") == account or str(ev.get("scope", "")).endswith(f"#{account}"))),
                        None)
            when = _bar_time(int(result.ts[bar]), result.request.timeframe) if 0 <= bar < result.bars else None
            kills.append({"portfolio": int(account), "bar": bar, "ts": when, "rule": rule, "symbol": r.get("symbol")})
    trailing = 0
    if result.request.risk is not None and result.request.risk.trailing_stop is not None and result.fills.size:
        # trailing stops are the risk layer's only STOP orders, but a YAML strategy's own stop-loss is one too
        trailing = int((result.fills["order_type"] == OrderType.STOP).sum()) if not _has_own_stops(result) else 0
    return {"refused": refused, "resized": int(counts.get("resized", 0)),
            "breaker_transitions": len(result.breaker_events), "breaker_trips": trips,
            "kill_switch": kills, "trailing_stop_fills": trailing}


def _has_own_stops(result: BacktestResult) -> bool:
    """Whether the strategy places stop orders of its own (a YAML strategy's ``stop_loss_pct``)."""
    from ..strategies import get_strategy

    try:
        strategy = get_strategy(result.request.strategy, dict(result.request.params))
    except Exception:  # noqa: BLE001 - the run succeeded with it; be conservative
        return True
    return bool((getattr(strategy, "stops", None) or {}).get("stop_loss_pct"))


def _bar_time(ms: int, timeframe: str) -> str:
    """A bar's open as a date (day bars and longer) or date and minute (UTC)."""
    dt = datetime.fromtimestamp(ms / 1000.0, tz=UTC)
    return dt.date().isoformat() if timeframe_ms(timeframe) >= 86_400_000 else dt.strftime("%Y-%m-%d %H:%M")


def impact_lines(impact: dict[str, Any] | None, result: BacktestResult) -> list[str]:
    """One or two lines saying what the risk layer changed, and the same run without it."""
    if not impact or not impact.get("changed_result"):
        return []
    ch = impact["changes"]
    facts: list[str] = []
    kills = ch["kill_switch"]
    if kills:
        k = kills[0]
        facts.append(f"kill switch flattened {k['ts']}" + (f" ({k['rule']})" if k["rule"] else "")
                     + (f" +{len(kills) - 1} more" if len(kills) > 1 else ""))
    if ch["refused"]:
        n = sum(ch["refused"].values())
        facts.append(f"{n} order{'s' if n != 1 else ''} refused ("
                     + ", ".join(f"{k} {v}" for k, v in ch["refused"].items()) + ")")
    if ch["resized"]:
        facts.append(f"{ch['resized']} resized")
    if ch["trailing_stop_fills"]:
        facts.append(f"{ch['trailing_stop_fills']} trailing-stop exit{'s' if ch['trailing_stop_fills'] != 1 else ''}")
    if ch["breaker_transitions"]:
        top = sorted(ch["breaker_trips"].items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        facts.append(f"{ch['breaker_transitions']} breaker transitions"
                     + (" (trips: " + ", ".join(f"{k} {v}" for k, v in top) + ")" if top else ""))
    lines = ["risk layer changed this result: " + "; ".join(facts)]
    wo = impact.get("without_risk")
    if wo and result.portfolios:
        m = result.portfolios[0].metrics
        which = f" (portfolio 0 of {len(result.portfolios)})" if len(result.portfolios) > 1 else ""
        off = "with --no-risk" if impact.get("enabled_by") == "config backtest.risk" else \
            f"without {impact.get('enabled_by') or '--risk'}"
        lines.append(f"{off}{which}: final equity {_fmt(wo.get('final_equity'))}, "
                     f"Sharpe {_sharpe(wo.get('sharpe'))} (this run: {_fmt(m.final_equity)}, {_sharpe(m.sharpe)})")
    return lines


def _sharpe(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _fmt(v: Any, pct: bool = False) -> str:
    if v is None:
        return "-"
    if pct:
        return f"{v * 100:.2f}%"
    return f"{v:,.2f}" if isinstance(v, float) else str(v)


def table(result: BacktestResult, impact: dict[str, Any] | None = None) -> str:
    """A short human summary: one line per portfolio; with ``impact`` (``risk_impact``), one or two
    lines more when the risk layer changed the result."""
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
    lines.extend(impact_lines(impact, result))
    lines.append(f"driver {result.driver} on {result.device}; execution model {result.execution_model_hash[:16]}"
                 + (f"; stored as backtest run {result.run_id}" if result.persisted else "; not stored"))
    return "\n".join(lines)
