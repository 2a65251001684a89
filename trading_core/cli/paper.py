"""``trading paper ...``: start, watch, stop and inspect paper-trading sessions.

``start`` validates the session exactly as ``trading backtest`` validates a run (its flags and
``build_request``), with the risk layer always armed, runs the pre-flight, and writes a start
request; the Dagster sensor launches the job (``--foreground`` runs it here instead). The other
commands read the published status and the ledger (short, lock-retried reads) or append
requests. See docs/paper-trading.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import InvalidInput
from ..paper.reports import session_metrics
from ..paper.reports import status_doc as _status_doc

_BT_FLAGS = ("strategy", "strategy_file", "symbol", "venue", "timeframe", "start", "end", "cash", "fee_bps",
             "slippage", "fill", "sizing", "size", "warmup_bars", "risk_config")
_BT_DEFAULTS = {"cash": "100000", "fee_bps": None, "slippage": "none", "fill": "next_open", "sizing": "all_in",
                "size": "1"}
_FORMATS = ("json", "csv", "parquet")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("paper", help="paper-trading sessions: start, stop, status, export ...",
                       description="Paper-trading sessions (docs/paper-trading.md).")
    ps = p.add_subparsers(dest="paper_command", required=True, metavar="ACTION")

    s = ps.add_parser("start", help="validate, pre-flight and start a session")
    s.add_argument("--template", help="a named session config in config/sessions/ (trading paper templates)")
    s.add_argument("--name", help="a name for the session (letters, digits, _ . -)")
    for flag in _BT_FLAGS:
        s.add_argument(f"--{flag.replace('_', '-')}", dest=flag, default=None)
    s.add_argument("--param", action="append", default=[], metavar="K=V", help="strategy parameter, repeatable")
    s.add_argument("--short", action="store_true", default=None, help="exit signals open short positions")
    s.add_argument("--feed", default=None, help="replay (default: stored history) | live (polls the provider)")
    s.add_argument("--speed", default=None, help="replay speed: max (default) or bars per second")
    s.add_argument("--foreground", action="store_true", help="run the session in this terminal (no Dagster)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(handler=_start)

    r = ps.add_parser("run", help="run or resume a session in this process")
    r.add_argument("session_id")
    r.add_argument("--json", action="store_true")
    r.set_defaults(handler=_run)

    for action, text in (("stop", "stop a session (final; within one bar)"), ("pause", "pause a session"),
                         ("resume", "resume a paused session")):
        a = ps.add_parser(action, help=text)
        a.add_argument("session_id")
        a.add_argument("--json", action="store_true")
        a.set_defaults(handler=_request, action=action)

    st = ps.add_parser("status", help="state, stage, bars, heartbeat, equity and positions")
    st.add_argument("session_id")
    st.add_argument("--json", action="store_true")
    st.set_defaults(handler=_status)

    ls = ps.add_parser("list", help="every session")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=_list)

    c = ps.add_parser("compare", help="two sessions' metrics side by side")
    c.add_argument("a")
    c.add_argument("b")
    c.add_argument("--json", action="store_true")
    c.set_defaults(handler=_compare)

    cl = ps.add_parser("clone", help="a new session with the same configuration")
    cl.add_argument("session_id")
    cl.add_argument("--name")
    cl.add_argument("--json", action="store_true")
    cl.set_defaults(handler=_clone)

    e = ps.add_parser("export", help="the session's ledger (fills carry fill_id)")
    e.add_argument("session_id")
    e.add_argument("--format", default="json", help="json | csv | parquet (parquet needs --out)")
    e.add_argument("--out", help="file to write (default: stdout)")
    e.add_argument("--kinds", help="event kinds, comma-separated (e.g. OrderFilled)")
    e.set_defaults(handler=_export)

    ac = ps.add_parser("activity", help="the session's decisions in order, with reasons")
    ac.add_argument("session_id")
    ac.add_argument("--limit", default="50")
    ac.add_argument("--json", action="store_true")
    ac.set_defaults(handler=_activity)

    at = ps.add_parser("attribution", help="why the session's fills differ from the backtest's on its bars")
    at.add_argument("session_id")
    at.add_argument("--baseline", action="append", default=[], metavar="FIELD=VALUE",
                    help="backtest field to change, e.g. slippage=none or fill=close (repeatable)")
    at.add_argument("--json", action="store_true")
    at.set_defaults(handler=_attribution)

    au = ps.add_parser("auto-start", help="start a session for each new champion (templates with auto_start)",
                       description="Once: for every template with auto_start: {on_champion: MODEL}, start its "
                                   "session pinned to MODEL's champion version unless one exists, and stop the "
                                   "previous one (what the Dagster sensor paper_auto_start_sensor does each tick).")
    au.add_argument("--dry-run", action="store_true", help="say what would be done, write nothing")
    au.add_argument("--json", action="store_true")
    au.set_defaults(handler=_auto_start)

    t = ps.add_parser("templates", help="the named session configs in config/sessions/")
    t.add_argument("--json", action="store_true")
    t.set_defaults(handler=_templates)


# ---- shared --------------------------------------------------------------------------------------
def _ctx(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    from ..config import load_config
    from ..paper.control import SessionStore
    from ..warehouse.paper import PaperLedger

    cfg = load_config(args.config)
    return cfg, SessionStore(Path(cfg.data_dir) / "paper"), PaperLedger(Path(cfg.data_dir) / "paper.duckdb",
                                                                         deadline_s=cfg.warehouse.lock_deadline_s)


def _sid(store: Any, raw: str) -> str:
    from ..paper.config import check_session_id

    sid = check_session_id(raw)
    if not store.exists(sid):
        raise InvalidInput(f"no paper session {sid} (trading paper list shows them)")
    return sid


def _print(doc: Any) -> None:
    print(json.dumps(doc, indent=2, default=str, allow_nan=False))


def _templates_dir() -> Path:
    """Where templates are read (``paper.templates.templates_dir``; one name for tests to swap)."""
    from ..paper.templates import templates_dir

    return templates_dir()


def _load_template(name: str) -> dict[str, Any]:
    from ..paper.templates import load_template

    return load_template(name, _templates_dir())


# ---- start ---------------------------------------------------------------------------------------
def start_args(**given: Any) -> argparse.Namespace:
    """The namespace ``paper start`` parses with nothing given but ``given`` (for callers that
    start sessions without a command line: the champion auto-start)."""
    base: dict[str, Any] = {k: None for k in _BT_FLAGS}
    base.update(template=None, name=None, param=[], short=None, feed=None, speed=None, config=None)
    unknown = set(given) - set(base)
    if unknown:
        raise TypeError(f"start_args: unknown option(s) {sorted(unknown)}")
    return argparse.Namespace(**{**base, **given})



def _speed(raw: Any) -> float | None:
    if raw in (None, "max"):
        return None
    try:
        v = float(raw)
    except (TypeError, ValueError):
        raise InvalidInput(f"--speed {raw!r}: expected max or a number of bars per second") from None
    if not math.isfinite(v) or v <= 0 or v > 1e6:
        raise InvalidInput(f"--speed {raw!r}: expected max or a number of bars per second in (0, 1e6]")
    return v


def session_config(args: argparse.Namespace, cfg: Any, warehouse: Any,
                   template_doc: dict[str, Any] | None = None) -> Any:
    """The validated ``SessionConfig`` of ``trading paper start``'s flags (and template).

    ``template_doc`` replaces the loaded ``args.template`` (the champion auto-start pins the
    model version into the template's params); ``args.template`` is still recorded as the name."""
    from datetime import timedelta

    from ..backtest.request import MAX_END
    from ..paper.config import SessionConfig
    from ..paper.feeds import live_start
    from . import backtest as bt

    tpl = template_doc if template_doc is not None else _load_template(args.template) if args.template else {}
    ns = argparse.Namespace(**{k: None for k in _BT_FLAGS})
    for k, v in tpl.items():
        if k in _BT_FLAGS:
            setattr(ns, k, None if v is None else str(v))
    for k in _BT_FLAGS:
        if getattr(args, k, None) is not None:
            setattr(ns, k, getattr(args, k))
    for k, v in _BT_DEFAULTS.items():
        if getattr(ns, k) is None:
            setattr(ns, k, v)
    tpl_params = [f"{k}={v}" for k, v in (tpl.get("params") or {}).items()]
    ns.param = [*tpl_params, *args.param]
    ns.short = bool(args.short if args.short is not None else tpl.get("short", False))
    ns.risk, ns.no_risk, ns.no_filters, ns.save, ns.json = True, False, False, False, False
    ns.device, ns.allocation, ns.rebalance_bars = "cpu", "signals", "0"
    ns.config = args.config
    feed: Any = args.feed or tpl.get("feed") or "replay"  # SessionConfig validates it
    if feed not in ("replay", "live"):
        raise InvalidInput(f"--feed {feed!r}: expected replay or live")
    speed = _speed(args.speed if args.speed is not None else tpl.get("speed"))
    if ns.symbol and not ns.venue:  # venue:SYMBOL tokens name the venue (a portfolio across venues)
        from ..backtest.runner import parse_universe

        ns.venue = parse_universe(str(ns.symbol), None, ns.timeframe)[1][0]
    for flag in ("symbol", "venue", "timeframe"):
        if not getattr(ns, flag):
            raise InvalidInput(f"paper start: --{flag} is required (or a --template that sets it)")
    if ns.strategy is None and ns.strategy_file is None:
        raise InvalidInput("paper start: --strategy or --strategy-file is required (or a --template)")
    if feed == "live":
        ns.start = live_start(time.time(), ns.timeframe).isoformat()
        ns.end = (MAX_END - timedelta(days=1)).isoformat()
    elif ns.start is None or ns.end is None:
        from ..backtest.runner import parse_universe

        symbols, venues, _ = parse_universe(str(ns.symbol), ns.venue, ns.timeframe)
        have = warehouse.path.exists()
        ranges = [warehouse.series_range(v, sym, ns.timeframe) if have else None
                  for sym, v in zip(symbols, venues, strict=True)]
        missing = [f"{sym} on {v}" for sym, v, r in zip(symbols, venues, ranges, strict=True) if r is None]
        if missing:
            raise InvalidInput(f"no {', '.join(missing)} {ns.timeframe} bars to replay "
                               "(trading ingest sample, or give --start/--end)")
        # the last 90 days that every symbol has (the stored ranges' overlap)
        end = min(r.last_ts for r in ranges if r is not None) + timedelta(milliseconds=1)
        first_ts = max(r.first_ts for r in ranges if r is not None)
        ns.end = ns.end or end.isoformat()
        ns.start = ns.start or max(first_ts, end - timedelta(days=90)).isoformat()
    if ns.warmup_bars is None:
        from ..strategies import get_strategy, parse_params

        if ns.strategy and not ns.strategy_file:
            params = bt._config_params(ns.strategy, dict(parse_params(ns.param)), cfg)
            ns.warmup_bars = str(min(int(get_strategy(ns.strategy, params).warmup_bars()), 100_000))
        else:
            ns.warmup_bars = "0"
    request = bt.build_request(ns, cfg)
    name = args.name or tpl.get("name") or (args.template or request.strategy)
    try:
        extra: dict[str, Any] = {"poll_s": float(tpl["poll_s"])} if "poll_s" in tpl else {}
        return SessionConfig(name=str(name), request=request, feed=feed, speed=speed, template=args.template,
                             **extra)
    except ValueError as e:  # pydantic's ValidationError is one: say its first problem on one line
        errors = getattr(e, "errors", None)
        if callable(errors) and errors():
            err = errors()[0]
            where = ".".join(str(x) for x in err["loc"]) or "session"
            flag = f"--{where}" if where in ("name", "feed", "speed") else f"paper start {where}"
            msg = str(err["msg"]).removeprefix("Value error, ").removeprefix(f"{where}: ")
            raise InvalidInput(f"{flag}: {msg}") from None
        raise InvalidInput(f"paper start: {e}") from None


def _start(args: argparse.Namespace) -> int:
    cfg, store, ledger = _ctx(args)
    from ..paper.preflight import failing, preflight
    from ..warehouse import Warehouse

    wh = Warehouse(cfg.warehouse.path, deadline_s=cfg.warehouse.lock_deadline_s)
    config = session_config(args, cfg, wh)
    bad = failing(preflight(config, wh, data_dir=Path(cfg.data_dir),
                            stale_bars=cfg.market_data.validation.stale_bars))
    if bad:
        print(f"trading: paper start refused by the pre-flight ({len(bad)} problem(s)):", file=sys.stderr)
        for b in bad:
            print(f"  {b}", file=sys.stderr)
        return 2
    sid, req = store.create(config, source="cli")
    doc = {"session_id": sid, "request_id": req.request_id, "name": config.name, **config.summary()}
    if args.foreground:
        outcome = _runner(cfg, store, ledger, sid).run()
        doc["outcome"] = outcome.to_dict()
    if args.json:
        _print(doc)
    else:
        print(f"session {sid} ({config.name}): {config.request.strategy} on {', '.join(config.symbols)} "
              f"{config.request.timeframe} {', '.join(dict.fromkeys(config.request.venues or (config.request.venue,)))}, "
              f"{config.feed} feed")
        if args.foreground:
            print(f"ran in the foreground: {doc['outcome']['state']} after {doc['outcome']['bars_processed']} bars")
        else:
            print("start requested: the Dagster sensor paper_requests_sensor launches paper_trading_job within "
                  "seconds (trading up runs it); no Dagster? trading paper run " + sid)
        print(f"follow it: .venv/bin/trading paper status {sid}")
    return 0


def _runner(cfg: Any, store: Any, ledger: Any, sid: str) -> Any:
    from ..paper.runner import build_runner
    from ..warehouse import Warehouse

    return build_runner(sid, store=store, ledger=ledger,
                        warehouse=Warehouse(cfg.warehouse.path, deadline_s=cfg.warehouse.lock_deadline_s),
                        run_id=f"cli-{os.getpid()}-{int(time.time())}", market_data=cfg.market_data,
                        data_dir=Path(cfg.data_dir))


def _run(args: argparse.Namespace) -> int:
    cfg, store, ledger = _ctx(args)
    sid = _sid(store, args.session_id)
    out = _runner(cfg, store, ledger, sid).run()
    if args.json:
        _print(out.to_dict())
    else:
        print(f"session {sid}: {out.state} after {out.bars_processed} bars ({out.new_bars} new)"
              + (f": {'; '.join(out.reasons)}" if out.reasons else ""))
    return 0 if out.state not in ("refused", "failed") else 2


def _request(args: argparse.Namespace) -> int:
    _, store, _ = _ctx(args)
    sid = _sid(store, args.session_id)
    req = store.request(sid, args.action, source="cli")
    nxt = {"stop": "the running job stops within one bar, with a final checkpoint; a stop is final",
           "pause": "the running job checkpoints within one bar and exits; resume continues from there",
           "resume": "the Dagster sensor launches a run that continues from the checkpoint"}[args.action]
    if args.json:
        _print({"session_id": sid, "request_id": req.request_id, "action": args.action, "desired": store.desired(sid)})
    else:
        print(f"{args.action} requested for {sid} ({req.request_id}): {nxt}")
    return 0


# ---- reading -------------------------------------------------------------------------------------
def _status(args: argparse.Namespace) -> int:
    _, store, ledger = _ctx(args)
    sid = _sid(store, args.session_id)
    doc = _status_doc(store, ledger, sid)
    if args.json:
        _print(doc)
        return 0
    for k in ("session_id", "name", "state", "desired", "stage", "progress", "bars_processed", "bars_total",
              "last_bar_ts", "heartbeat_ts", "generation", "equity", "cash", "positions", "feed", "speed"):
        if doc.get(k) is not None:
            print(f"{k:>15}: {doc[k]}")
    for r in doc["reasons"]:
        print(f"{'reason':>15}: {r}")
    for a in doc["alerts"]:
        print(f"{'alert':>15}: [{a['severity']}] {a['kind']}: {a.get('text', '')}")
    return 0


def _list(args: argparse.Namespace) -> int:
    _, store, ledger = _ctx(args)
    rows = []
    for sid in store.session_ids():
        d = _status_doc(store, ledger, sid)
        rows.append({k: d.get(k) for k in ("session_id", "name", "strategy", "symbols", "feed", "state",
                                           "bars_processed", "equity")})
    if args.json:
        _print(rows)
        return 0
    if not rows:
        print("no paper sessions yet: trading paper start --template btc-ma-crossover")
    for r in rows:
        eq = f"{r['equity']:.2f}" if isinstance(r["equity"], int | float) else "-"
        print(f"{r['session_id']}  {r['name']:<20} {r['strategy']:<14} {','.join(r['symbols'] or ()):<12} {r['feed']:<6} "
              f"{r['state']:<10} {r['bars_processed']:>8} bars  equity {eq}")
    return 0


def _events(ledger: Any, sid: str, kinds: list[str] | None = None, limit: int | None = None) -> Any:
    if not ledger.path.exists():
        import polars as pl

        return pl.DataFrame()
    with ledger.connect(read_only=True) as con:
        return ledger.events(con, sid, kinds, limit)


def _flat(frame: Any) -> Any:
    """Events with their payload's fields as columns (fills: fill_id, order_id, side, qty, price, fee ...)."""
    import polars as pl

    if frame.height == 0:
        return frame
    payload = [json.loads(p) for p in frame["payload"].to_list()]
    keys = ["fill_id", "order_id", "side", "qty", "price", "fee", "slippage", "role", "fill_reason", "ts_event",
            "verdict"]
    extra = {k: [p.get(k) for p in payload] for k in keys if any(k in p for p in payload)}
    cols = {k: pl.Series(k, [None if v is None else str(v) if k in ("fill_id", "side", "role", "fill_reason",
                                                                    "verdict") else float(v) for v in vals])
            for k, vals in extra.items()}
    return frame.with_columns(**cols)


def _export(args: argparse.Namespace) -> int:
    _, store, ledger = _ctx(args)
    sid = _sid(store, args.session_id)
    if args.format not in _FORMATS:
        raise InvalidInput(f"--format {args.format!r}: expected one of {', '.join(_FORMATS)}")
    if args.format == "parquet" and not args.out:
        raise InvalidInput("--format parquet writes a binary file: give --out FILE")
    kinds = [k.strip() for k in args.kinds.split(",")] if args.kinds else None
    frame = _events(ledger, sid, kinds)
    if args.format == "json":
        rows = [{**r, "payload": json.loads(r["payload"])} for r in frame.iter_rows(named=True)]
        text = json.dumps(rows, indent=2, default=str)
    else:
        frame = _flat(frame)
    if args.format == "csv":
        text = frame.write_csv()
    try:  # a directory, a read-only place, a name too long: one line, not a traceback
        if args.format == "parquet":
            frame.write_parquet(args.out)
        elif args.out:
            Path(args.out).write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text if text.endswith("\n") else text + "\n")
    except OSError as e:
        raise InvalidInput(f"--out {args.out}: cannot write: {e.strerror or e}") from None
    if args.out:
        print(f"wrote {frame.height} event(s) of {sid} to {args.out}", file=sys.stderr)
    return 0


