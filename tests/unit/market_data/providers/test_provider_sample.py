"""The offline default serves real history straight from the downloaded package archives."""

from __future__ import annotations

import shutil
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from provider_fakes import FAR_FUTURE, FAR_PAST

from trading_core.errors import InvalidInput, ProviderError
from trading_core.market_data.providers import (
    MarketDataProvider,
    SampleDataMissing,
    SampleProvider,
    UnknownSymbol,
    UnsupportedTimeframe,
)
from trading_core.market_data.providers.sample import ARCH_SP500, COVERAGE, DEFAULT_SAMPLE_DIR, available
from trading_core.market_data.schema import OHLCV_SCHEMA


def d(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


def test_sample_provider_satisfies_the_provider_protocol(sample_provider: SampleProvider) -> None:
    assert isinstance(sample_provider, MarketDataProvider)
    assert sample_provider.name == "sample"


def test_gspc_close_on_the_worst_day_of_2008_is_the_real_one(sample_provider: SampleProvider) -> None:
    df = sample_provider.fetch_ohlcv("yahoo", "^GSPC", "1d", d(2008, 10, 15), d(2008, 10, 16))
    assert df.height == 1
    assert df["ts"][0] == d(2008, 10, 15)  # daily bars stamped 00:00 UTC of the trading date
    assert df["close"][0] == pytest.approx(907.84, abs=0.005)
    assert df["volume"][0] > 0


def test_gspc_week_of_2008_10_06_has_the_documented_closes(sample_provider: SampleProvider) -> None:
    df = sample_provider.fetch_ohlcv("yahoo", "^GSPC", "1d", d(2008, 10, 6), d(2008, 10, 11))
    assert [round(c, 2) for c in df["close"]] == [1056.89, 996.23, 984.94, 909.92, 899.22]


def test_every_series_has_the_canonical_schema_sorted_unique_and_its_documented_range(
    sample_provider: SampleProvider,
) -> None:
    expected = {
        ("yahoo", "^GSPC", "1d"): (5031, d(1999, 1, 4), d(2018, 12, 31)),
        ("yahoo", "^IXIC", "1d"): (5031, d(1999, 1, 4), d(2018, 12, 31)),
        ("yahoo", "^VIX", "1d"): (8695, d(1990, 1, 2), d(2024, 6, 20)),
        ("coinbase", "BTC/USD", "1h"): (20111, d(2017, 7, 1, 11), d(2019, 10, 17, 9)),
        ("coinbase", "BTC/USD", "1d"): (1769, d(2014, 12, 1), d(2019, 10, 16)),
        ("coinbase", "BTC/USD", "4h"): (5027, d(2017, 7, 1, 12), d(2019, 10, 17, 4)),
    }
    assert set(available()) == set(expected)
    for (venue, symbol, tf), (rows, first, last) in expected.items():
        df = sample_provider.fetch_ohlcv(venue, symbol, tf, FAR_PAST, FAR_FUTURE)
        assert df.schema == pl.Schema(OHLCV_SCHEMA), (symbol, tf)
        assert (df.height, df["ts"][0], df["ts"][-1]) == (rows, first, last), (symbol, tf)
        assert df["ts"].is_sorted() and df["ts"].n_unique() == df.height
        assert df.null_count().sum_horizontal()[0] == 0
        # The static coverage table (what the Dagster definitions bound offline partitions by)
        # says exactly what the archives hold, without reading them.
        assert COVERAGE[(venue, symbol, tf)] == (first, last) == sample_provider.coverage(venue, symbol, tf)
    assert set(COVERAGE) == set(expected)
    assert sample_provider.coverage("yahoo", "^DJI", "1d") is None


def test_btc_hourly_last_bar_is_2019_10_17_0900_close_8035_88(btc_1h: pl.DataFrame) -> None:
    last = btc_1h.row(-1, named=True)
    assert last["ts"] == d(2019, 10, 17, 9)
    assert (last["open"], last["high"], last["low"], last["close"]) == (8051.0, 8056.83, 8021.23, 8035.88)
    assert last["volume"] == 61.25  # volume_btc: base-currency volume, not the USD turnover


def test_btc_hourly_noon_and_midnight_parse_from_the_12_hour_clock(sample_provider: SampleProvider) -> None:
    df = sample_provider.fetch_ohlcv("coinbase", "BTC/USD", "1h", d(2017, 7, 1, 11), d(2017, 7, 2, 1))
    assert df["ts"].to_list() == [d(2017, 7, 1, h) for h in range(11, 24)] + [d(2017, 7, 2, 0)]
    assert df["close"][1] == 2488.43  # "2017-07-01 12-PM" is noon, not midnight


def test_btc_daily_drops_the_partial_bar_of_the_day_the_file_was_created(
    sample_provider: SampleProvider,
) -> None:
    df = sample_provider.fetch_ohlcv("coinbase", "BTC/USD", "1d", d(2019, 10, 15), FAR_FUTURE)
    assert df["ts"].to_list() == [d(2019, 10, 15), d(2019, 10, 16)]


def test_crypto_4h_is_resampled_from_complete_hourly_buckets(
    sample_provider: SampleProvider, btc_1h: pl.DataFrame,
) -> None:
    four = sample_provider.fetch_ohlcv("coinbase", "BTC/USD", "4h", d(2019, 10, 16), d(2019, 10, 16, 4))
    hours = btc_1h.filter(pl.col("ts").is_between(d(2019, 10, 16), d(2019, 10, 16, 3)))
    assert four.height == 1 and hours.height == 4
    row = four.row(0, named=True)
    assert row["open"] == hours["open"][0] and row["close"] == hours["close"][-1]
    assert row["high"] == hours["high"].max() and row["low"] == hours["low"].min()
    assert row["volume"] == pytest.approx(hours["volume"].sum())


def test_vix_has_ohlc_and_zero_volume(sample_provider: SampleProvider) -> None:
    df = sample_provider.fetch_ohlcv("yahoo", "^VIX", "1d", d(2008, 11, 20), d(2008, 11, 21))
    assert df["close"][0] == 80.86 and df["volume"][0] == 0.0


def test_range_is_half_open_start_included_end_excluded(sample_provider: SampleProvider) -> None:
    df = sample_provider.fetch_ohlcv("coinbase", "BTC/USD", "1h", d(2019, 10, 17, 5), d(2019, 10, 17, 8))
    assert df["ts"].to_list() == [d(2019, 10, 17, 5), d(2019, 10, 17, 6), d(2019, 10, 17, 7)]


def test_empty_or_out_of_coverage_range_returns_no_rows(sample_provider: SampleProvider) -> None:
    assert sample_provider.fetch_ohlcv("yahoo", "^GSPC", "1d", d(2008, 10, 16), d(2008, 10, 16)).height == 0
    assert sample_provider.fetch_ohlcv("yahoo", "^GSPC", "1d", d(2030, 1, 1), d(2031, 1, 1)).height == 0
    assert sample_provider.fetch_ohlcv("yahoo", "^GSPC", "1d", d(2008, 10, 18), d(2008, 10, 20)).height == 0


def test_unknown_symbol_fails_at_once_naming_it(sample_provider: SampleProvider) -> None:
    with pytest.raises(UnknownSymbol, match=r"'ETH/USD'"):
        sample_provider.fetch_ohlcv("coinbase", "ETH/USD", "1h", d(2019, 1, 1), d(2019, 1, 2))
    with pytest.raises(ProviderError, match=r"'\^GSPC'.*'binance'"):
        sample_provider.fetch_ohlcv("binance", "^GSPC", "1d", d(2019, 1, 1), d(2019, 1, 2))


def test_unsupported_timeframe_is_a_provider_error(sample_provider: SampleProvider) -> None:
    assert not sample_provider.supports("yahoo", "^GSPC", "1h")
    with pytest.raises(UnsupportedTimeframe, match="1h"):
        sample_provider.fetch_ohlcv("yahoo", "^GSPC", "1h", d(2008, 1, 1), d(2008, 1, 2))


def test_malformed_symbol_and_naive_datetimes_are_invalid_input(sample_provider: SampleProvider) -> None:
    with pytest.raises(InvalidInput):
        sample_provider.fetch_ohlcv("yahoo", "../etc", "1d", d(2008, 1, 1), d(2008, 1, 2))
    with pytest.raises(InvalidInput, match="timezone-aware"):
        sample_provider.fetch_ohlcv("yahoo", "^GSPC", "1d", datetime(2008, 1, 1), d(2008, 1, 2))


def test_missing_archive_tells_the_user_to_run_make_install(tmp_path: Path) -> None:
    with pytest.raises(SampleDataMissing, match="make install"):
        SampleProvider(tmp_path).fetch_ohlcv("yahoo", "^GSPC", "1d", d(2008, 1, 1), d(2008, 2, 1))


def test_member_with_wrong_sha256_is_refused(tmp_path: Path) -> None:
    """A different package version must fail loudly, not serve other numbers."""
    src = next(DEFAULT_SAMPLE_DIR.glob(ARCH_SP500.archive_glob))
    fake = tmp_path / src.name
    with zipfile.ZipFile(fake, "w") as z:
        z.writestr(ARCH_SP500.path, b"Date,Open,High,Low,Close,Adj Close,Volume\n")
    with pytest.raises(SampleDataMissing, match="sha256"):
        SampleProvider(tmp_path).fetch_ohlcv("yahoo", "^GSPC", "1d", d(2008, 1, 1), d(2008, 2, 1))


def test_parsed_frames_are_cached_per_process(tmp_path: Path) -> None:
    """Second read of a copied archive dir does not reopen the archive (lru_cache on the parse)."""
    src = next(DEFAULT_SAMPLE_DIR.glob(ARCH_SP500.archive_glob))
    shutil.copy(src, tmp_path / src.name)
    p = SampleProvider(tmp_path)
    first = p.fetch_ohlcv("yahoo", "^GSPC", "1d", d(2008, 1, 1), d(2009, 1, 1))
    (tmp_path / src.name).unlink()
    again = p.fetch_ohlcv("yahoo", "^GSPC", "1d", d(2008, 1, 1), d(2009, 1, 1))
    assert again.equals(first) and again.height == 253
