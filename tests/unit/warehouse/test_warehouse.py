from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from trading_core.errors import InvalidInput, WarehouseBusy
from trading_core.market_data.ingest import missing_ranges
from trading_core.warehouse import Warehouse, connect
from trading_core.warehouse.migrations import available_migrations


@dataclass
class Report:
    """The minimal shape the writer reads from a validation report."""

    accepted: pl.DataFrame
    dropped: pl.DataFrame = field(default_factory=lambda: pl.DataFrame({"row_id": []}))
    quarantined: pl.DataFrame = field(default_factory=lambda: pl.DataFrame({"row_id": [], "rule": []}))
    issues: list = field(default_factory=list)
    batch_rejected: bool = False
    reject_reason: str | None = None
    rows_in: int = 0


def bars(n: int, start: datetime = datetime(2020, 1, 1, tzinfo=UTC), close: float = 101.0) -> pl.DataFrame:
    ts = [start + timedelta(hours=i) for i in range(n)]
    return pl.DataFrame({"ts": ts, "open": [100.0] * n, "high": [102.0] * n, "low": [99.0] * n,
                         "close": [close] * n, "volume": [5.0] * n}).with_columns(
        pl.col("ts").dt.cast_time_unit("ms"))


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    w = Warehouse(tmp_path / "w.duckdb", deadline_s=1.0)
    w.migrate()
    return w


def write(wh: Warehouse, frame: pl.DataFrame, **kw):  # type: ignore[no-untyped-def]
    return wh.write_report(venue="coinbase", symbol="BTC/USD", timeframe="1h", source="test",
                           report=Report(frame, rows_in=frame.height, **kw))


def test_migrations_apply_once_and_record_their_versions(tmp_path: Path) -> None:
    w = Warehouse(tmp_path / "m.duckdb")
    versions = [m.version for m in available_migrations()]
    assert w.migrate() == versions
    assert w.migrate() == []
    got = w.query("SELECT version FROM ops.schema_migrations ORDER BY version")["version"].to_list()
    assert got == versions


def test_rewriting_the_same_bars_is_a_no_op(wh: Warehouse) -> None:
    first = write(wh, bars(48))
    again = write(wh, bars(48))
    assert (first.inserted, again.inserted, again.unchanged) == (48, 0, 48)
    assert wh.query("SELECT count(*) AS n FROM market.bars")["n"][0] == 48


def test_a_restated_bar_gets_a_new_revision_and_keeps_the_old_value(wh: Warehouse) -> None:
    write(wh, bars(3))
    result = write(wh, bars(3, close=101.5))
    assert (result.revised, result.inserted) == (3, 0)
    current = wh.query("SELECT close, revision FROM market.bars ORDER BY ts")
    assert current["close"].to_list() == [101.5] * 3 and current["revision"].to_list() == [1] * 3
    old = wh.query("SELECT close, revision FROM market.bar_revisions")
    assert old["close"].to_list() == [101.0] * 3 and old["revision"].to_list() == [0] * 3


def test_read_bars_returns_the_half_open_range_in_canonical_schema(wh: Warehouse) -> None:
    write(wh, bars(10))
    got = wh.read_bars("coinbase", "BTC/USD", "1h", datetime(2020, 1, 1, 2, tzinfo=UTC),
                       datetime(2020, 1, 1, 5, tzinfo=UTC))
    assert got.height == 3
    assert got.schema["ts"] == pl.Datetime("ms", "UTC")
    assert got["ts"][0] == datetime(2020, 1, 1, 2, tzinfo=UTC)


def test_a_batch_that_fails_midway_leaves_the_store_unchanged(wh: Warehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    write(wh, bars(5))
    before = wh.digest()
    import trading_core.warehouse.bars as wb

    def boom(*a, **k):  # type: ignore[no-untyped-def]
        raise RuntimeError("crash after the bars insert")

    monkeypatch.setattr(wb, "_quarantine_frame", boom)
    q = pl.DataFrame({"row_id": [0], "rule": ["ohlc.high_below_low"], "detail": ["x"]})
    with pytest.raises(RuntimeError):
        write(wh, bars(20, start=datetime(2021, 1, 1, tzinfo=UTC)), quarantined=q)
    assert wh.digest() == before
    assert wh.query("SELECT count(*) AS n FROM market.ingest_batches")["n"][0] == 1


def test_a_rejected_batch_is_recorded_but_writes_no_bars(wh: Warehouse) -> None:
    result = write(wh, bars(5).clear(), batch_rejected=True, reject_reason="missing column close")
    assert result.status == "rejected"
    assert wh.is_empty()
    row = wh.query("SELECT status, reason FROM market.ingest_batches").row(0)
    assert row == ("rejected", "missing column close")


def test_symbols_are_checked_before_any_query(wh: Warehouse) -> None:
    with pytest.raises(InvalidInput):
        wh.read_bars("coinbase", "BTC'; DROP TABLE market.bars; --", "1h")
    with pytest.raises(InvalidInput):
        wh.write_report(venue="coinbase", symbol="../x", timeframe="1h", source="t", report=Report(bars(1)))


def test_lock_conflict_is_retried_then_reported_as_busy(tmp_path: Path) -> None:
    # A separate interpreter holds the write lock (DuckDB locks per process). A plain
    # subprocess, not multiprocessing's spawn: spawn re-imports ``__main__``, which an
    # earlier in-process test (Streamlit's AppTest) may have pointed at an app script.
    path = tmp_path / "locked.duckdb"
    Warehouse(path).migrate()
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        sleeps: list[float] = []
        with pytest.raises(WarehouseBusy, match="locked"), connect(path, deadline_s=0.3, sleep=sleeps.append):
            pass
        assert sleeps and all(s <= 1.0 for s in sleeps)
    finally:
        holder.communicate("release\n", timeout=30)
    with connect(path, read_only=True) as con:  # free again once the holder is gone
        assert con.execute("SELECT 1").fetchall() == [(1,)]


_HOLD_LOCK = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
con.close()
"""


def test_snapshot_is_published_atomically_and_readable(wh: Warehouse, tmp_path: Path) -> None:
    write(wh, bars(7))
    dest = wh.publish(tmp_path / "serving" / "serving.duckdb", ["market.bars"])
    from trading_core.warehouse.snapshots import open_snapshot

    con = open_snapshot(dest)
    try:
        assert con.execute("SELECT count(*) FROM market.bars").fetchall() == [(7,)]
    finally:
        con.close()
    assert not list(dest.parent.glob("*.tmp-*"))


def test_missing_ranges_fetch_only_what_is_not_stored() -> None:
    t = lambda h: datetime(2020, 1, 1, tzinfo=UTC) + timedelta(hours=h)  # noqa: E731
    assert missing_ranges(None, t(0), t(10), "1h") == [(t(0), t(10))]
    assert missing_ranges((t(0), t(9)), t(0), t(10), "1h") == []
    assert missing_ranges((t(2), t(5)), t(0), t(10), "1h") == [(t(0), t(2)), (t(6), t(10))]
    assert missing_ranges((t(2), t(5)), t(3), t(4), "1h") == []


def test_duplicate_timestamps_in_an_accepted_batch_are_refused_and_nothing_is_written(wh: Warehouse) -> None:
    frame = pl.concat([bars(3), bars(1)])  # unsorted, with a repeated ts
    with pytest.raises(ValueError, match="duplicate timestamps"):
        write(wh, frame)
    assert wh.is_empty()
    write(wh, pl.concat([bars(3).tail(1), bars(2)]))  # unsorted but unique is fine
    assert wh.query("SELECT count(*) AS n FROM market.bars")["n"][0] == 3
