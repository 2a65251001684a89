"""What paper-trading tests share: a warehouse of the real sample history and sessions on it.

The bars are the offline default data (Coinbase BTC/USD 1h 2017-2019, ^GSPC and ^VIX daily),
written straight into a fresh DuckDB file (the validation pipeline has its own tests). The
session's risk layer is the project's default configuration: armed, as every paper session is.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import polars as pl

from trading_core.backtest import BacktestRequest
from trading_core.config import PROJECT_ROOT, load_config
from trading_core.market_data.validation import ValidationReport
from trading_core.paper.config import SessionConfig
from trading_core.paper.control import SessionStore
from trading_core.paper.runner import SessionRunner
from trading_core.warehouse import Warehouse
from trading_core.warehouse.paper import PaperLedger

SAMPLE_DIR = PROJECT_ROOT / ".cache" / "sample-packages"
SERIES = (("coinbase", "BTC/USD", "1h"), ("yahoo", "^GSPC", "1d"), ("yahoo", "^VIX", "1d"))


def accepted_report(frame: pl.DataFrame) -> ValidationReport:
    """A validator verdict accepting every row (the sample history is known good)."""
    return ValidationReport(accepted=frame, dropped=pl.DataFrame(), quarantined=pl.DataFrame(), rows_in=frame.height)


class FakeTime:
    """A clock that only moves when the runner sleeps; ``hooks`` run 'while it waits' (after each
    sleep), so a test can stop, pause or take over a session at a chosen moment."""

    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t
        self.hooks: list[Callable[[], None]] = []

    def __call__(self) -> float:
        return self.t

    def clock(self) -> float:
        return self.t

    def sleep(self, dt: float) -> None:
        self.t += dt
        for h in list(self.hooks):
            h()


@cache
def _template(tmp_root: str) -> Path:
    from trading_core.market_data.providers.sample import SampleProvider

    path = Path(tmp_root) / "template-warehouse.duckdb"
    sample = SampleProvider(SAMPLE_DIR)
    wh = Warehouse(path)
    wh.migrate()
    for venue, symbol, tf in SERIES:
        df = sample.fetch_ohlcv(venue, symbol, tf, datetime(1980, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC))
        wh.write_report(venue=venue, symbol=symbol, timeframe=tf, source="sample", report=accepted_report(df))
    return path


def sample_warehouse(dest: Path, cache_root: Path) -> Warehouse:
    """A copy of the sample warehouse at ``dest`` (built once per ``cache_root``)."""
    shutil.copyfile(_template(str(cache_root)), dest)
    return Warehouse(dest)


def btc_request(start: datetime = datetime(2019, 1, 1, tzinfo=UTC), end: datetime = datetime(2019, 3, 1, tzinfo=UTC),
                **kw: Any) -> BacktestRequest:
    """ma_crossover 10/30 on BTC/USD 1h with the default (armed) risk config and 40 warm-up bars."""
    cfg = load_config()
    fields: dict[str, Any] = {
        "strategy": "ma_crossover", "params": {"fast": 10, "slow": 30}, "symbol": "BTC/USD", "venue": "coinbase",
        "timeframe": "1h", "start": start, "end": end, "risk": cfg.risk, "persist": False, "warmup_bars": 40,
        "venue_config": dict(cfg.venues.get("coinbase", {}))}
    fields.update(kw)
    return BacktestRequest(**fields)


def gspc_request(start: datetime = datetime(2005, 1, 1, tzinfo=UTC), end: datetime = datetime(2012, 1, 1, tzinfo=UTC),
                 **kw: Any) -> BacktestRequest:
    cfg = load_config()
    fields: dict[str, Any] = {
        "strategy": "ma_crossover", "params": {"fast": 20, "slow": 50}, "symbol": "^GSPC", "venue": "yahoo",
        "timeframe": "1d", "start": start, "end": end, "risk": cfg.risk, "persist": False, "warmup_bars": 60,
        "calendar": "equity", "venue_config": dict(cfg.venues.get("yahoo", {}))}
    fields.update(kw)
    return BacktestRequest(**fields)


class PaperEnv:
    """A data directory with a warehouse, a session store and a ledger (what a job sees)."""

    def __init__(self, root: Path, cache_root: Path) -> None:
        self.root = root
        self.cache_root = cache_root
        root.mkdir(parents=True, exist_ok=True)
        self.warehouse = sample_warehouse(root / "warehouse.duckdb", cache_root)
        self.store = SessionStore(root / "paper")
        self.ledger = PaperLedger(root / "paper.duckdb")

    def session(self, request: BacktestRequest | None = None, *, session_id: str | None = None,
                **kw: Any) -> str:
        config = SessionConfig(name=kw.pop("name", "test"), request=request or btc_request(), **kw)
        sid, _ = self.store.create(config, session_id=session_id)
        return sid

    def runner(self, sid: str, run_id: str = "run-1", **kw: Any) -> SessionRunner:
        return SessionRunner(sid, store=self.store, ledger=self.ledger, warehouse=self.warehouse, run_id=run_id,
                             data_dir=self.root, **kw)

    def run(self, sid: str, run_id: str = "run-1", **kw: Any) -> Any:
        return self.runner(sid, run_id, **kw).run()

    def ledger_hash(self, sid: str) -> str:
        with self.ledger.connect(read_only=True) as con:
            return self.ledger.ledger_hash(con, sid)

    def counts(self, sid: str) -> dict[str, int]:
        with self.ledger.connect(read_only=True) as con:
            return self.ledger.counts(con, sid)
