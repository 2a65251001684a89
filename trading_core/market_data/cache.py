"""On-disk cache of raw provider responses, so a re-run does not download the same bars again.

Why cache *raw* responses (before validation): the validator's rules and thresholds may change,
and a re-run must re-judge the same bytes the venue sent, not a repaired copy.

Layout: ``<cache_dir>/<provider>/<sha256 of the request key>.parquet``; the key is (provider,
venue, symbol, timeframe, start, end), so nothing from the request reaches a path but a hash.
Writes go to a temporary file in the same directory and are swapped in with ``os.replace``: a
crash leaves the old file or none, never half a file. A range that includes the still-open current
bar (end after that bar's open time) is never cached: its last bar is still changing. Empty
answers are not cached either: they are cheap to ask again and may be a venue's hiccup.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from ..symbols import check_venue
from ..timeframes import timeframe_ms
from .providers.base import MarketDataProvider, check_request, to_ms

Now = datetime | Callable[[], datetime] | None


def cache_key(provider: str, venue: str, symbol: str, timeframe: str, start: datetime,
              end: datetime) -> str:
    """Stable hex key of a request (times normalised to UTC epoch ms)."""
    payload = json.dumps([provider, venue, symbol, timeframe, to_ms(start), to_ms(end)])
    return hashlib.sha256(payload.encode()).hexdigest()


def current_bar_open(now: datetime, timeframe: str) -> datetime:
    """Open time of the bar that contains ``now`` (epoch-aligned, as venues align bars)."""
    tf = timeframe_ms(timeframe)
    ms = to_ms(now) // tf * tf
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


class CachedProvider:
    """Wraps a provider; serves a repeated request for a closed range from disk.

    ``name`` is the inner provider's, so the warehouse records the real source; ``last_from_cache``
    says whether the last answer came from disk. ``now`` (a datetime or a callable returning one,
    default: the wall clock) decides which bar is still open.
    """

    def __init__(self, inner: MarketDataProvider, cache_dir: Path | str, *, now: Now = None) -> None:
        self.inner = inner
        self.name = inner.name
        check_venue(self.name)  # becomes a directory name: code-controlled, but checked anyway
        self.dir = Path(cache_dir) / self.name
        self._now = now
        self.last_from_cache = False
        self.hits = 0
        self.misses = 0

    def supports(self, venue: str, symbol: str, timeframe: str) -> bool:
        return self.inner.supports(venue, symbol, timeframe)

    def now(self) -> datetime:
        n = self._now() if callable(self._now) else self._now
        return n if n is not None else datetime.now(UTC)

    def path_for(self, venue: str, symbol: str, timeframe: str, start: datetime, end: datetime) -> Path:
        return self.dir / f"{cache_key(self.name, venue, symbol, timeframe, start, end)}.parquet"

    def cacheable(self, timeframe: str, end: datetime) -> bool:
        """Only ranges that end at or before the open of the bar still forming."""
        return end <= current_bar_open(self.now(), timeframe)

    def fetch_ohlcv(self, venue: str, symbol: str, timeframe: str, start: datetime,
                    end: datetime) -> pl.DataFrame:
        req = check_request(venue, symbol, timeframe, start, end)
        self.last_from_cache = False
        use_cache = self.cacheable(timeframe, req.end)
        path = self.path_for(venue, symbol, timeframe, req.start, req.end)
        if use_cache and path.exists():
            try:
                df = pl.read_parquet(path)
            except Exception:  # a damaged file is only a cache miss; it is rewritten below
                path.unlink(missing_ok=True)
            else:
                self.hits += 1
                self.last_from_cache = True
                return df
        self.misses += 1
        df = self.inner.fetch_ohlcv(venue, symbol, timeframe, start, end)
        if use_cache and df.height > 0:
            _write_atomic(df, path)
        return df


def _write_atomic(df: pl.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".parquet", dir=path.parent)
    os.close(fd)
    try:
        df.write_parquet(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
