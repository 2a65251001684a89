"""T4: a batch write killed with SIGKILL leaves ``market.bars`` exactly as before or after it.

A child process writes a 200k-bar batch (new bars plus restated ones, so revisions move too)
through ``Warehouse.write_report`` - one transaction, then CHECKPOINT. The parent kills it after
a seeded random delay spread over the write (some kills land mid-transaction, some during the
checkpoint, some after the commit), reopens the file as a restarted process would (WAL replay),
and checks the digest is the pre- or the post-batch digest, never anything between. Re-running
the batch then converges to one clean copy: 0 duplicate keys and the digest of an uninterrupted
run. Seed printed; each attempt starts from a copy of the same pre-batch file.
"""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from trading_core.warehouse import Warehouse

SEED = 20240604
KILLS = 12
PRE_BARS = 50_000
BATCH_BARS = 200_000
OVERLAP = 20_000  # bars of the batch already stored; 1,000 of them restated
BATCH_ID = "t4-batch"

# Deterministic frames, built the same way in the parent and in the killed child.
HELPERS = r"""
from dataclasses import dataclass, field
import numpy as np
import polars as pl
from trading_core.warehouse import Warehouse

def frame(first, n):
    rng = np.random.default_rng(first + 7)
    close = np.abs(100 + np.cumsum(rng.normal(0, 0.5, n))) + 10
    ts = np.arange(first, first + n, dtype=np.int64) * 3_600_000
    return pl.DataFrame({
        "ts": pl.Series(ts).cast(pl.Datetime("ms", "UTC")),
        "open": close, "high": close + 1.0, "low": close - 1.0, "close": close,
        "volume": rng.uniform(1, 100, n),
    })

@dataclass
class Report:
    accepted: pl.DataFrame
    dropped: pl.DataFrame = field(default_factory=pl.DataFrame)
    quarantined: pl.DataFrame = field(default_factory=pl.DataFrame)
    issues: list = field(default_factory=list)
    batch_rejected: bool = False
    reject_reason: str | None = None
    rows_in: int = 0

def build(which, pre_bars, batch_bars, overlap):
    if which == "pre":
        accepted = frame(0, pre_bars)
    else:
        # the last `overlap` stored bars again, 1,000 of them restated, then the new bars
        ov = frame(0, pre_bars).slice(pre_bars - overlap, overlap)
        bump = pl.Series(np.arange(overlap) % (overlap // 1000) == 0)
        ov = ov.with_columns(close=pl.when(bump).then(pl.col("close") + 0.5).otherwise(pl.col("close")),
                             high=pl.when(bump).then(pl.col("high") + 0.5).otherwise(pl.col("high")))
        accepted = pl.concat([ov, frame(pre_bars, batch_bars - overlap)])
    return Report(accepted=accepted, rows_in=accepted.height)


def write(path, which, batch_id, pre_bars, batch_bars, overlap, on_ready=lambda: None):
    wh = Warehouse(path)
    wh.migrate()
    report = build(which, pre_bars, batch_bars, overlap)
    on_ready()
    return wh.write_report(venue="testvenue", symbol="BTC/USD", timeframe="1h", source="t4",
                           report=report, batch_id=batch_id)
"""

CHILD = HELPERS + r"""
import sys
write(sys.argv[1], sys.argv[2], sys.argv[3], *map(int, sys.argv[4:7]),
      on_ready=lambda: print("ready", flush=True))
"""



_NS: dict[str, Any] = {}
exec(HELPERS, _NS)  # noqa: S102 - the parent builds exactly the frames the child writes


def _write(path: Path, which: str, batch_id: str) -> Any:
    """Write in this process (setup, reference and convergence runs need no kill)."""
    return _NS["write"](str(path), which, batch_id, PRE_BARS, BATCH_BARS, OVERLAP)


def _spawn(path: Path, batch_id: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), "batch", batch_id, str(PRE_BARS), str(BATCH_BARS),
         str(OVERLAP)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _reopen(path: Path) -> Warehouse:
    """What a restarted process does: open read-write (WAL replay), then read."""
    wh = Warehouse(path)
    wh.migrate()
    return wh


def _duplicate_keys(wh: Warehouse) -> int:
    return int(wh.query(
        "SELECT count(*) - count(DISTINCT (venue, symbol, timeframe, ts, revision)) AS d "
        "FROM market.bars")["d"][0] + wh.query(
        "SELECT count(*) - count(DISTINCT (venue, symbol, timeframe, ts)) AS d FROM market.bars")["d"][0])


def _landed(wh: Warehouse, batch_id: str) -> bool:
    return bool(wh.query("SELECT count(*) AS n FROM market.ingest_batches WHERE batch_id = $b",
                         {"b": batch_id})["n"][0] > 0)


@pytest.mark.integration
def test_sigkill_during_batch_write_is_all_or_nothing(tmp_path: Path) -> None:
    print(f"seed={SEED} kills={KILLS}")
    rng = random.Random(SEED)
    pre_file = tmp_path / "pre.duckdb"
    _write(pre_file, "pre", "t4-pre")
    pre_digest = Warehouse(pre_file).digest()

    ref_file = tmp_path / "ref.duckdb"
    shutil.copy(pre_file, ref_file)
    t0 = time.monotonic()
    r = _write(ref_file, "batch", BATCH_ID)
    write_s = time.monotonic() - t0
    ref = Warehouse(ref_file)
    post_digest, ref_revisions = ref.digest(), ref.digest("market.bar_revisions")
    assert (r.inserted, r.revised) == (BATCH_BARS - OVERLAP, 1000)
    assert post_digest != pre_digest and _duplicate_keys(ref) == 0

    outcomes: list[str] = []
    f = tmp_path / "kill.duckdb"
    for i in range(KILLS):
        f.unlink(missing_ok=True)
        Path(f"{f}.wal").unlink(missing_ok=True)
        shutil.copy(pre_file, f)
        # Spread over the whole write and a little past it (the child is slower than this
        # process while both start up), so kills hit the transaction, the checkpoint and the
        # moments after the commit.
        delay = rng.uniform(0.0, 1.3 * write_s)
        p = _spawn(f, BATCH_ID)
        assert p.stdout is not None
        ready = p.stdout.readline().strip()
        assert ready == "ready", p.stderr.read() if p.stderr else ready
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=30)
        wh = _reopen(f)
        digest = wh.digest()
        assert digest in (pre_digest, post_digest), f"kill {i} after {delay:.3f}s left a partial batch"
        outcomes.append("post" if digest == post_digest else "pre")
        assert _duplicate_keys(wh) == 0

        # Converge: retry the batch with the same id if it never landed (as a step retry does).
        if not _landed(wh, BATCH_ID):
            _write(f, "batch", BATCH_ID)
        assert wh.digest() == post_digest
        assert wh.digest("market.bar_revisions") == ref_revisions
    # Re-running the same bars as new batches changes nothing and duplicates nothing.
    for n in range(3):
        again = _write(f, "batch", f"t4-again-{n}")
        assert (again.inserted, again.revised, again.unchanged) == (0, 0, BATCH_BARS)
    wh = Warehouse(f)
    assert wh.digest() == post_digest and _duplicate_keys(wh) == 0
    print(f"write {write_s:.2f}s; outcomes {outcomes}")
    assert "pre" in outcomes, "no kill landed before the commit; the delays no longer cover the write"
