"""``ingest file`` reads CSV and Parquet in batches: the report, the stored bars, quarantine and
issues are the same as reading the file whole; a file rejected by a row in its last batch leaves
the warehouse unchanged; no batch holds more than the batch size."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from trading_core.cli import main
from trading_core.market_data.ingest import ingest_file, ingest_frame, validate
from trading_core.market_data.normalize import BarFileBatches, open_bar_batches, read_bar_file
from trading_core.market_data.validation import validate_bar_batches
from trading_core.warehouse import Warehouse

NOW = datetime(2026, 12, 1, tzinfo=UTC)
ARGS = dict(venue="coinbase", symbol="BTC/USD", timeframe="1h", now=NOW)


def _text_rows(bars: pl.DataFrame) -> list[list[str]]:
    out = bars.select(pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
                      *[pl.col(c).cast(pl.Utf8) for c in ("open", "high", "low", "close", "volume")])
    return [list(r) for r in out.iter_rows()]


def _hostile_csv(path: Path, bars: pl.DataFrame, *, naive_last: bool = False) -> Path:
    """Real BTC/USD hours with problems spread over the batches (and across their boundaries)."""
    rows = _text_rows(bars)
    rows[10][4] = "abc"  # dtype.unparseable_value
    rows[1_000] = list(rows[999])  # identical duplicate right across a 1,000-row boundary
    rows[1_401][1:] = [v + "1" for v in rows[1_401][1:]]  # restated: ...
    rows.insert(1_402, list(rows[1_401]))
    rows.insert(1_402, _text_rows(bars.slice(1_401, 1))[0])  # ... a conflicting copy after it
    rows[2_100], rows[2_101] = rows[2_101], rows[2_100]  # unsorted
    rows[2_600][2] = str(float(rows[2_600][3]) - 1)  # high below low
    spike = float(rows[3_000][4]) * 3
    rows[3_000][2] = rows[3_000][4] = str(spike)  # a one-bar spike that reverses
    del rows[3_500:3_505]  # a gap
    if naive_last:
        rows[-3][0] = rows[-3][0].replace("Z", "")  # no UTC offset: rejects the whole file
    path.write_text("timestamp,open,high,low,close,volume,extra\n"
                    + "".join(",".join([*r, "x"]) + "\n" for r in rows))
    return path


def _stored(wh: Warehouse) -> dict[str, object]:
    return {
        "bars": wh.query("SELECT venue, symbol, timeframe, ts, open, high, low, close, volume, revision "
                         "FROM market.bars ORDER BY ts").rows(),
        "quarantine": wh.query("SELECT row_id, rule, detail, ts, open, high, low, close, volume, raw "
                               "FROM market.quarantine ORDER BY row_id, rule").rows(),
        "issues": wh.query("SELECT rule, action, row_count, first_ts, last_ts, detail FROM market.quality_issues "
                           "ORDER BY rule").rows(),
    }


@pytest.fixture(scope="module")
def hours(btc_1h: pl.DataFrame) -> pl.DataFrame:
    return btc_1h.head(4_000)


@pytest.mark.parametrize("batch_rows", [700, 1_000, 3_999])
def test_streamed_csv_when_several_batches_then_same_report_and_store_as_read_whole(
        tmp_path: Path, hours: pl.DataFrame, batch_rows: int) -> None:
    src = _hostile_csv(tmp_path / "bars.csv", hours)
    whole, streamed = Warehouse(tmp_path / "whole.duckdb"), Warehouse(tmp_path / "streamed.duckdb")
    whole.migrate()
    streamed.migrate()
    a = ingest_frame(whole, read_bar_file(src), source="file:bars.csv", write_rejected=False, **ARGS)  # type: ignore[arg-type]
    b = ingest_file(streamed, src, batch_rows=batch_rows, **ARGS)  # type: ignore[arg-type]
    assert {k: v for k, v in a.to_dict().items() if k != "batch_id"} == \
        {k: v for k, v in b.to_dict().items() if k != "batch_id"}
    assert b.quarantined >= 4 and b.dropped >= 1 and not b.batch_rejected  # the problems were seen
    assert {"ts.duplicate_conflict", "ts.unsorted", "price.spike", "gap.missing_bars",
            "schema.column_alias", "schema.extra_column"} <= set(b.rule_counts)
    assert _stored(whole) == _stored(streamed)


def test_streamed_report_when_compared_field_by_field_then_identical(tmp_path: Path, hours: pl.DataFrame) -> None:
    src = _hostile_csv(tmp_path / "bars.csv", hours)
    batches = open_bar_batches(src, batch_rows=650)
    assert isinstance(batches, BarFileBatches)
    one = validate(read_bar_file(src), timeframe="1h", now=NOW, validation=None, calendar="crypto")  # type: ignore[arg-type]
    many = validate_bar_batches(iter(batches), batches, timeframe="1h", now=NOW)
    assert one.accepted.equals(many.accepted)
    assert one.quarantined.equals(many.quarantined)
    assert one.dropped.equals(many.dropped)
    assert one.issues == many.issues and one.rows_in == many.rows_in


def test_streamed_parquet_when_several_batches_then_same_store_as_read_whole(
        tmp_path: Path, hours: pl.DataFrame) -> None:
    src = tmp_path / "bars.parquet"
    bad = hours.with_columns(pl.when(pl.int_range(pl.len()) == 2_500).then(-1.0).otherwise(pl.col("volume"))
                             .alias("volume"))
    bad.write_parquet(src, row_group_size=600)
    whole, streamed = Warehouse(tmp_path / "whole.duckdb"), Warehouse(tmp_path / "streamed.duckdb")
    whole.migrate()
    streamed.migrate()
    a = ingest_frame(whole, read_bar_file(src), source="file:bars.parquet", write_rejected=False, **ARGS)  # type: ignore[arg-type]
    b = ingest_file(streamed, src, batch_rows=900, **ARGS)  # type: ignore[arg-type]
    assert b.rule_counts == a.rule_counts and a.rule_counts["volume.negative"] == 1 and b.quarantined == 1
    assert _stored(whole) == _stored(streamed)


def test_streamed_file_when_a_row_of_the_last_batch_rejects_it_then_store_unchanged(
        tmp_path: Path, hours: pl.DataFrame, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    wh_path = tmp_path / "w.duckdb"
    monkeypatch.setenv("TRADING_WAREHOUSE", str(wh_path))
    good = tmp_path / "good.csv"
    hours.head(1_500).write_csv(good)
    assert main(["ingest", "file", str(good), "--symbol", "BTC/USD", "--venue", "coinbase", "--timeframe", "1h",
                 "--batch-rows", "1000"]) == 0
    before = Warehouse(wh_path).digest()
    src = _hostile_csv(tmp_path / "bad.csv", hours, naive_last=True)
    capsys.readouterr()
    rc = main(["ingest", "file", str(src), "--symbol", "BTC/USD", "--venue", "coinbase", "--timeframe", "1h",
               "--batch-rows", "1000", "--json"])
    out, err = capsys.readouterr()
    assert rc == 2
    assert "ts.tz_naive" in out and err.count("\n") == 1 and "rejected" in err and "no UTC offset" in err
    assert Warehouse(wh_path).digest() == before


def test_batches_when_read_then_none_larger_than_the_batch_size(tmp_path: Path, hours: pl.DataFrame) -> None:
    src = _hostile_csv(tmp_path / "bars.csv", hours)
    batches = open_bar_batches(src, batch_rows=512)
    assert batches is not None
    sizes = [b.height for b in batches]
    assert len(sizes) > 5 and max(sizes) <= 512
    assert sum(sizes) == read_bar_file(src).height


def test_batch_rows_flag_when_out_of_range_then_argument_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["ingest", "file", "x.csv", "--symbol", "BTC/USD", "--venue", "coinbase", "--timeframe", "1h",
              "--batch-rows", "0"])
    assert e.value.code == 2
    assert "--batch-rows" in capsys.readouterr().err
