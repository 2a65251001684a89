"""Features and regime labels in ``features.indicators`` / ``features.regimes`` (DDL: 0003).

One write path: ``write_features`` deletes the recomputed window of a series and inserts the new
rows of BOTH tables in ONE transaction, so features and labels never disagree and a crash leaves
the previous state intact. Values are bound parameters or registered frames; the column list comes
from ``trading_core.features.compute.FEATURE_COLUMNS``, never from input.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import polars as pl

from ..features.compute import FEATURE_COLUMNS
from ..features.regimes import RegimeState
from ..symbols import check_symbol, check_venue
from ..timeframes import timeframe_ms
from .connection import transaction

__all__ = [
    "FeatureCoverage",
    "FeatureWrite",
    "StoredState",
    "bar_ts_before",
    "feature_coverage",
    "read_features",
    "read_regimes",
    "stored_state",
    "write_features",
]

_KEY = "venue = $venue AND symbol = $symbol AND timeframe = $timeframe"
_COLS = ", ".join(FEATURE_COLUMNS)


def _keys(venue: str, symbol: str, timeframe: str) -> dict[str, Any]:
    check_venue(venue)
    check_symbol(symbol)
    timeframe_ms(timeframe)
    return {"venue": venue, "symbol": symbol, "timeframe": timeframe}


@dataclass(frozen=True)
class FeatureWrite:
    features: int
    regimes: int


@dataclass(frozen=True)
class StoredState:
    """What is stored for a series: the last feature row and its version, the regime state."""

    last_feature_ts: datetime | None
    feature_version: str | None
    regime: RegimeState | None
    regime_version: str | None


def write_features(con: duckdb.DuckDBPyConnection, venue: str, symbol: str, timeframe: str, *,
                   features: pl.DataFrame, feature_version: str, regimes: pl.DataFrame,
                   replace_from: datetime | None) -> FeatureWrite:
    """Replace rows with ``ts >= replace_from`` (all rows if None) by ``features`` and ``regimes``.

    ``features``: ``ts`` + ``FEATURE_COLUMNS`` (NaN is stored as NULL); ``regimes``: ``ts, regime,
    regime_version``. Both tables change in one transaction.
    """
    keys = _keys(venue, symbol, timeframe)
    feats = features.select(
        pl.col("ts").cast(pl.Datetime("ms", "UTC")),
        *[pl.col(c).cast(pl.Float64).fill_nan(None) for c in FEATURE_COLUMNS])
    labels = regimes.select(pl.col("ts").cast(pl.Datetime("ms", "UTC")), "regime", "regime_version")
    where = _KEY + ("" if replace_from is None else " AND ts >= $start")
    params = keys | ({} if replace_from is None else {"start": replace_from})
    # Registered outside the transaction so that unregistering still works after a failed
    # statement has aborted it (and the original error is the one reported).
    con.register("_feats", feats)
    con.register("_labels", labels)
    try:
        with transaction(con):
            con.execute(f"DELETE FROM features.indicators WHERE {where}", params)
            con.execute(f"DELETE FROM features.regimes WHERE {where}", params)
            con.execute(
                f"INSERT INTO features.indicators (venue, symbol, timeframe, ts, {_COLS}, feature_version) "
                f"SELECT $venue, $symbol, $timeframe, ts, {_COLS}, $version FROM _feats",
                keys | {"version": feature_version})
            con.execute(
                "INSERT INTO features.regimes (venue, symbol, timeframe, ts, regime, regime_version) "
                "SELECT $venue, $symbol, $timeframe, ts, regime, regime_version FROM _labels", keys)
    finally:
        con.unregister("_feats")
        con.unregister("_labels")
    return FeatureWrite(feats.height, labels.height)


def stored_state(con: duckdb.DuckDBPyConnection, venue: str, symbol: str,
                 timeframe: str) -> StoredState:
    """Last stored feature ts/version and the regime state (label, bars it has lasted, version)."""
    keys = _keys(venue, symbol, timeframe)
    f = con.execute(
        f"SELECT ts, feature_version FROM features.indicators WHERE {_KEY} ORDER BY ts DESC LIMIT 1",
        keys).fetchall()
    r = con.execute(
        "WITH r AS (SELECT ts, regime, regime_version FROM features.regimes WHERE " + _KEY + "), "
        "last AS (SELECT ts, regime, regime_version FROM r ORDER BY ts DESC LIMIT 1), "
        "brk AS (SELECT max(r.ts) AS b FROM r, last WHERE r.regime <> last.regime) "
        "SELECT last.ts, last.regime, last.regime_version, "
        "(SELECT count(*) FROM r, brk WHERE brk.b IS NULL OR r.ts > brk.b) FROM last", keys).fetchall()
    regime = RegimeState(_utc(r[0][0]), r[0][1], int(r[0][3])) if r else None
    return StoredState(_utc(f[0][0]) if f else None, f[0][1] if f else None, regime,
                       r[0][2] if r else None)


def bar_ts_before(con: duckdb.DuckDBPyConnection, venue: str, symbol: str, timeframe: str,
                  ts: datetime, bars: int) -> datetime | None:
    """Open time of the bar ``bars`` bars before ``ts`` (None if the series is shorter): the
    start of the history an incremental recompute needs, counted in bars, not in calendar time
    (weekends and holidays would make a time offset wrong for equities)."""
    keys = _keys(venue, symbol, timeframe)
    row = con.execute(
        f"SELECT ts FROM market.bars WHERE {_KEY} AND ts <= $ts ORDER BY ts DESC LIMIT 1 OFFSET $n",
        keys | {"ts": ts, "n": bars}).fetchall()
    return _utc(row[0][0]) if row else None


def _utc(ts: datetime) -> datetime:
    from datetime import UTC

    return ts.astimezone(UTC) if ts.tzinfo else ts.replace(tzinfo=UTC)


def _read(con: duckdb.DuckDBPyConnection, sql: str, keys: dict[str, Any], start: datetime | None,
          end: datetime | None) -> pl.DataFrame:
    frame = con.sql(sql + " AND ($start IS NULL OR ts >= $start) AND ($end IS NULL OR ts < $end) "
                    "ORDER BY ts", params=keys | {"start": start, "end": end}).pl()
    return frame.with_columns(pl.col("ts").dt.convert_time_zone("UTC").cast(pl.Datetime("ms", "UTC")))


def read_features(con: duckdb.DuckDBPyConnection, venue: str, symbol: str, timeframe: str,
                  start: datetime | None = None, end: datetime | None = None) -> pl.DataFrame:
    """``ts``, every feature column (NULL where undefined) and ``feature_version``, ts in [start, end)."""
    return _read(con, f"SELECT ts, {_COLS}, feature_version FROM features.indicators WHERE {_KEY}",
                 _keys(venue, symbol, timeframe), start, end)


def read_regimes(con: duckdb.DuckDBPyConnection, venue: str, symbol: str, timeframe: str,
                 start: datetime | None = None, end: datetime | None = None) -> pl.DataFrame:
    """``ts, regime, regime_version`` of a series, ts in [start, end)."""
    return _read(con, f"SELECT ts, regime, regime_version FROM features.regimes WHERE {_KEY}",
                 _keys(venue, symbol, timeframe), start, end)


@dataclass(frozen=True)
class FeatureCoverage:
    """What the feature checks judge for one series and window: bar and feature rows in
    [start, end), feature rows past the warm-up with a NULL/NaN in ``columns`` (None: the series
    is not past its warm-up yet), and the regime labels stored before ``end`` by name."""

    bars: int
    features: int
    nan_rows: int | None
    regimes: dict[str, int]


def feature_coverage(con: duckdb.DuckDBPyConnection, venue: str, symbol: str, timeframe: str, start: datetime,
                     end: datetime, *, warmup_bars: int, columns: tuple[str, ...]) -> FeatureCoverage:
    """``columns`` must be feature columns (they are identifiers in the query, never input)."""
    bad = [c for c in columns if c not in FEATURE_COLUMNS]
    if bad:
        raise ValueError(f"not feature columns: {bad}")
    keys = _keys(venue, symbol, timeframe)
    win = {**keys, "a": start, "b": end}
    where = f"{_KEY} AND ts >= $a AND ts < $b"

    def one(sql: str, params: dict[str, Any]) -> int:
        return int(con.execute(sql, params).fetchall()[0][0])

    bars = one(f"SELECT count(*) FROM market.bars WHERE {where}", win)
    feats = one(f"SELECT count(*) FROM features.indicators WHERE {where}", win)
    first = con.execute(f"SELECT ts FROM market.bars WHERE {_KEY} ORDER BY ts LIMIT 1 OFFSET $k",
                        {**keys, "k": int(warmup_bars)}).fetchall()
    nan_rows = None
    if first:
        cond = " OR ".join(f"{c} IS NULL OR isnan({c})" for c in columns)
        nan_rows = one(f"SELECT count(*) FROM features.indicators WHERE {where} AND ts >= $w AND ({cond})",
                       {**win, "w": first[0][0]})
    rows = con.execute(f"SELECT regime, count(*) FROM features.regimes WHERE {_KEY} AND ts < $b GROUP BY regime",
                       {**keys, "b": end}).fetchall()
    return FeatureCoverage(bars, feats, nan_rows, {str(r): int(c) for r, c in rows})
