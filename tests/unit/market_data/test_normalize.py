"""Normalisers: real-shaped ccxt, yfinance and user inputs become raw frames the validator judges."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import polars as pl
import pytest

from trading_core.errors import InvalidInput
from trading_core.market_data.normalize import from_ccxt_ohlcv, from_yfinance_history, read_bar_file
from trading_core.market_data.validation import MALFORMED_COLUMN, validate_bars

NOW = datetime(2020, 1, 1, tzinfo=UTC)
CCXT = [  # binance BTC/USDT 1h, 2019-04-01
    [1554076800000, 4102.4, 4115.0, 4096.18, 4110.06, 712.43],
    [1554080400000, 4110.06, 4121.87, 4105.0, 4118.23, 655.9],
    [1554084000000, 4118.23, 4125.5, 4109.11, 4112.0, 598.01],
]


def yf_history(index_name: str = "Date", hours: int = 0, minutes: int = 0) -> pd.DataFrame:
    """The shape of ``yf.Ticker('^GSPC').history(auto_adjust=False)``: New York tz index."""
    idx = pd.DatetimeIndex([pd.Timestamp(2019, 3, d, hours, minutes, tz="America/New_York") for d in (8, 11, 12)],
                           name=index_name)
    return pd.DataFrame({
        "Open": [2730.1, 2747.6, 2787.3], "High": [2744.0, 2785.0, 2798.6], "Low": [2722.3, 2747.6, 2786.7],
        "Close": [2743.1, 2783.3, 2791.5], "Adj Close": [2743.1, 2783.3, 2791.5],
        "Volume": [3.49e9, 3.39e9, 3.55e9], "Dividends": [0.0] * 3, "Stock Splits": [0.0] * 3,
    }, index=idx)


def test_ccxt_rows_become_typed_columns_that_validate_clean() -> None:
    raw = from_ccxt_ohlcv(CCXT)
    assert raw.columns == ["ts", "open", "high", "low", "close", "volume"]
    assert raw.schema["ts"] == pl.Int64 and raw.schema["close"] == pl.Float64
    r = validate_bars(raw, timeframe="1h", now=NOW)
    assert r.ok and r.accepted.height == 3 and r.accepted["ts"][0] == datetime(2019, 4, 1, tzinfo=UTC)


def test_ccxt_string_values_and_short_rows_are_kept_for_the_validator() -> None:
    rows = [list(CCXT[0]), [*CCXT[1][:5]], [CCXT[2][0], "4118.23", "4125.5", "4109.11", "4,112.0", None]]
    raw = from_ccxt_ohlcv(rows)
    assert raw.height == 3 and raw[MALFORMED_COLUMN].to_list()[1].startswith("row of 5")
    r = validate_bars(raw, timeframe="1h", now=NOW)
    assert {i.rule for i in r.issues} >= {"row.malformed", "dtype.unparseable_value"}


def test_ccxt_nan_and_empty_payload() -> None:
    raw = from_ccxt_ohlcv([[*CCXT[0][:4], math.nan, 1.0]])
    assert math.isnan(raw["close"][0])
    assert from_ccxt_ohlcv([]).height == 0
    assert validate_bars(from_ccxt_ohlcv([]), timeframe="1h", now=NOW).batch_rejected


@pytest.mark.parametrize("hours,minutes", [(0, 0), (9, 30)])
def test_yfinance_daily_bars_become_the_trading_date_at_utc_midnight(hours: int, minutes: int) -> None:
    raw = from_yfinance_history(yf_history(hours=hours, minutes=minutes))
    assert raw.columns == ["ts", "open", "high", "low", "close", "volume"]  # actions left out
    assert raw["ts"].to_list() == [datetime(2019, 3, d, tzinfo=UTC) for d in (8, 11, 12)]  # across the DST switch
    r = validate_bars(raw, timeframe="1d", now=NOW, calendar="equity")
    assert r.ok and r.issues == [] and r.accepted.height == 3


def test_yfinance_intraday_bars_keep_their_exact_utc_open() -> None:
    raw = from_yfinance_history(yf_history("Datetime", 9, 30))
    assert raw["ts"][0] == datetime(2019, 3, 8, 14, 30, tzinfo=UTC)
    assert raw["ts"][1] == datetime(2019, 3, 11, 13, 30, tzinfo=UTC)  # EDT from 10 March


def test_yfinance_download_multiindex_columns_and_nan_action_row() -> None:
    pdf = yf_history()
    pdf.loc[pdf.index[1], ["Open", "High", "Low", "Close", "Volume"]] = float("nan")
    pdf.columns = pd.MultiIndex.from_tuples([(c, "^GSPC") for c in pdf.columns], names=["Price", "Ticker"])
    raw = from_yfinance_history(pdf)
    r = validate_bars(raw, timeframe="1d", now=NOW, calendar="equity")
    assert r.quarantined["rule"].to_list() == ["ohlcv.non_finite"] and r.accepted.height == 2


def test_yfinance_frame_of_two_tickers_is_refused() -> None:
    pdf = yf_history()
    pdf = pd.concat({"A": pdf, "B": pdf}, axis=1).swaplevel(axis=1)
    with pytest.raises(InvalidInput, match="one ticker"):
        from_yfinance_history(pdf)


def test_yfinance_naive_index_reaches_the_validator_as_naive_and_is_rejected() -> None:
    pdf = yf_history()
    pdf.index = pdf.index.tz_localize(None)
    r = validate_bars(from_yfinance_history(pdf), timeframe="1d", now=NOW)
    assert r.batch_rejected and r.issues[0].rule == "ts.tz_naive"


def test_csv_is_read_as_text_with_names_as_written(tmp_path: Path) -> None:
    p = tmp_path / "bars.csv"
    p.write_text("Timestamp,Open,High,Low,Close,Volume\n2019-04-01T00:00:00Z,4102.4,4115,4096.18,4110.06,712.43\n")
    raw = read_bar_file(p)
    assert raw.columns[0] == "Timestamp" and all(dt == pl.Utf8 for dt in raw.dtypes)
    r = validate_bars(raw, timeframe="1h", now=NOW)
    assert r.accepted.height == 1 and [i.rule for i in r.issues] == ["schema.column_alias"]


def test_yfinance_csv_dates_in_new_york_time_become_utc_midnight(tmp_path: Path) -> None:
    p = tmp_path / "spx.csv"
    p.write_text("Date,Open,High,Low,Close,Adj Close,Volume\n"
                 "2019-03-08 00:00:00-05:00,2730.1,2744.0,2722.3,2743.1,2743.1,3490000000\n"
                 "2019-03-11 09:30:00-04:00,2747.6,2785.0,2747.6,2783.3,2783.3,3390000000\n")
    raw = read_bar_file(p)
    assert raw["Date"].to_list() == ["2019-03-08T00:00:00Z", "2019-03-11T00:00:00Z"]
    assert validate_bars(raw, timeframe="1d", now=NOW, calendar="equity").accepted.height == 2


def test_utc_date_column_is_left_alone_so_misalignment_stays_visible(tmp_path: Path) -> None:
    p = tmp_path / "d.csv"
    p.write_text("date,open,high,low,close,volume\n2019-03-08T13:00:00+00:00,1,2,0.5,1.5,10\n")
    assert read_bar_file(p)["date"][0] == "2019-03-08T13:00:00+00:00"


def test_ragged_csv_rows_are_kept_and_marked_malformed(tmp_path: Path) -> None:
    p = tmp_path / "r.csv"
    p.write_text("ts,open,high,low,close,volume\n2019-04-01T00:00:00Z,1,2,0.5,1.5,10\n"
                 "2019-04-01T01:00:00Z,1,2,0.5,1,234.5,10\n")
    raw = read_bar_file(p)
    assert raw.height == 2 and raw[MALFORMED_COLUMN].to_list()[0] is None
    assert "7 fields" in raw[MALFORMED_COLUMN][1]


def test_parquet_keeps_its_types_and_json_reads_ccxt_lists(tmp_path: Path) -> None:
    df = from_ccxt_ohlcv(CCXT).with_columns(pl.col("ts").cast(pl.Datetime("ms", "UTC")))
    df.write_parquet(tmp_path / "b.parquet")
    assert read_bar_file(tmp_path / "b.parquet").equals(df)
    (tmp_path / "b.json").write_text(str(CCXT))
    assert read_bar_file(tmp_path / "b.json").equals(from_ccxt_ohlcv(CCXT))


def test_empty_csv_file_is_an_empty_payload_not_an_error(tmp_path: Path) -> None:
    (tmp_path / "e.csv").write_bytes(b"")
    assert validate_bars(read_bar_file(tmp_path / "e.csv"), timeframe="1h", now=NOW).issues[0].rule == "payload.empty"


@pytest.mark.parametrize("name,content", [
    ("x.parquet", b"PAR1 not really"), ("x.json", b"{not json"), ("x.json", b'{"error": "rate limited"}'),
    ("x.csv", b"\x00\x01\x02binary"), ("x.xlsx", b"PK"),
])
def test_unreadable_files_raise_invalid_input_naming_the_file(tmp_path: Path, name: str, content: bytes) -> None:
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(InvalidInput, match=name) as e:
        read_bar_file(p)
    assert "\n" not in str(e.value)


def test_missing_file_raises_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no such file"):
        read_bar_file(tmp_path / "nope.csv")
