"""``trading ingest file|sample|live``: bring bars into the warehouse through the validation contract."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from ..config import TradingConfig, load_config
from ..errors import InvalidInput
from ..market_data.ingest import Calendar, IngestResult, ingest_frame, ingest_universe
from ..symbols import check_symbol, check_venue
from ..timeframes import TIMEFRAME_MS
from ..warehouse import Warehouse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ingest", help="load bars into the warehouse")
    isub = p.add_subparsers(dest="ingest_command", required=True, metavar="SOURCE")

    f = isub.add_parser("file", help="ingest a CSV or Parquet file (ts, open, high, low, close, volume)")
    f.add_argument("path", type=Path)
    f.add_argument("--symbol", required=True, type=_symbol)
    f.add_argument("--venue", required=True, type=_venue)
    f.add_argument("--timeframe", required=True, choices=list(TIMEFRAME_MS))
    f.add_argument("--calendar", choices=["crypto", "equity"], default=None,
                   help="trading calendar for gap detection (default: equity for venue yahoo)")
    f.add_argument("--json", action="store_true", help="print the report as JSON")
    f.set_defaults(handler=_file)

    s = isub.add_parser("sample", help="load the offline default data set (real history)")
    s.add_argument("--if-empty", action="store_true", help="do nothing if the warehouse has bars")
    s.add_argument("--json", action="store_true")
    s.set_defaults(handler=_sample)

    live = isub.add_parser("live", help="fetch from the configured live providers (ccxt/yfinance)")
    live.add_argument("--universe", help="only this universe (default: all)")
    live.add_argument("--json", action="store_true")
    live.set_defaults(handler=_live)


def _symbol(v: str) -> str:
    try:
        return check_symbol(v)
    except InvalidInput as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _venue(v: str) -> str:
    try:
        return check_venue(v)
    except InvalidInput as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _warehouse(cfg: TradingConfig) -> Warehouse:
    wh = Warehouse(cfg.warehouse.path, deadline_s=cfg.warehouse.lock_deadline_s)
    wh.migrate()
    return wh


def _file(args: argparse.Namespace) -> int:
    from ..market_data.normalize import read_bar_file

    cfg = load_config(args.config)
    raw = read_bar_file(args.path)  # raises InvalidInput with a one-line reason
    calendar: Calendar = args.calendar or ("equity" if args.venue == "yahoo" else "crypto")
    result = ingest_frame(_warehouse(cfg), raw, venue=args.venue, symbol=args.symbol,
                          timeframe=args.timeframe, source=f"file:{args.path.name}",
                          validation=cfg.market_data.validation, calendar=calendar,
                          write_rejected=False)
    _print([result], args.json)
    if result.batch_rejected:
        print(f"trading: {args.path}: rejected: {result.reject_reason}", file=sys.stderr)
        return 2
    return 0


def _sample(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    wh = _warehouse(cfg)
    if args.if_empty and not wh.is_empty():
        if not args.json:
            print(f"{wh.path}: already has bars; nothing to load")
        else:
            print(json.dumps([]))
        return 0
    md = cfg.market_data.model_copy(update={"mode": "offline"})
    return _run_universes(cfg, wh, md, None, args.json)


def _live(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    md = cfg.market_data.model_copy(update={"mode": "live"})
    return _run_universes(cfg, _warehouse(cfg), md, args.universe, args.json)


def _run_universes(cfg: TradingConfig, wh: Warehouse, md, only: str | None, as_json: bool) -> int:  # type: ignore[no-untyped-def]
    universes = [cfg.universe(only)] if only else list(md.universes)
    now = datetime.now(UTC)
    results: list[IngestResult] = []
    for u in universes:
        results.extend(ingest_universe(wh, u, md, now=now))
    _print(results, as_json)
    return 0 if all(not r.batch_rejected for r in results) else 2


def _print(results: list[IngestResult], as_json: bool) -> None:
    if as_json:
        payload = [r.to_dict() for r in results]
        print(json.dumps(payload[0] if len(payload) == 1 else payload, indent=2, default=str))
        return
    for r in results:
        rules = ", ".join(f"{k}={v}" for k, v in sorted(r.rule_counts.items())) or "none"
        print(f"{r.venue} {r.symbol} {r.timeframe} from {r.source}: read {r.rows_read}, "
              f"written {r.inserted}, revised {r.revised}, unchanged {r.unchanged}, "
              f"rejected {r.rows_read if r.batch_rejected else 0}, dropped {r.dropped}, "
              f"quarantined {r.quarantined}, repaired {r.repaired}; rules: {rules}")
