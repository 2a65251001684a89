"""``trading ingest file|sample|live``: bring bars into the warehouse through the validation contract."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

# Parsing needs only the light ``errors``/``symbols``/``timeframes`` modules; config, the
# warehouse (DuckDB/Polars) and the ingest pipeline are imported by the handlers that use them.
from ..errors import InvalidInput
from ..symbols import check_symbol, check_venue
from ..timeframes import TIMEFRAME_MS

if TYPE_CHECKING:
    from ..config import TradingConfig
    from ..market_data.ingest import Calendar, IngestResult
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
    f.add_argument("--batch-rows", type=_batch_rows, default=None, metavar="N",
                   help="read CSV and Parquet N rows at a time (default 250000): memory follows N, "
                        "not the file's size; the file is still written as one batch")
    f.add_argument("--json", action="store_true", help="print the report as JSON")
    f.set_defaults(handler=_file)

    s = isub.add_parser("sample", help="load the offline default data set (real history)")
    s.add_argument("--if-empty", action="store_true", help="do nothing if the warehouse has bars")
    s.add_argument("--json", action="store_true")
    s.set_defaults(handler=_sample)

    live = isub.add_parser("live", help="fetch from the configured live providers (ccxt/yfinance)")
    live.add_argument("--universe", help="only this universe (default: all)")
    live.add_argument("--no-fallback", action="store_true",
                      help="a failed network provider is an error (exit 2) instead of falling back "
                           "to the sample data")
    live.add_argument("--json", action="store_true")
    live.set_defaults(handler=_live)


def _symbol(v: str) -> str:
    try:
        return check_symbol(v)
    except InvalidInput as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _batch_rows(v: str) -> int:
    try:
        n = int(v)
    except ValueError:
        n = 0
    if not 1_000 <= n <= 10_000_000 or len(v) > 12:
        raise argparse.ArgumentTypeError(f"{v[:40]!r}: expected a whole number of rows from 1000 to 10000000")
    return n


def _venue(v: str) -> str:
    try:
        return check_venue(v)
    except InvalidInput as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _warehouse(cfg: TradingConfig) -> Warehouse:
    from ..warehouse import Warehouse

    wh = Warehouse(cfg.warehouse.path, deadline_s=cfg.warehouse.lock_deadline_s)
    wh.migrate()
    return wh


def _file(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..market_data.ingest import ingest_file
    from ..market_data.normalize import check_bar_file

    cfg = load_config(args.config)
    check_bar_file(args.path)  # kind and size: one-line refusal before the warehouse is opened
    calendar: Calendar = args.calendar or ("equity" if args.venue == "yahoo" else "crypto")
    result = ingest_file(_warehouse(cfg), args.path, venue=args.venue, symbol=args.symbol,
                         timeframe=args.timeframe, validation=cfg.market_data.validation, calendar=calendar,
                         batch_rows=args.batch_rows)
    _print([result], args.json)
    if result.batch_rejected:
        print(f"trading: {args.path}: rejected: {result.reject_reason}", file=sys.stderr)
        return 2
    return 0


def _sample(args: argparse.Namespace) -> int:
    from ..config import load_config

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
    from ..config import load_config

    cfg = load_config(args.config)
    md = cfg.market_data.model_copy(update={"mode": "live"})
    return _run_universes(cfg, _warehouse(cfg), md, args.universe, args.json,
                          fallback=not getattr(args, "no_fallback", False))


def _run_universes(cfg: TradingConfig, wh: Warehouse, md, only: str | None, as_json: bool,  # type: ignore[no-untyped-def]
                   *, fallback: bool = True) -> int:
    """Ingest each universe. Live, a provider that fails is named on stderr in one line (why, and
    what served instead); with ``fallback=False`` a failure ends the run with one line, exit 2."""
    from ..market_data.ingest import ingest_universe
    from ..market_data.providers import (
        AllProvidersFailed,
        AllProvidersUnavailable,
        FailoverProvider,
        build_provider,
    )

    universes = [cfg.universe(only)] if only else list(md.universes)
    now = datetime.now(UTC)
    results: list[IngestResult] = []
    for u in universes:
        provider = build_provider(u, md, now=now, fallback=fallback)
        try:
            results.extend(ingest_universe(wh, u, md, now=now, provider=provider))
        except (AllProvidersFailed, AllProvidersUnavailable) as e:
            _print(results, as_json)
            _report_fallbacks(provider)
            print(f"trading: live: {_failed_line(e)}"
                  + ("" if fallback else "; not falling back to the sample data (--no-fallback)"),
                  file=sys.stderr)
            return 2
        if isinstance(provider, FailoverProvider):
            _report_fallbacks(provider)
    _print(results, as_json)
    return 0 if all(not r.batch_rejected for r in results) else 2


def _report_fallbacks(provider: object) -> None:
    """One stderr line per provider that failed and was replaced: which, for what, why, by whom."""
    fallbacks = getattr(provider, "fallbacks", None) or []
    by_provider: dict[tuple[str, str], list] = {}  # type: ignore[type-arg]
    for f in fallbacks:
        by_provider.setdefault((f.provider, f.served_by), []).append(f)
    for (name, served_by), items in by_provider.items():
        symbols = ", ".join(dict.fromkeys(f.symbol for f in items))
        first = items[0]
        used = "the sample data" if served_by == "sample" else served_by
        print(f"trading: live: {name} failed for {first.venue} {symbols} {first.timeframe} "
              f"({first.reason}); used {used} instead", file=sys.stderr)
    if hasattr(provider, "fallbacks"):
        provider.fallbacks.clear()  # type: ignore[attr-defined]


def _failed_line(e: BaseException) -> str:
    """``ccxt failed for coinbase BTC/USD 1h (cannot reach ...: DNS lookup failed)`` from the
    combined failover error, leaving out providers that only said they do not serve the series."""
    from ..market_data.providers import failure_reason
    from ..market_data.providers.failover import NotServed

    everything = list(getattr(e, "failures", []))
    failures = [(n, x) for n, x in everything if not isinstance(x, NotServed)] or everything
    if not failures:
        return failure_reason(e)
    series = getattr(e, "series", "the request")
    return "; ".join(f"{n} failed for {series} ({failure_reason(x)})" for n, x in failures)


def _print(results: list[IngestResult], as_json: bool) -> None:
    if as_json:
        payload = [r.to_dict() for r in results]
        print(json.dumps(payload[0] if len(payload) == 1 else payload, indent=2, default=str))
        return
    for r in results:
        head = f"{r.venue} {r.symbol} {r.timeframe} from {r.source}"
        if _nothing_new(r):
            detail = (f"all {r.rows_read} bars unchanged" if r.rows_read
                      else "no new bars since the last ingest")
            print(f"{head}: already up to date ({detail})")
            continue
        rules = ", ".join(f"{k}={v}" for k, v in sorted(r.rule_counts.items())) or "none"
        print(f"{head}: read {r.rows_read}, "
              f"written {r.inserted}, revised {r.revised}, unchanged {r.unchanged}, "
              f"rejected {r.rows_read if r.batch_rejected else 0}, dropped {r.dropped}, "
              f"quarantined {r.quarantined}, repaired {r.repaired}; rules: {rules}")


def _nothing_new(r: IngestResult) -> bool:
    """The batch changed nothing: no rows came, or every row was already stored as it is."""
    return (not r.batch_rejected and r.inserted == 0 and r.revised == 0 and r.dropped == 0
            and r.quarantined == 0 and r.repaired == 0 and r.unchanged == r.rows_read)