def _activity(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    _, store, ledger = _ctx(args)
    sid = _sid(store, args.session_id)
    try:
        limit = int(args.limit)
    except ValueError:
        raise InvalidInput(f"--limit {args.limit!r}: expected a whole number") from None
    if not 1 <= limit <= 100_000:
        raise InvalidInput(f"--limit {limit}: expected 1..100000")
    frame = _events(ledger, sid, None, limit)
    rows = []
    for r in frame.iter_rows(named=True):
        p = json.loads(r["payload"])
        what = p.get("verdict") or p.get("side") or p.get("to_state") or ""
        detail = {k: p[k] for k in ("qty", "price", "requested", "approved", "level", "scope", "signal") if k in p}
        rows.append({"ts": datetime.fromtimestamp(r["bar_ts"] / 1000, tz=UTC).isoformat(), "bar": r["bar_index"],
                     "kind": r["kind"], "symbol": r["symbol"], "decision": what, "reason": r["reason"],
                     "reconstructed": r["reconstructed"], **detail})
    if args.json:
        _print(rows)
        return 0
    for x in rows:
        extra = " ".join(f"{k}={x[k]:.6g}" if isinstance(x[k], float) else f"{k}={x[k]}"
                         for k in ("qty", "price", "requested", "approved", "level", "signal") if k in x)
        print(f"{x['ts']}  {x['kind']:<15} {x['symbol'] or '-':<10} {x['decision'] or '':<12} "
              f"{x['reason'] or '':<24} {extra}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    _, store, ledger = _ctx(args)
    a, b = _sid(store, args.a), _sid(store, args.b)
    ma, mb = session_metrics(store, ledger, a), session_metrics(store, ledger, b)
    if args.json:
        _print({"a": ma, "b": mb})
        return 0
    keys = [k for k in ma if k in mb and k not in ("session_id",)]
    print(f"{'':<22} {a:>20} {b:>20}")
    for k in keys:
        va, vb = ma[k], mb[k]
        fa = f"{va:.6g}" if isinstance(va, float) else str(va)
        fb = f"{vb:.6g}" if isinstance(vb, float) else str(vb)
        print(f"{k:<22} {fa:>20} {fb:>20}")
    return 0


def _clone(args: argparse.Namespace) -> int:
    _, store, _ = _ctx(args)
    sid = _sid(store, args.session_id)
    config = store.load(sid)
    if args.name:
        try:
            config = type(config).model_validate({**config.model_dump(), "name": args.name})
        except ValueError as e:
            raise InvalidInput(f"--name: {e}") from None
    new, req = store.create(config, source="cli")
    if args.json:
        _print({"session_id": new, "cloned_from": sid, "request_id": req.request_id})
    else:
        print(f"session {new}: a clone of {sid} ({config.name}); start requested")
    return 0


def _attribution(args: argparse.Namespace) -> int:
    from ..paper.attribution import attribute_session
    from ..warehouse import Warehouse

    cfg, store, ledger = _ctx(args)
    sid = _sid(store, args.session_id)
    baseline: dict[str, Any] = {}
    for item in args.baseline:
        k, sep, v = item.partition("=")
        if not sep or k not in {"slippage", "fill", "fee_bps"}:
            raise InvalidInput(f"--baseline {item!r}: expected slippage=..., fill=... or fee_bps=...")
        baseline[k] = float(v) if k == "fee_bps" else v
    try:
        a = attribute_session(sid, store=store, ledger=ledger, baseline=baseline,
                              warehouse=Warehouse(cfg.warehouse.path, deadline_s=cfg.warehouse.lock_deadline_s))
    except ValueError as e:
        raise InvalidInput(f"--baseline: {e}") from None
    doc = a.to_dict()
    doc["details"] = doc["details"][:50]
    if args.json:
        _print(doc)
        return 0
    print(f"session {sid} vs trading backtest --risk on the same bars"
          + (f" ({', '.join(args.baseline)})" if args.baseline else ""))
    print(f"  matched {a.matched} fills ({a.same_bar} on the same bar, {a.timing_fills} on another), "
          f"{a.partial_fills} partial, {a.missed_fills} missed, {a.extra_fills} extra")
    for k in ("timing", "price", "fees", "explained", "partial", "missed", "extra", "equity_gap", "residual"):
        v = doc[k]
        print(f"  {k:<11} {v:>14.2f}" if isinstance(v, float) else f"  {k:<11} {v}")
    return 0


def _auto_start(args: argparse.Namespace) -> int:
    from ..ml.registry import Registry
    from ..paper import auto_start as au
    from ..warehouse import Warehouse

    cfg, store, _ = _ctx(args)
    follow, _broken = au.followers(_templates_dir())
    base = Registry.from_config(cfg.models, Path(cfg.data_dir))
    champions = au.champions({f.spec.on_champion for f in follow},
                             lambda m: Registry(base.uri, base.artifact_dir, base.experiment, m).alias_version("champion"))
    wh = Warehouse(cfg.warehouse.path, deadline_s=cfg.warehouse.lock_deadline_s)
    outcomes = au.auto_start(store, champions, build=au.session_builder(cfg, wh, args.config),
                             check=au.preflight_check(cfg, wh), directory=_templates_dir(), dry_run=args.dry_run)
    if args.json:
        _print([o.to_dict() for o in outcomes])
    elif not outcomes:
        print("nothing to do: no template opts in (auto_start: {on_champion: MODEL} in config/sessions/)")
    for o in outcomes if not args.json else []:
        print(au.describe(o))
    return 2 if any(o.action == "failed" for o in outcomes) else 0


def _templates(args: argparse.Namespace) -> int:
    rows = []
    from ..paper.templates import auto_start_of, list_templates

    for name in list_templates(_templates_dir()):
        try:
            doc = _load_template(name)
            auto = auto_start_of(doc, name)
            rows.append({"name": name, "description": str(doc.get("description", "")),
                         "strategy": doc.get("strategy"), "symbol": doc.get("symbol"), "feed": doc.get("feed", "replay"),
                         "auto_start": None if auto is None else auto.model_dump()})
        except InvalidInput as e:
            rows.append({"name": name, "error": str(e)})
    if args.json:
        _print(rows)
        return 0
    for r in rows:
        print(f"{r['name']:<22} {r.get('description') or r.get('error')}")
    print("start one: .venv/bin/trading paper start --template NAME")
    return 0
