"""The ledger file: one transaction per commit, generation fencing, idempotent events, hashing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from trading_core.warehouse.paper import BarCommit, LeaseHeld, LeaseLost, PaperLedger

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _event(sid: str, seq: int, bar: int, gen: int = 1) -> tuple:
    return (f"{sid}:{bar}:{seq}", sid, seq, bar, 1_000 * bar, "OrderFilled", 0, "BTC/USD", None, "{}", 0, gen, False)


def _ledger(tmp_path: Path) -> PaperLedger:
    led = PaperLedger(tmp_path / "paper.duckdb")
    led.migrate()
    return led


def test_paper_duckdb_holding_schema_paper_is_unambiguous(tmp_path: Path) -> None:
    led = _ledger(tmp_path)
    with led.connect() as con:
        assert con.execute("SELECT count(*) FROM paper.events").fetchone() == (0,)
    with pytest.raises(duckdb.BinderException):  # what attaching under another name avoids
        raw = duckdb.connect(str(tmp_path / "paper.duckdb"))
        try:
            raw.execute("SELECT count(*) FROM paper.events")
        finally:
            raw.close()


def test_lease_is_refused_while_another_runs_heartbeat_is_fresh(tmp_path: Path) -> None:
    led = _ledger(tmp_path)
    with led.connect() as con:
        assert led.take_lease(con, "s", "run-a", stale_after_s=30, now=T0) == 1
        with pytest.raises(LeaseHeld, match="run-a"):
            led.take_lease(con, "s", "run-b", stale_after_s=30, now=T0 + timedelta(seconds=10))
        assert led.take_lease(con, "s", "run-b", stale_after_s=30, now=T0 + timedelta(seconds=31)) == 2


def test_a_fenced_off_run_writes_nothing(tmp_path: Path) -> None:
    led = _ledger(tmp_path)
    with led.connect() as con:
        g1 = led.take_lease(con, "s", "run-a", stale_after_s=30, now=T0)
        led.commit(con, "s", g1, [BarCommit(1, 0, 1, [_event("s", 1, 0)])], bars_revision=0, now=T0)
        g2 = led.take_lease(con, "s", "run-b", stale_after_s=0, now=T0 + timedelta(seconds=1))
        with pytest.raises(LeaseLost, match="generation 1"):
            led.commit(con, "s", g1, [BarCommit(2, 1000, 2, [_event("s", 2, 1)])], bars_revision=0, now=T0)
        assert led.counts(con, "s")["rows"] == 1
        assert led.checkpoint(con, "s").bar_index == 1
        led.commit(con, "s", g2, [BarCommit(2, 1000, 2, [_event("s", 2, 1, g2)])], bars_revision=0, now=T0)
        assert led.checkpoint(con, "s").generation == g2


def test_a_replayed_bar_adds_no_row_and_a_failed_commit_leaves_nothing(tmp_path: Path) -> None:
    led = _ledger(tmp_path)
    with led.connect() as con:
        g = led.take_lease(con, "s", "run-a", stale_after_s=30, now=T0)
        bar = BarCommit(1, 0, 1, [_event("s", 1, 0)], equity=[("s", 0, 0, 0, 1.0, 1.0, 0.0)])
        led.commit(con, "s", g, [bar], bars_revision=0, now=T0)
        led.commit(con, "s", g, [bar], bars_revision=0, now=T0)
        assert led.counts(con, "s") == {"rows": 1, "ids": 1, "fills": 1}

        def boom(point: str) -> None:
            if point == "after_checkpoint_write":
                raise RuntimeError("crash")

        with pytest.raises(RuntimeError):
            led.commit(con, "s", g, [BarCommit(2, 1000, 2, [_event("s", 2, 1)], snapshot=b"x")], bars_revision=0,
                       now=T0, crash=boom)
        assert led.counts(con, "s")["rows"] == 1
        assert led.checkpoint(con, "s").bar_index == 1
        assert led.latest_snapshot(con, "s", 10) is None


def test_ledger_hash_ignores_provenance_only(tmp_path: Path) -> None:
    a, b = _ledger(tmp_path / "a"), _ledger(tmp_path / "b")
    for led, gen, rec in ((a, 1, False), (b, 3, True)):
        with led.connect() as con:
            g = led.take_lease(con, "s", "r", stale_after_s=0, now=T0)
            for _ in range(gen - 1):
                g = led.take_lease(con, "s", "r", stale_after_s=0, now=T0)
            row = _event("s", 1, 0, g)[:-1] + (rec,)
            led.commit(con, "s", g, [BarCommit(1, 0, 1, [row])], bars_revision=0, now=T0)
    with a.connect() as ca, b.connect() as cb:
        assert a.ledger_hash(ca, "s") == b.ledger_hash(cb, "s")
        cb.execute("UPDATE paper.events SET payload = '{\"x\":1}'")
        assert a.ledger_hash(ca, "s") != b.ledger_hash(cb, "s")


def test_a_corrupt_snapshot_is_skipped_for_an_older_good_one(tmp_path: Path) -> None:
    led = _ledger(tmp_path)
    with led.connect() as con:
        g = led.take_lease(con, "s", "r", stale_after_s=0, now=T0)
        led.commit(con, "s", g, [BarCommit(5, 0, 1, snapshot=b"good"), BarCommit(10, 1, 2, snapshot=b"bad")],
                   bars_revision=0, now=T0)
        con.execute("UPDATE paper.snapshots SET state = 'tampered'::BLOB WHERE bar_index = 10")
        snap = led.latest_snapshot(con, "s", 10)
        assert snap is not None and snap.bar_index == 5 and snap.state == b"good"
