"""Pre-flight: everything a session needs before it may trade, each with its reason.

Run by ``trading paper start`` before the request is written and again by the job's first stage
(data can go stale between the two). A start is refused with EVERY failing reason at once, so a
user fixes them in one go rather than one per attempt.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..errors import TradingError
from ..warehouse.bars import HeldRows
from .config import SessionConfig

__all__ = ["Check", "preflight", "failing"]

MIN_FREE_BYTES = 200 * 1024 * 1024


@dataclass(frozen=True)
class Check:
    name: str  # data | quality | model | risk | engine | disk
    ok: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def failing(checks: list[Check]) -> list[str]:
    return [f"{c.name}: {c.detail}" for c in checks if not c.ok]


def _held_in_window(warehouse: Any, config: SessionConfig, venue: str, symbol: str) -> HeldRows | None:
    """Quarantined rows of ``symbol`` where the session decides from them: its strategy warm-up
    and its own bars (live: from the warm-up on). A hole there changes what it trades; one years
    before does not (the volatility rank's year of history shrugs off a missing day). ``None``
    when the warehouse cannot say (then any quarantine fails the check)."""
    if not hasattr(warehouse, "quarantined_rows"):
        return None
    from ..timeframes import timeframe_ms

    r = config.request
    lead = timedelta(milliseconds=timeframe_ms(r.timeframe) * (r.warmup_bars + 1)) * 1.6 + timedelta(days=7)
    end = None if config.feed == "live" else r.end
    held = warehouse.quarantined_rows(venue, [symbol], r.timeframe, r.start - lead, end)
    return held.get(symbol, HeldRows(symbol, 0, {}, None, None))


def preflight(config: SessionConfig, warehouse: Any, *, data_dir: Path, stale_bars: int = 24,
              now: datetime | None = None, compile_engine: bool = True) -> list[Check]:
    """Data present (replay) or fresh (live), its last ingest batch clean, no unhealthy model,
    risk limits armed, the engine compiled, disk space for the ledger."""
    from ..timeframes import timeframe_ms

    now = now or datetime.now(UTC)
    r = config.request
    checks: list[Check] = []
    tf_ms = timeframe_ms(r.timeframe)
    data_bad, quality_bad = [], []
    exists = Path(getattr(warehouse, "path", "")).exists()
    for sym in r.universe:
        venue = r.venue_of(sym)
        rng = warehouse.series_range(venue, sym, r.timeframe) if exists else None
        if rng is None:
            data_bad.append(f"no {sym} {r.timeframe} bars on {venue} (trading ingest sample, or trading ingest live)")
            continue
        if config.feed == "replay":
            if rng.last_ts < r.start or rng.first_ts >= r.end:
                data_bad.append(f"{sym}: stored {rng.first_ts.date()}..{rng.last_ts.date()}, outside the replay "
                                f"{r.start.date()}..{r.end.date()}")
        else:
            from .feeds import missed_bars

            # its own length plus the bars its venue's calendar expected since (a weekend does not age an equity)
            age_bars = 1.0 + missed_bars(int(rng.last_ts.timestamp() * 1000), int(now.timestamp() * 1000), tf_ms,
                                         r.calendar_of(sym))
            if age_bars > stale_bars:
                data_bad.append(f"{sym}: last bar {rng.last_ts.isoformat()} is {age_bars:.0f} bars old "
                                f"(limit {stale_bars}, counted on its {r.calendar_of(sym)} calendar): ingest first")
        batch = warehouse.latest_batch(venue, sym, r.timeframe)
        if batch is not None and batch["status"] != "accepted":
            quality_bad.append(f"{sym}: last ingest batch {batch['batch_id']} was rejected ({batch['reason']})")
        elif batch is not None and batch["rows_quarantined"]:
            held = _held_in_window(warehouse, config, venue, sym)
            if held is None or held.rows:
                where = "" if held is None else (f" ({held.rows} in the session's window, "
                                                 f"{held.first_ts:%Y-%m-%d}..{held.last_ts:%Y-%m-%d})")
                quality_bad.append(f"{sym}: last ingest batch {batch['batch_id']} quarantined "
                                   f"{batch['rows_quarantined']} row(s){where}: review market.quarantine")
    checks.append(Check("data", not data_bad, "; ".join(data_bad) or
                        f"{', '.join(r.universe)} {r.timeframe} on {', '.join(dict.fromkeys(r.venues or (r.venue,)))} stored"))
    checks.append(Check("quality", not quality_bad, "; ".join(quality_bad) or "last ingest batches clean"))
    checks.append(_model_check(config))
    risk = r.risk
    if risk is None:
        checks.append(Check("risk", False, "risk limits are not armed (the session has no risk section)"))
    elif not risk.breakers.enabled:
        checks.append(Check("risk", False, "circuit breakers are disabled (risk.breakers.enabled: false)"))
    else:
        checks.append(Check("risk", True, "breakers, order checks and market filter armed"))
    checks.append(_engine_check(config) if compile_engine else Check("engine", True, "not checked"))
    free = shutil.disk_usage(_existing(data_dir)).free
    checks.append(Check("disk", free >= MIN_FREE_BYTES,
                        f"{free / 2**20:.0f} MiB free in {data_dir}" + ("" if free >= MIN_FREE_BYTES else
                                                                       f" (need {MIN_FREE_BYTES / 2**20:.0f})")))
    return checks


def _existing(p: Path) -> Path:
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _model_check(config: SessionConfig) -> Check:
    """A strategy that trades a registered model: the version resolves (alias or pin), its
    artifact's hash verifies and it loads -- the same load the session's first bar would do."""
    r = config.request
    if r.strategy != "ml_signal":
        return Check("model", True, "no model used by this strategy")
    from ..strategies.registry import get_strategy

    try:
        strategy: Any = get_strategy(r.strategy, r.params)
        tag = strategy.loaded().tag
    except TradingError as e:
        return Check("model", False, str(e))
    return Check("model", True, f"{tag} loaded, artifact hash verified")


def _engine_check(config: SessionConfig) -> Check:
    """Compile (or load from Numba's cache) what a session steps -- the Trader with the session's
    market model, filters and risk gate -- on two synthetic bars, so the first real bar is not
    the one that waits for compilation."""
    import numpy as np

    from ..backtest.runner import build_market_model, trader_layout
    from ..strategies.streaming import BarSlice
    from ..timeframes import timeframe_ms
    from ..trading import ReplaySignals, Trader, TraderConfig

    t = time.perf_counter()
    r = config.request
    try:
        S = len(r.universe)
        symbol_of, account_of = trader_layout(1, S)
        trader = Trader(TraderConfig(symbols=tuple(r.universe), symbol_of=tuple(int(x) for x in symbol_of),
                                     account_of=tuple(int(x) for x in account_of), model=build_market_model(r),
                                     calendar=r.resolved_calendar(), bar_ms=timeframe_ms(r.timeframe),
                                     filters=r.filters, risk=r.risk, record_events=False),
                        ReplaySignals(np.zeros((2, S), np.bool_), np.zeros((2, S), np.bool_)))
        one = np.ones(S)
        for ts in (0, timeframe_ms(r.timeframe)):
            trader.on_bar(BarSlice(ts, one, one, one, one, one))
    except Exception as e:  # a compile failure is a pre-flight verdict, not a crash
        return Check("engine", False, f"the trading loop did not compile: {type(e).__name__}: {e}")
    return Check("engine", True, f"compiled in {time.perf_counter() - t:.1f}s")
