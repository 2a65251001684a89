"""What the backtest benchmarks share: the offline sample history (BTC/USD 1h, ^GSPC 1d, ^VIX
1d) in a fresh DuckDB file, written without the validation pipeline (benchmarks/ingest.py times
that), the risk configuration under which no rule fires, and best-of-N timing of a run."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from trading_core.backtest import BacktestRequest, run_backtest
from trading_core.config import PROJECT_ROOT
from trading_core.market_data.providers.sample import SampleProvider
from trading_core.risk import BreakerConfig, MarketFilterConfig, OrderLimits, RiskConfig
from trading_core.warehouse import Warehouse

SERIES = (("coinbase", "BTC/USD", "1h"), ("yahoo", "^GSPC", "1d"))
# every risk rule configured not to fire: the stepped driver's price of stepping alone
QUIET = RiskConfig(market_filter=MarketFilterConfig(enabled=False), breakers=BreakerConfig(enabled=False),
                   orders=OrderLimits(max_price_deviation=1.0, max_adv_fraction=1.0))


class _Accepted:
    """The minimal report the warehouse writer takes: every row accepted."""

    def __init__(self, frame: object) -> None:
        self.accepted, self.dropped, self.quarantined = frame, None, None
        self.issues: list[object] = []
        self.batch_rejected, self.reject_reason = False, None
        self.rows_in = getattr(frame, "height", 0)


def sample_warehouse(path: Path) -> Warehouse:
    import polars as pl

    sample = SampleProvider(PROJECT_ROOT / ".cache" / "sample-packages")
    wh = Warehouse(path)
    wh.migrate()
    for venue, symbol, tf in (*SERIES, ("yahoo", "^VIX", "1d")):
        df = sample.fetch_ohlcv(venue, symbol, tf, datetime(1980, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC))
        rep = _Accepted(df)
        rep.dropped = rep.quarantined = pl.DataFrame()
        wh.write_report(venue=venue, symbol=symbol, timeframe=tf, source="bench", report=rep)
    return wh


def best_of(req: BacktestRequest, wh: Warehouse, repeat: int) -> tuple[float, int, str]:
    """(best seconds of ``repeat`` runs after a warm-up run, bars, driver)."""
    res = run_backtest(req, wh)  # warm-up: Numba compilation / cache load
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        res = run_backtest(req, wh)
        best = min(best, time.perf_counter() - t0)
    return best, res.bars, res.driver
