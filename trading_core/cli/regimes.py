"""``trading regimes``: summarise the stored regime labels of one series.

Reads ``features.regimes`` (written by ``trading_core.features.pipeline.update_features``) with a
short read-only open and prints, per regime, how many spans and bars it has, its share of the
labelled bars, and the longest spans; ``--all`` adds every span in time order, ``--at DATE`` prints
only the label in force at that date with its span. ``--json`` prints the same as one JSON document.
The labels come from ``trading features update`` (or the Dagster feature assets).
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

# Parsing needs only the light ``errors``/``symbols``/``timeframes`` modules; config and the
# warehouse (DuckDB/Polars) are imported by the handler when it runs.
from ..errors import InvalidInput
from ..symbols import check_symbol, check_venue
from ..timeframes import timeframe_ms

if TYPE_CHECKING:
    from ..config import TradingConfig
    from ..features.regimes import RegimeSpan


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "regimes", help="summarise the regime labels of a series",
        description="Counts, share of bars and longest spans of each regime label stored in "
                    "features.regimes for one series.")
    p.add_argument("--symbol", help="e.g. ^GSPC or BTC/USD (required)")
    p.add_argument("--venue", help="default: the venue of the configured universe listing the symbol")
    p.add_argument("--timeframe", help="default: the timeframe of that universe")
    p.add_argument("--top", default="5", help="longest spans to list (default 5)")
    p.add_argument("--at", metavar="DATE",
                   help="only the label in force at DATE (YYYY-MM-DD or ISO time, UTC) and its span")
    p.add_argument("--all", action="store_true", help="also list every span, in time order")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(handler=_run)


def _series(args: argparse.Namespace, cfg: TradingConfig) -> tuple[str, str, str]:
    """Validate the arguments; fill venue/timeframe from the universe that lists the symbol."""
    if not args.symbol:
        raise InvalidInput("regimes: missing required argument --symbol")
    symbol = check_symbol(args.symbol)
    venue, timeframe = args.venue, args.timeframe
    if venue is None or timeframe is None:
        for u in cfg.market_data.universes:
            if symbol in u.symbols and (venue is None or u.venue == venue):
                venue = venue or u.venue
                timeframe = timeframe or u.timeframe
                break
    if venue is None or timeframe is None:
        raise InvalidInput(f"regimes: {symbol} is in no configured universe; pass --venue and --timeframe")
    check_venue(venue)
    timeframe_ms(timeframe)
    return venue, symbol, timeframe


def _top(raw: str) -> int:
    try:
        n = int(raw)
    except ValueError:
        n = -1
    if n < 0:
        raise InvalidInput(f"--top {raw!r}: expected a whole number >= 0")
    return n


def _at(raw: str | None) -> datetime | None:
    """``--at``: a date (midnight UTC) or an ISO date-time (naive = UTC)."""
    if raw is None:
        return None
    try:
        if len(raw.strip()) == 10:
            d = date.fromisoformat(raw.strip())
            return datetime(d.year, d.month, d.day, tzinfo=UTC)
        t = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise InvalidInput(f"--at {raw!r}: expected a date YYYY-MM-DD or an ISO date-time") from None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def span_at(spans: list[RegimeSpan], at: datetime, timeframe: str, raw: str) -> dict[str, Any]:
    """The span whose bars cover ``at``: the last labelled bar opened at or before ``at``, provided
    ``at`` falls before the end of the last labelled bar (gaps such as weekends inherit the label)."""
    first, last = spans[0].start, spans[-1].end
    bar_end = last + timedelta(milliseconds=timeframe_ms(timeframe))
    if at < first or at >= bar_end:
        raise InvalidInput(f"--at {raw}: outside the labelled bars ({first.isoformat()} .. "
                           f"{last.isoformat()}; labels start after the indicators' warm-up)")
    span = next(s for s in reversed(spans) if s.start <= at)
    return {"at": at.isoformat(), "regime": span.regime, "span": _span(span)}


def summarise(spans: list[RegimeSpan], top: int = 5) -> dict[str, Any]:
    """Per-regime counts, bars, share and longest span, plus the ``top`` longest spans overall."""
    from ..features.regimes import REGIMES

    total = sum(s.bars for s in spans)
    per: dict[str, Any] = {}
    for name in REGIMES:
        mine = [s for s in spans if s.regime == name]
        bars = sum(s.bars for s in mine)
        longest = max(mine, key=lambda s: s.bars, default=None)
        per[name] = {
            "spans": len(mine), "bars": bars, "share": bars / total if total else 0.0,
            "mean_span_bars": bars / len(mine) if mine else 0.0,
            "longest": _span(longest) if longest else None,
        }
    ranked = sorted(spans, key=lambda s: (-s.bars, s.start))[:top]
    return {"bars": total, "spans": len(spans), "regimes": per,
            "longest_spans": [_span(s) for s in ranked],
            "current": _span(spans[-1]) if spans else None}


def _span(s: RegimeSpan) -> dict[str, Any]:
    return {"regime": s.regime, "start": s.start.isoformat(), "end": s.end.isoformat(), "bars": s.bars}


def _run(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..warehouse import Warehouse

    cfg = load_config(args.config)
    venue, symbol, timeframe = _series(args, cfg)
    top = _top(args.top)
    at = _at(args.at)
    if at is not None and args.all:
        raise InvalidInput("regimes: --at and --all are exclusive")
    wh = Warehouse(cfg.warehouse.path, deadline_s=cfg.warehouse.lock_deadline_s)
    if not wh.path.exists():
        raise InvalidInput(f"no warehouse at {wh.path}; load bars first (trading ingest sample)")
    with wh.connect(read_only=True) as con:
        has_table = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'features' "
            "AND table_name = 'regimes'").fetchall()[0][0]
        if not has_table:
            raise InvalidInput(f"{wh.path} has no features.regimes table; compute the labels first: trading "
                               f"features update --symbol {symbol} --venue {venue} --timeframe {timeframe}")
        from ..warehouse.features import read_regimes

        labels = read_regimes(con, venue, symbol, timeframe)
    if labels.height == 0:
        raise InvalidInput(f"no regime labels for {symbol} ({venue}, {timeframe}); "
                           f"compute them first: trading features update --symbol {symbol} --venue {venue} "
                           f"--timeframe {timeframe} (or materialise the Dagster feature assets)")
    spans = _spans(labels.select("ts", "regime"))
    head = {"venue": venue, "symbol": symbol, "timeframe": timeframe,
            "regime_versions": sorted(labels["regime_version"].unique().to_list())}
    if at is not None:
        doc = {**head, **span_at(spans, at, timeframe, args.at)}
        print(json.dumps(doc, indent=2) if args.json else at_line(doc))
        return 0
    doc = {**head, **summarise(spans, top)}
    if args.all:
        doc["all_spans"] = [_span(s) for s in spans]
    print(json.dumps(doc, indent=2) if args.json else table(doc))
    return 0


def at_line(doc: dict[str, Any]) -> str:
    s = doc["span"]
    return (f"{doc['symbol']} ({doc['venue']}, {doc['timeframe']}) at {doc['at']}: {doc['regime']}, "
            f"span {s['start']} .. {s['end']} ({s['bars']} bars), regime_version "
            f"{', '.join(doc['regime_versions'])}")


def table(doc: dict[str, Any]) -> str:
    """Human summary: one line per regime, then the longest spans."""
    lines = [f"regimes of {doc['symbol']} ({doc['venue']}, {doc['timeframe']}): {doc['bars']} bars in "
             f"{doc['spans']} spans, regime_version {', '.join(doc['regime_versions'])}"]
    rows = [["regime", "spans", "bars", "share", "mean span", "longest span"]]
    for name, r in doc["regimes"].items():
        lg = r["longest"]
        rows.append([name, str(r["spans"]), str(r["bars"]), f"{r['share'] * 100:.1f}%",
                     f"{r['mean_span_bars']:.1f}",
                     f"{lg['bars']} bars {lg['start'][:10]}..{lg['end'][:10]}" if lg else "-"])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines += ["  ".join(c.ljust(w) if i in (0, 5) else c.rjust(w) for i, (c, w) in
                        enumerate(zip(r, widths, strict=True))).rstrip() for r in rows]
    if doc["longest_spans"]:
        lines.append("longest spans:")
        lines += [f"  {s['regime']:<16} {s['bars']:>6} bars  {s['start']} .. {s['end']}"
                  for s in doc["longest_spans"]]
    if "all_spans" in doc:
        lines.append(f"all {len(doc['all_spans'])} spans:")
        lines += [f"  {s['regime']:<16} {s['bars']:>6} bars  {s['start']} .. {s['end']}"
                  for s in doc["all_spans"]]
    if doc["current"]:
        c = doc["current"]
        lines.append(f"current: {c['regime']} for {c['bars']} bars since {c['start']}")
    return "\n".join(lines)


def _spans(labels: Any) -> list[RegimeSpan]:
    from ..features.regimes import regime_spans  # Numba-backed: imported only when used

    return regime_spans(labels)
