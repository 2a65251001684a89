"""The benchmarks' warehouse: the offline sample history (BTC/USD 1h, ^GSPC 1d, ^VIX 1d) in a
fresh DuckDB file, written without the validation pipeline (benchmarks/ingest.py times that)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from trading_core.config import PROJECT_ROOT
from trading_core.market_data.providers.sample import SampleProvider
from trading_core.warehouse import Warehouse

SERIES = (("coinbase", "BTC/USD", "1h"), ("yahoo", "^GSPC", "1d"))


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
