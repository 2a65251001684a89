"""One test per rule of the validation contract, on tiny hand-made frames."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pandas as pd
import polars as pl
import pytest

from trading_core.config import ValidationConfig
from trading_core.errors import InvalidInput
from trading_core.market_data.validation import (
    MALFORMED_COLUMN,
    RULES,
    Action,
    ValidationReport,
    validate_bars,
)

T0 = datetime(2019, 4, 1, tzinfo=UTC)
H = timedelta(hours=1)
NOW = T0 + timedelta(days=30)


def bars(n: int = 12, step: timedelta = H, start: datetime = T0, price: float = 4100.0) -> pl.DataFrame:
    """Clean, gently rising bars: ts Datetime(ms, UTC), consistent OHLC, positive volume."""
    c = [price + 5.0 * i for i in range(n)]
    o = [price - 5.0, *c[:-1]]
    return pl.DataFrame({
        "ts": [start + i * step for i in range(n)],
        "open": o, "high": [max(a, b) + 3 for a, b in zip(o, c, strict=True)],
        "low": [min(a, b) - 3 for a, b in zip(o, c, strict=True)], "close": c,
        "volume": [10.0 + i for i in range(n)],
    }).with_columns(pl.col("ts").dt.cast_time_unit("ms"))


def text(df: pl.DataFrame) -> pl.DataFrame:
    """As a CSV reader with infer_schema=False would give it: every cell a string."""
    return df.with_columns(pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%SZ"), pl.exclude("ts").cast(pl.Utf8))


def setv(df: pl.DataFrame, row: int, **values: object) -> pl.DataFrame:
    out = df.to_dicts()
    out[row].update(values)
    return pl.DataFrame(out, schema=df.schema)


def run(df: pl.DataFrame | pd.DataFrame, **kw: object) -> ValidationReport:
    kw.setdefault("timeframe", "1h")
    kw.setdefault("now", NOW)
    return validate_bars(df, **kw)  # type: ignore[arg-type]


def only(report: ValidationReport, rule: str) -> None:
    issue = report.issue(rule)
    assert issue is not None, f"{rule} not raised: {[i.rule for i in report.issues]}"
    assert issue.action is RULES[rule].action


def quarantined_as(report: ValidationReport, rule: str, rows: list[int]) -> None:
    only(report, rule)
    q = report.quarantined.filter(pl.col("rule") == rule)
    assert sorted(q["row_id"].to_list()) == rows
    assert not set(rows) & set(report.accepted["row_id"].to_list())


# ---------------------------------------------------------------- clean input
def test_clean_batch_is_accepted_whole_with_no_issues() -> None:
    r = run(bars())
    assert r.ok and r.issues == [] and r.accepted.height == 12 and not r.batch_rejected
    assert r.accepted.columns == ["ts", "open", "high", "low", "close", "volume", "row_id"]
    assert r.accepted.schema["ts"] == pl.Datetime("ms", "UTC")


def test_clean_text_batch_parses_to_the_same_bars_as_typed() -> None:
    assert run(text(bars())).accepted.equals(run(bars()).accepted)


def test_every_registered_rule_has_a_dotted_code_and_an_action() -> None:
    for code, rule in RULES.items():
        assert code == rule.code and "." in code and isinstance(rule.action, Action) and rule.description


# ---------------------------------------------------------------- batch rejections
def test_empty_payload_rejects_the_batch() -> None:
    r = run(bars().head(0))
    assert r.batch_rejected and r.issues[0].rule == "payload.empty" and r.accepted.height == 0


def test_missing_volume_column_rejects_the_batch_and_names_it() -> None:
    r = run(bars().drop("volume"))
    only(r, "schema.missing_column")
    assert r.batch_rejected and "volume" in (r.reject_reason or "")
    assert r.counts["rejected"] == 12


def test_two_columns_mapping_to_close_reject_the_batch_as_ambiguous() -> None:
    r = run(bars().with_columns(Close=pl.col("close")))
    only(r, "schema.ambiguous_column")
    assert r.batch_rejected


def test_semicolon_header_rejects_the_batch_as_wrong_delimiter() -> None:
    r = run(pl.DataFrame({"ts;open;high;low;close;volume": ["1554076800000;1;2;0.5;1;3"]}))
    only(r, "schema.wrong_delimiter")
    assert "';'" in (r.reject_reason or "")


def test_whole_column_of_non_numeric_prices_rejects_the_batch() -> None:
    r = run(text(bars()).with_columns(close=pl.lit("n/a")))
    only(r, "dtype.unparseable_column")
    assert r.batch_rejected


def test_boolean_volume_column_rejects_the_batch() -> None:
    only(run(bars().with_columns(volume=pl.lit(True))), "dtype.unparseable_column")


def test_epoch_seconds_reject_the_batch_with_a_seconds_message() -> None:
    r = run(bars().with_columns(pl.col("ts").dt.epoch("s")))
    only(r, "ts.epoch_seconds")
    assert "seconds" in (r.reject_reason or "") and "expected milliseconds" in (r.reject_reason or "")


def test_epoch_seconds_as_text_are_rejected_too() -> None:
    only(run(text(bars()).with_columns(ts=pl.Series([str(1554076800 + 3600 * i) for i in range(12)]))),
         "ts.epoch_seconds")


def test_epoch_microseconds_reject_the_batch() -> None:
    only(run(bars().with_columns(pl.col("ts").dt.epoch("us"))), "ts.epoch_unit")


def test_tz_naive_iso_strings_reject_the_batch_telling_to_add_an_offset() -> None:
    df = text(bars()).with_columns(pl.col("ts").str.replace("Z", "").str.replace("T", " "))
    r = run(df)
    only(r, "ts.tz_naive")
    assert "'Z'" in (r.reject_reason or "") and "+00:00" in (r.reject_reason or "")


def test_tz_naive_datetime_dtype_rejects_the_batch() -> None:
    only(run(bars().with_columns(pl.col("ts").dt.replace_time_zone(None))), "ts.tz_naive")


# ---------------------------------------------------------------- row quarantines
def test_malformed_row_marked_by_a_normaliser_is_quarantined() -> None:
    df = bars().with_columns(pl.Series(MALFORMED_COLUMN, [None] * 5 + ["7 fields, header has 6"] + [None] * 6))
    quarantined_as(run(df), "row.malformed", [5])


def test_unparseable_ts_row_is_quarantined_and_the_rest_accepted() -> None:
    df = text(bars()).with_columns(ts=pl.when(pl.int_range(12) == 3).then(pl.lit("yesterday")).otherwise("ts"))
    r = run(df)
    quarantined_as(r, "ts.unparseable", [3])
    assert r.accepted.height == 11


def test_iso_with_offset_and_epoch_ms_text_both_parse_to_utc() -> None:
    df = text(bars(2)).with_columns(ts=pl.Series(["2019-04-01T02:00:00+02:00", "1554080400000"]))
    r = run(df)
    assert r.accepted["ts"].to_list() == [T0, T0 + H]


def test_price_string_with_thousands_separator_is_quarantined_not_guessed() -> None:
    r = run(setv(text(bars()), 4, close="4,123.5"))
    quarantined_as(r, "dtype.unparseable_value", [4])
    assert "4,123.5" in r.quarantined["detail"][0] and "4,123.5" in r.quarantined["raw"][0]


@pytest.mark.parametrize("col,value", [("close", math.nan), ("high", math.inf), ("volume", None)])
def test_nan_inf_or_missing_value_row_is_quarantined(col: str, value: float | None) -> None:
    quarantined_as(run(setv(bars(), 6, **{col: value})), "ohlcv.non_finite", [6])


@pytest.mark.parametrize("col", ["open", "close", "low"])
def test_zero_or_negative_price_row_is_quarantined(col: str) -> None:
    quarantined_as(run(setv(bars(), 2, **{col: 0.0 if col != "low" else -1.0})), "ohlc.non_positive", [2])


def test_negative_volume_row_is_quarantined() -> None:
    quarantined_as(run(setv(bars(), 7, volume=-1.0)), "volume.negative", [7])


def test_high_below_low_row_is_quarantined_with_its_rule_code() -> None:
    df = bars()
    row = df.row(5, named=True)
    r = run(setv(df, 5, high=row["low"], low=row["high"]))
    quarantined_as(r, "ohlc.high_below_low", [5])


def test_open_above_high_is_quarantined_never_clipped() -> None:
    df = bars()
    r = run(setv(df, 3, open=df["high"][3] + 1))
    quarantined_as(r, "ohlc.open_outside_range", [3])
    assert r.quarantined["open"][0] == df["high"][3] + 1


def test_close_below_low_is_quarantined() -> None:
    df = bars()
    quarantined_as(run(setv(df, 8, close=df["low"][8] - 0.5)), "ohlc.close_outside_range", [8])


def test_misaligned_ts_is_quarantined() -> None:
    df = bars().with_columns(pl.when(pl.int_range(12) == 4).then(pl.col("ts") + timedelta(minutes=17))
                             .otherwise("ts").alias("ts"))
    quarantined_as(run(df), "ts.misaligned", [4])


def test_daily_bar_not_at_utc_midnight_is_quarantined() -> None:
    df = bars(5, step=timedelta(days=1), start=T0 + timedelta(hours=13))
    r = run(df, timeframe="1d")
    quarantined_as(r, "ts.misaligned", [0, 1, 2, 3, 4])


def test_equity_hourly_bars_on_the_half_hour_are_aligned() -> None:
    df = bars(6, start=T0 + timedelta(hours=13, minutes=30))
    assert run(df, calendar="equity").accepted.height == 6
    assert run(df, calendar="crypto").accepted.height == 0


def test_bar_beyond_the_future_tolerance_is_quarantined() -> None:
    df = bars()
    now = df["ts"][5] + timedelta(minutes=30)  # 0..4 closed, 5 open, 6 within tolerance, 7.. future
    r = run(df, now=now)
    quarantined_as(r, "ts.future", [7, 8, 9, 10, 11])
    assert sorted(r.dropped["row_id"].to_list()) == [5, 6]


def test_still_open_last_candle_is_dropped() -> None:
    df = bars()
    r = run(df, now=df["ts"][-1] + timedelta(minutes=20))
    only(r, "ts.open_candle")
    assert r.dropped["row_id"].to_list() == [11] and r.accepted.height == 11 and r.ok


def test_still_open_candle_in_a_batch_declared_complete_is_quarantined() -> None:
    df = bars()
    r = run(df, now=df["ts"][-1] + timedelta(minutes=20), expect_complete_last=True)
    quarantined_as(r, "ts.open_candle_unexpected", [11])


def test_identical_duplicate_ts_keeps_one_copy_and_counts_the_rest() -> None:
    df = pl.concat([bars(), bars()[3:5]])
    r = run(df)
    only(r, "ts.duplicate_identical")
    assert r.issue("ts.duplicate_identical").count == 2  # type: ignore[union-attr]
    assert sorted(r.dropped["row_id"].to_list()) == [12, 13] and r.accepted.height == 12


def test_conflicting_duplicate_ts_quarantines_every_copy() -> None:
    df = bars()
    dup = setv(df[3:4], 0, close=df["close"][3] - 1.0)
    r = run(pl.concat([df, dup]))
    quarantined_as(r, "ts.duplicate_conflict", [3, 12])


def test_unsorted_rows_are_sorted_and_reported_as_a_repair() -> None:
    df = bars()
    shuffled = pl.concat([df[6:], df[:6]])
    r = run(shuffled)
    only(r, "ts.unsorted")
    assert r.accepted["ts"].to_list() == df["ts"].to_list() and r.counts["repaired"] == 6


def _walk(n: int, start: float = 5000.0) -> pl.DataFrame:
    """Bars with a realistic zig-zag so the rolling MAD is not zero."""
    closes = [start * (1 + 0.003 * (-1) ** i + 0.0005 * i) for i in range(n)]
    df = bars(n)
    return df.with_columns(close=pl.Series(closes), open=pl.Series([closes[0], *closes[:-1]])).with_columns(
        high=pl.max_horizontal("open", "close") * 1.001, low=pl.min_horizontal("open", "close") * 0.999)


def _scale(df: pl.DataFrame, rows: slice, k: float) -> pl.DataFrame:
    idx = pl.int_range(df.height)
    inside = (idx >= (rows.start or 0)) & (idx < (rows.stop or df.height))
    return df.with_columns([pl.when(inside).then(pl.col(c) * k).otherwise(pl.col(c)).alias(c)
                            for c in ("open", "high", "low", "close")])


@pytest.mark.parametrize("k", [1.5, 100.0, 0.5])
def test_single_bar_spike_that_reverses_is_quarantined(k: float) -> None:
    r = run(_scale(_walk(60), slice(30, 31), k))
    quarantined_as(r, "price.spike", [30])
    assert r.issue("price.step_100x") is None and r.issue("price.split_step") is None


def test_large_move_that_stays_is_not_a_spike() -> None:
    r = run(_scale(_walk(60), slice(30, None), 1.3))
    assert r.issue("price.spike") is None and r.accepted.height == 60


def test_hundredfold_step_that_stays_is_flagged_not_changed() -> None:
    df = _scale(_walk(60), slice(30, None), 0.01)
    r = run(df)
    only(r, "price.step_100x")
    assert r.accepted.height == 60 and r.accepted["close"].to_list() == df["close"].to_list()


@pytest.mark.parametrize("k", [2.0, 4.0])
def test_unapplied_split_step_is_flagged(k: float) -> None:
    r = run(_scale(_walk(60), slice(None, 30), k))
    only(r, "price.split_step")
    assert r.accepted.height == 60


# ---------------------------------------------------------------- flags
def test_column_aliases_are_accepted_and_reported() -> None:
    df = bars().rename({"ts": "Timestamp", "open": "Open", "volume": "Vol"})
    r = run(df)
    only(r, "schema.column_alias")
    assert r.accepted.height == 12 and "Timestamp" in r.issue("schema.column_alias").detail  # type: ignore[union-attr]
    assert "Open" not in r.issue("schema.column_alias").detail  # type: ignore[union-attr] - case is not an alias


def test_extra_columns_are_ignored_and_reported() -> None:
    r = run(bars().with_columns(symbol=pl.lit("BTC/USDT"), trades=pl.lit(3)))
    only(r, "schema.extra_column")
    assert r.accepted.height == 12 and r.ok


def test_missing_bars_are_flagged_with_count_and_first_gap() -> None:
    df = pl.concat([bars()[:4], bars()[7:]])
    r = run(df)
    only(r, "gap.missing_bars")
    g = r.issue("gap.missing_bars")
    assert g.count == 3 and g.first_ts == T0 + 4 * H and g.last_ts == T0 + 6 * H  # type: ignore[union-attr]
    assert r.accepted.height == 9  # never synthesised


def test_equity_daily_weekends_and_short_holidays_are_not_gaps_but_long_runs_are() -> None:
    days = [datetime(2019, 1, d, tzinfo=UTC) for d in (2, 3, 4, 7, 8, 9, 10, 11, 14, 15, 22, 23, 24)]
    df = bars(len(days), step=timedelta(days=1)).with_columns(
        ts=pl.Series(days).dt.cast_time_unit("ms"))
    crypto = run(df, timeframe="1d")
    equity = run(df, timeframe="1d", calendar="equity")
    assert crypto.issue("gap.missing_bars").count > 4  # type: ignore[union-attr]
    assert equity.issue("gap.missing_bars").count == 4  # type: ignore[union-attr]  # Jan 16..21
    short = df.filter(pl.col("ts") != datetime(2019, 1, 8, tzinfo=UTC))
    assert run(short[:9], timeframe="1d", calendar="equity").issue("gap.missing_bars") is None


def test_zero_volume_bars_are_accepted_and_flagged() -> None:
    r = run(setv(setv(bars(), 2, volume=0.0), 3, volume=0.0))
    only(r, "volume.zero")
    assert r.issue("volume.zero").count == 2 and r.accepted.height == 12  # type: ignore[union-attr]


def test_stale_feed_run_of_identical_zero_volume_bars_is_flagged() -> None:
    df = bars(40)
    c = df["close"][9]
    df = df.with_columns([pl.when(pl.int_range(40).is_between(10, 34)).then(pl.lit(v)).otherwise(pl.col(k)).alias(k)
                          for k, v in (("open", c), ("high", c), ("low", c), ("close", c), ("volume", 0.0))])
    r = run(df, config=ValidationConfig(stale_bars=24))
    only(r, "volume.stale_feed")
    assert r.issue("volume.stale_feed").count == 25 and r.accepted.height == 40  # type: ignore[union-attr]


# ---------------------------------------------------------------- contract details
def test_pandas_input_with_yfinance_datetime_index_is_accepted() -> None:
    pdf = bars().to_pandas().set_index("ts")
    r = run(pdf)
    assert r.accepted.height == 12 and r.issues == []


def test_quarantine_frame_keeps_parsed_values_and_the_raw_row_as_json() -> None:
    r = run(setv(text(bars()), 4, close="abc"))
    q = r.quarantined
    assert q.schema["ts"] == pl.Datetime("ms", "UTC") and q.schema["raw"] == pl.Utf8
    assert q["close"][0] is None and q["open"][0] == float(bars()["open"][4])
    assert '"close":"abc"' in q["raw"][0]


def test_unknown_timeframe_is_a_programmer_error() -> None:
    with pytest.raises(InvalidInput):
        run(bars(), timeframe="7m")


def test_naive_now_is_a_programmer_error() -> None:
    with pytest.raises(InvalidInput):
        run(bars(), now=datetime(2020, 1, 1))
