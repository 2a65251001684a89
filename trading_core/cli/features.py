"""``trading features update``: compute indicators and regime labels without Dagster.

Calls ``trading_core.features.pipeline.update_features`` — the function the Dagster
``<universe>_features`` assets call — with the same inputs (the config's regime thresholds, the
universe's asset class as calendar), so a CLI run and an asset run produce the same
``feature_version`` / ``regime_version`` and never force each other into a full recompute. Writes
go through ``Warehouse`` like every writer: one short read-only open for state and bars, the
computation with no connection held, one short read-write transaction for the write, lock
conflicts retried up to ``warehouse.lock_deadline_s`` and then reported as busy.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING, Any, Literal

# Parsing needs only the light ``errors``/``symbols``/``timeframes`` modules; config and the
# warehouse (DuckDB/Polars) are imported by the handler when it runs.
from ..errors import InvalidInput
from ..symbols import check_symbol, check_venue
from ..timeframes import timeframe_ms

if TYPE_CHECKING:
    from ..config import TradingConfig
    from ..features.pipeline import UpdateResult

Calendar = Literal["crypto", "equity"]
Series = tuple[str, str, str, Calendar]  # venue, symbol, timeframe, calendar


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("features", help="compute indicators and regime labels")
    fsub = p.add_subparsers(dest="features_command", required=True, metavar="ACTION")
    u = fsub.add_parser(
        "update", help="bring features.indicators / features.regimes up to date (no Dagster needed)",
        description="Computes the indicators and regime labels of the bars not yet covered (the whole "
                    "series on the first run or when the feature/regime definition changed), with the "
                    "same library function as the Dagster feature assets. Default: every symbol of "
                    "every configured universe.")
    u.add_argument("--universe", help="only the symbols of this configured universe")
    u.add_argument("--symbol", help="only this symbol, e.g. ^GSPC or BTC/USD")
    u.add_argument("--venue", help="with --symbol; default: the venue of the universe listing it")
    u.add_argument("--timeframe", help="with --symbol; default: the timeframe of that universe")
    u.add_argument("--calendar", choices=["crypto", "equity"], default=None,
                   help="with --symbol; default: the universe's asset class, else equity for yahoo")
    u.add_argument("--full", action="store_true",
                   help="recompute whole series (after bars were restated in the past)")
    u.add_argument("--json", action="store_true", help="print the result as JSON")
    u.set_defaults(handler=_update)


def resolve_series(args: argparse.Namespace, cfg: TradingConfig) -> list[Series]:
    """The series to update, each with the calendar the Dagster asset would use for it."""
    if args.universe and args.symbol:
        raise InvalidInput("features update: pass --universe or --symbol, not both")
    if not args.symbol and (args.venue or args.timeframe or args.calendar):
        raise InvalidInput("features update: --venue/--timeframe/--calendar need --symbol")
    if args.universe:
        u = cfg.universe(args.universe)
        return [(u.venue, s, u.timeframe, u.asset_class) for s in u.symbols]
    if not args.symbol:
        return [(u.venue, s, u.timeframe, u.asset_class)
                for u in cfg.market_data.universes for s in u.symbols]
    symbol = check_symbol(args.symbol)
    venue, timeframe, calendar = args.venue, args.timeframe, args.calendar
    for u in cfg.market_data.universes:
        if symbol in u.symbols and venue in (None, u.venue) and timeframe in (None, u.timeframe):
            venue, timeframe = u.venue, u.timeframe
            calendar = calendar or u.asset_class
            break
    if venue is None or timeframe is None:
        raise InvalidInput(f"features update: {symbol} is in no configured universe"
                           f"{' on ' + venue if venue else ''}; pass --venue and --timeframe")
    check_venue(venue)
    timeframe_ms(timeframe)
    return [(venue, symbol, timeframe, calendar or ("equity" if venue == "yahoo" else "crypto"))]


def _update(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..features.pipeline import FeaturePipelineConfig, update_features  # Numba: only when used
    from ..warehouse import Warehouse

    cfg = load_config(args.config)
    series = resolve_series(args, cfg)
    wh = Warehouse(cfg.warehouse.path, deadline_s=cfg.warehouse.lock_deadline_s)
    if not wh.path.exists():
        raise InvalidInput(f"no warehouse at {wh.path}; load bars first (trading ingest sample)")
    wh.migrate()  # idempotent, as the Dagster WarehouseResource does before every step
    config = FeaturePipelineConfig(regimes=cfg.regimes)
    rows = []
    for venue, symbol, timeframe, calendar in series:
        t0 = time.perf_counter()
        r = update_features(wh, venue, symbol, timeframe, config, calendar=calendar, full=args.full)
        rows.append(_row(r, calendar, time.perf_counter() - t0))
    print(json.dumps({"series": rows}, indent=2) if args.json else table(rows))
    if all(r["mode"] == "no_bars" for r in rows):
        names = ", ".join(f"{r['symbol']} ({r['venue']}, {r['timeframe']})" for r in rows)
        print(f"trading: features update: no bars of {names} in {wh.path}; ingest them first "
              "(trading ingest sample | file | live)", file=sys.stderr)
        return 2
    return 0


def _row(r: UpdateResult, calendar: str, seconds: float) -> dict[str, Any]:
    return {"venue": r.venue, "symbol": r.symbol, "timeframe": r.timeframe, "calendar": calendar,
            "mode": r.mode, "bars_read": r.bars_read, "features_written": r.features_written,
            "regimes_written": r.regimes_written,
            "first_ts": r.first_ts.isoformat() if r.first_ts else None,
            "last_ts": r.last_ts.isoformat() if r.last_ts else None,
            "feature_version": r.feature_version, "regime_version": r.regime_version,
            "seconds": round(seconds, 3)}


_MODE_TEXT = {"full": "full recompute", "incremental": "incremental", "up_to_date": "up to date",
              "no_bars": "no bars (ingest them first)"}


def table(rows: list[dict[str, Any]]) -> str:
    """One line per series, then the definitions used and what to run next."""
    lines = []
    for r in rows:
        line = f"{r['symbol']} ({r['venue']}, {r['timeframe']}): {_MODE_TEXT.get(r['mode'], r['mode'])}"
        if r["mode"] in ("full", "incremental"):
            line += (f", read {r['bars_read']} bars, wrote {r['features_written']} feature rows and "
                     f"{r['regimes_written']} regime labels for {r['first_ts'][:19]} .. {r['last_ts'][:19]}")
        elif r["mode"] == "up_to_date":
            line += f" (read {r['bars_read']} bars, nothing new)"
        lines.append(f"{line} in {r['seconds']:.1f}s")
    done = [r for r in rows if r["mode"] != "no_bars"]
    if done:
        versions = sorted({r["regime_version"] for r in done})
        fvs = sorted({r["feature_version"] for r in done})
        lines.append(f"regime_version {', '.join(versions)}; feature_version {', '.join(fvs)}")
        lines.append(f"see the labels: trading regimes --symbol {done[0]['symbol']}"
                     f" --venue {done[0]['venue']} --timeframe {done[0]['timeframe']}")
    return "\n".join(lines)
