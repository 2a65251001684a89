"""From whatever a source produced to typed columns: names, dtypes and timestamps.

Nothing here raises on content. Problems that make the whole batch meaningless (missing columns,
seconds instead of milliseconds, naive timestamps) become reject issues; problems of single rows
become per-row detail columns (``*_bad``) that the row rules turn into quarantine entries.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import polars as pl

from ...errors import InvalidInput
from ..schema import OHLCV_COLUMNS
from .report import Issue, issue

# A normaliser marks rows it could not split cleanly (wrong field count) with a reason here.
MALFORMED_COLUMN = "__malformed__"
VALUE_COLUMNS: tuple[str, ...] = OHLCV_COLUMNS[1:]

# Normalised name (lower case, '_'/'-' as space) -> canonical column.
ALIASES: dict[str, str] = {
    "timestamp": "ts", "date": "ts", "datetime": "ts", "time": "ts", "open time": "ts",
    "opentime": "ts", "date time": "ts", "vol": "volume",
}
EPOCH_MS_MIN = 100_000_000_000  # 1973-03-03: below this, numbers are epoch seconds
EPOCH_MS_MAX = 100_000_000_000_000  # year 5138: above this, micro- or nanoseconds
HISTORY_START_MS = -2_208_988_800_000  # 1900-01-01T00:00:00Z: the earliest bar (backtests start there too)
_NUMERIC_TS = r"^[+-]?\d+(\.0*)?$"


@dataclass
class Parsed:
    """Typed columns plus per-row problem details (null where the value is fine)."""

    frame: pl.DataFrame  # row_id, ts (Int64 ms), ts_bad, ts_offgrid, open..volume, *_bad, malformed
    source: pl.DataFrame  # the input as received, for the quarantine's raw JSON
    names: dict[str, str]  # canonical -> source column name
    issues: list[Issue] = field(default_factory=list)


def to_polars(raw: Any) -> pl.DataFrame:
    """Accept a polars or pandas frame; pandas indexes (yfinance's DatetimeIndex) become columns."""
    if isinstance(raw, pl.DataFrame):
        return raw
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a dependency
        pd = None
    if pd is None or not isinstance(raw, pd.DataFrame):
        raise InvalidInput(f"validate_bars expects a polars or pandas DataFrame, got {type(raw).__name__}")
    pdf = raw.copy(deep=False)
    if isinstance(pdf.columns, pd.MultiIndex):
        pdf.columns = [" ".join(str(p) for p in c if str(p)) for c in pdf.columns]
    if not isinstance(pdf.index, pd.RangeIndex):
        is_dt = isinstance(pdf.index, pd.DatetimeIndex)
        pdf = pdf.reset_index()
        if is_dt and "index" in pdf.columns:
            pdf = pdf.rename(columns={"index": "ts"})
    # Distinct but equal-after-normalisation names stay distinct for polars ("close", "close ").
    names: list[str] = []
    for c in pdf.columns:
        n = str(c)
        while n in names:
            n += " "
        names.append(n)
    pdf.columns = names
    try:
        return pl.from_pandas(pdf)
    except Exception:  # noqa: BLE001 - mixed object columns: fall back to text, the parser copes
        return pl.DataFrame({
            n: pl.Series(n, [None if v is None or v != v else str(v) for v in pdf[n].tolist()], dtype=pl.Utf8)
            for n in names
        })


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-]+", " ", name.replace("\ufeff", "").strip().lower())


def map_columns(columns: list[str]) -> tuple[dict[str, str], list[Issue]]:
    """Match source columns to the canonical ones (case-insensitive, aliases); report the rest."""
    issues: list[Issue] = []
    cols = [c for c in columns if c != MALFORMED_COLUMN]
    if len(cols) == 1 and any(d in cols[0] for d in (";", "\t", "|")):
        sep = next(d for d in (";", "\t", "|") if d in cols[0])
        issues.append(issue("schema.wrong_delimiter", 1,
                            f"one column {cols[0][:80]!r}: the file uses {sep!r} as delimiter, expected ','"))
        return {}, issues
    exact: dict[str, list[str]] = {c: [] for c in OHLCV_COLUMNS}
    alias: dict[str, list[str]] = {c: [] for c in OHLCV_COLUMNS}
    for c in cols:
        n = _norm(c)
        if n in exact:
            exact[n].append(c)
        elif n in ALIASES:
            alias[ALIASES[n]].append(c)
    names: dict[str, str] = {}
    used_alias: list[str] = []
    for canon in OHLCV_COLUMNS:
        cands = exact[canon] or alias[canon]
        if len(cands) > 1:
            issues.append(issue("schema.ambiguous_column", len(cands),
                                f"{canon} could be any of {cands}; keep exactly one"))
        elif cands:
            names[canon] = cands[0]
            if not exact[canon]:
                used_alias.append(f"{cands[0]!r} -> {canon}")
    missing = [c for c in OHLCV_COLUMNS if c not in names and not (exact[c] or alias[c])]
    if missing:
        issues.append(issue("schema.missing_column", len(missing),
                            f"missing {', '.join(missing)}; columns present: {cols[:12]}"))
    if used_alias:
        issues.append(issue("schema.column_alias", len(used_alias), "; ".join(used_alias)))
    extra = [c for c in cols if c not in names.values()]
    if extra:
        issues.append(issue("schema.extra_column", len(extra), f"ignored {extra[:12]}"))
    return names, issues


def _fmt(e: pl.Expr) -> pl.Expr:
    return e.cast(pl.Utf8).str.slice(0, 60)


# ############# Columns, batch by batch ############# #
# A file too large to hold as text is parsed batch by batch: each batch yields its typed rows
# (row-wise, so identical to parsing the whole column at once) and a few statistics; the
# batch-level verdicts (epoch unit, naive stamps, an unparseable column) are then decided ONCE on
# the statistics of every batch. ``parse`` is the one-batch case of the same code.


@dataclass
class _ColumnStats:
    """What the whole-column verdicts need, summed over batches."""

    kind: str
    dtype: Any
    rows: int = 0
    n_naive: int = 0
    ex_naive: Any = None
    n_num: int = 0
    n_text: int = 0
    nums: list[pl.Series] = field(default_factory=list)  # finite epoch numbers (median of the unit)
    first: Any = None  # first non-null value as received (for examples)
    n_parsed: int = 0  # values that parsed (value columns)


def _ts_kind(dt: Any) -> str:
    if isinstance(dt, pl.Datetime):
        return "datetime" if dt.time_zone is not None else "naive_datetime"
    if dt == pl.Date:
        return "date"
    if dt.is_integer() or dt.is_float():
        return "numeric"
    if dt in (pl.Utf8, pl.Categorical) or isinstance(dt, pl.Enum):
        return "string"
    return "other"


def _first_non_null(s: pl.Series) -> Any:
    ex = s.drop_nulls().head(1).to_list()
    return ex[0] if ex else None


def _ts_rows(s: pl.Series, st: _ColumnStats) -> pl.DataFrame:
    """Typed ts rows (ts, ts_bad, ts_offgrid) of one batch; updates the column's statistics. A ts
    before ``HISTORY_START_MS`` (e.g. 0001-01-01) is unparseable too: no market history is older,
    and a bar there would sit outside every range a backtest can ask for."""
    f = _typed_ts_rows(s, st)
    if "ts_bad" not in f.columns:
        return f
    early = pl.col("ts").is_not_null() & (pl.col("ts") < HISTORY_START_MS)
    return f.with_columns(
        ts_bad=pl.when(early).then(pl.format("ts {} is before 1900-01-01",
                                             pl.col("ts").cast(pl.Datetime("ms")).dt.strftime("%Y-%m-%dT%H:%M:%SZ")))
        .otherwise(pl.col("ts_bad")),
        ts=pl.when(early).then(None).otherwise(pl.col("ts")),
    )


def _typed_ts_rows(s: pl.Series, st: _ColumnStats) -> pl.DataFrame:
    f = pl.DataFrame({"v": s})
    st.rows += s.len()
    kind = st.kind
    if st.first is None and kind != "string":
        st.first = _first_non_null(s)
    if kind == "numeric":
        f = f.with_columns(pl.col("v").cast(pl.Float64))
        col = f.get_column("v")
        st.nums.append(col.filter(col.is_finite()))
        return _numeric_ts_rows(f)
    if kind == "string":
        return _string_ts_rows(f.with_columns(pl.col("v").cast(pl.Utf8).str.strip_chars()), st)
    if kind == "datetime":
        dt = s.dtype
        unit = cast(Literal["ms", "us", "ns"], getattr(dt, "time_unit", None) or "us")
        per_ms = {"ms": 1, "us": 1_000, "ns": 1_000_000}[unit]
        epoch = pl.col("v").dt.epoch(unit)
        return f.select(ts=epoch.floordiv(per_ms).cast(pl.Int64),
                        ts_bad=pl.when(pl.col("v").is_null()).then(pl.lit("missing ts")).otherwise(None).cast(pl.Utf8),
                        ts_offgrid=(epoch % per_ms) != 0)
    if kind == "date":
        return f.select(ts=pl.col("v").cast(pl.Datetime("ms")).dt.epoch("ms").cast(pl.Int64),
                        ts_bad=pl.when(pl.col("v").is_null()).then(pl.lit("missing ts")).otherwise(None).cast(pl.Utf8),
                        ts_offgrid=pl.lit(False))
    return f  # naive datetime / other: the verdict rejects the batch


def _ts_verdict(st: _ColumnStats, name: str) -> list[Issue]:
    """The batch-level reject issues of the ts column, on the statistics of every batch."""
    n = st.rows
    if st.kind == "naive_datetime":
        return [issue("ts.tz_naive", n,
                      f"column {name!r} is a datetime without time zone (e.g. {st.first}); "
                      "store UTC with a zone (add 'Z' or '+00:00') or epoch milliseconds")]
    if st.kind == "other":
        return [issue("dtype.unparseable_column", n, f"column {name!r} has type {st.dtype}, not a timestamp")]
    if st.kind == "numeric":
        finite = pl.concat(st.nums) if st.nums else pl.Series([], dtype=pl.Float64)
        if finite.len() == 0:
            return [issue("dtype.unparseable_column", n, f"column {name!r} holds no timestamp")]
        return _epoch_unit(float(finite.abs().median()), name, n, "since 1970-01-01 UTC")  # type: ignore[arg-type]
    if st.kind == "string":
        if st.n_naive:
            return [issue("ts.tz_naive", n,
                          f"{st.n_naive} value(s) of column {name!r} such as {st.ex_naive!r} have no UTC offset; "
                          "add 'Z' or '+00:00' (or use epoch milliseconds)")]
        if st.n_num > st.n_text:
            nums = pl.concat(st.nums)
            found = _epoch_unit(float(nums.abs().median()), name, n, "")  # type: ignore[arg-type]
            if found:
                return found
        if st.n_num + st.n_text == 0 and n:
            ex = st.first
            return [issue("dtype.unparseable_column", n,
                          f"column {name!r} holds no timestamp (e.g. {ex[:40] if ex else None!r})")]
    return []


def _epoch_unit(med: float, name: str, n: int, since: str) -> list[Issue]:
    """Epoch numbers must be milliseconds: a median in seconds or micro/nanoseconds rejects."""
    if med < EPOCH_MS_MIN:
        return [issue("ts.epoch_seconds", n,
                      f"column {name!r} looks like epoch seconds (median {med:.0f}), expected milliseconds "
                      "since 1970-01-01 UTC: multiply by 1000")]
    if med >= EPOCH_MS_MAX:
        tail = f"milliseconds {since}" if since else "milliseconds"
        return [issue("ts.epoch_unit", n,
                      f"column {name!r} looks like epoch micro- or nanoseconds (median {med:.3g}), "
                      f"expected {tail}")]
    return []


def parse_ts(s: pl.Series) -> tuple[pl.DataFrame, list[Issue]]:
    """``ts`` to Int64 epoch ms with per-row problems; batch problems as reject issues."""
    st = _ColumnStats(_ts_kind(s.dtype), s.dtype)
    rows = _ts_rows(s, st)
    return rows, _ts_verdict(st, s.name)


def _numeric_ts_rows(f: pl.DataFrame) -> pl.DataFrame:
    """Epoch numbers (the unit is decided for the whole column): judge each row."""
    v = pl.col("v")
    bad = (
        pl.when(v.is_null() | v.is_nan()).then(pl.lit("missing ts"))
        .when(v.is_infinite()).then(pl.lit("infinite ts"))
        .when((v < EPOCH_MS_MIN) | (v >= EPOCH_MS_MAX))
        .then(pl.format("epoch {} outside the millisecond range", _fmt(v.cast(pl.Int64, strict=False))))
        .when(v != v.floor()).then(pl.format("fractional epoch ms {}", _fmt(v)))
    )
    return f.select(
        ts=pl.when(bad.is_null()).then(v).cast(pl.Int64, strict=False),
        ts_bad=bad.otherwise(None).cast(pl.Utf8),
        ts_offgrid=pl.lit(False),
    )


def _string_ts_rows(f: pl.DataFrame, st: _ColumnStats) -> pl.DataFrame:
    """ISO-8601 with an offset, a bare date (the trading date, 00:00 UTC), or epoch ms as text."""
    v = pl.col("v")
    numeric = v.str.contains(_NUMERIC_TS)
    iso = v.str.replace(r"[zZ]$", "+00:00").str.replace(r"^(\d{4}-\d{2}-\d{2}) ", "${1}T")
    f = f.with_columns(
        num=pl.when(numeric).then(v.cast(pl.Float64, strict=False)),
        aware=iso.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%z", strict=False, time_zone="UTC", time_unit="us"),
        naive=iso.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False, time_unit="us"),
        day=v.str.to_datetime("%Y-%m-%d", strict=False, time_unit="us"),
    )
    if st.first is None:
        st.first = _first_non_null(f.get_column("v"))
    n_naive = int(f.get_column("naive").is_not_null().sum())
    if n_naive and st.ex_naive is None:
        st.ex_naive = f.filter(pl.col("naive").is_not_null()).get_column("v").head(1).to_list()[0]
    st.n_naive += n_naive
    nums = f.get_column("num").drop_nulls()
    st.n_num += nums.len()
    if nums.len():
        st.nums.append(nums)
    st.n_text += int((f.get_column("aware").is_not_null() | f.get_column("day").is_not_null()).sum())
    num = pl.col("num")
    aware_us = pl.col("aware").dt.epoch("us")
    day_ms = pl.col("day").dt.epoch("ms")
    num_bad = (num < EPOCH_MS_MIN) | (num >= EPOCH_MS_MAX)
    bad = (
        pl.when(v.is_null() | (v == "")).then(pl.lit("missing ts"))
        .when(num.is_not_null() & num_bad).then(pl.format("epoch {} outside the millisecond range", _fmt(v)))
        .when(num.is_null() & pl.col("aware").is_null() & pl.col("day").is_null())
        .then(pl.format("not a timestamp: {}", _fmt(v)))
    )
    ms = pl.coalesce(num.cast(pl.Int64, strict=False), aware_us.floordiv(1000), day_ms)
    return f.select(
        ts=pl.when(bad.is_null()).then(ms).cast(pl.Int64),
        ts_bad=bad.otherwise(None).cast(pl.Utf8),
        ts_offgrid=(aware_us % 1000).fill_null(0) != 0,
    )


def _value_kind(dt: Any) -> str:
    if dt.is_numeric():
        return "numeric"
    if dt in (pl.Utf8, pl.Categorical) or isinstance(dt, pl.Enum):
        return "string"
    return "other"


def _value_rows(s: pl.Series, canon: str, st: _ColumnStats) -> pl.DataFrame:
    """A price or volume column of one batch to Float64 plus its per-row problem text."""
    f = pl.DataFrame({"v": s})
    bad_col = f"{canon}_bad"
    st.rows += s.len()
    if st.kind == "numeric":
        out = f.select(pl.col("v").cast(pl.Float64).alias(canon), pl.lit(None, pl.Utf8).alias(bad_col))
    elif st.kind == "string":
        txt = pl.col("v").cast(pl.Utf8).str.strip_chars()
        num = txt.cast(pl.Float64, strict=False)
        out = f.select(
            num.alias(canon),
            pl.when(txt.is_not_null() & (txt != "") & num.is_null())
            .then(pl.concat_str(pl.lit(f"{canon} "), _quoted(txt)))
            .otherwise(None).cast(pl.Utf8).alias(bad_col),
        )
        if st.first is None:
            st.first = _first_non_null(s.cast(pl.Utf8))
    else:
        return f
    st.n_parsed += out.height - out.get_column(canon).null_count()
    return out


def _value_verdict(st: _ColumnStats, name: str) -> list[Issue]:
    if st.kind == "other":
        return [issue("dtype.unparseable_column", st.rows, f"column {name!r} has type {st.dtype}, not a number")]
    if st.n_parsed == 0:
        if st.kind == "numeric":
            return [issue("dtype.unparseable_column", st.rows, f"column {name!r} is entirely missing")]
        what = f"non-numeric (e.g. {st.first[:40]!r})" if st.first is not None else "entirely missing"
        return [issue("dtype.unparseable_column", st.rows, f"column {name!r} is {what}")]
    return []


def parse_value(s: pl.Series, canon: str) -> tuple[pl.DataFrame, list[Issue]]:
    """A price or volume column to Float64; text that is not a plain number is a row problem."""
    st = _ColumnStats(_value_kind(s.dtype), s.dtype)
    rows = _value_rows(s, canon, st)
    return rows, _value_verdict(st, s.name)


def _quoted(e: pl.Expr) -> pl.Expr:
    return pl.concat_str(pl.lit("'"), e.str.slice(0, 40), pl.lit("' is not a number"))


def parse(raw: pl.DataFrame) -> Parsed | list[Issue]:
    """Typed, row-numbered columns, or the issues that reject the batch."""
    parsed, _rows = parse_batches(iter([raw]), source=raw)
    return parsed


def parse_batches(batches: Iterator[pl.DataFrame], *, source: Any) -> tuple[Parsed | list[Issue], int]:
    """``parse`` over consecutive batches of one payload (same columns): typed rows batch by batch,
    whole-column verdicts once on the statistics of all of them, so the result equals parsing the
    concatenated payload. ``source`` is what the quarantine reads raw rows from (a frame, or a
    ``RawRows``). Returns the parse (or the reject issues) and the number of rows seen."""
    first = next(batches, None)
    while first is not None and first.height == 0:  # a header-only batch: look further
        following = next(batches, None)
        if following is None:
            break
        first = following
    if first is None or first.height == 0:
        cols = first.columns if first is not None else []
        return [issue("payload.empty", 0, f"no rows (columns: {cols[:12]})")], 0
    names, issues = map_columns(first.columns)
    if any(i.action == "reject_batch" for i in issues):
        return issues, _count_rows(first, batches)
    ts_name = names["ts"]
    ts_stats = _ColumnStats(_ts_kind(first.schema[ts_name]), first.schema[ts_name])
    value_stats = {c: _ColumnStats(_value_kind(first.schema[names[c]]), first.schema[names[c]])
                   for c in VALUE_COLUMNS}
    rejected = ts_stats.kind in ("naive_datetime", "other") or any(
        st.kind == "other" for st in value_stats.values())
    frames: list[pl.DataFrame] = []
    offset = 0
    batch: pl.DataFrame | None = first
    while batch is not None:
        h = batch.height
        ts = _ts_rows(batch.get_column(ts_name), ts_stats)
        values = [_value_rows(batch.get_column(names[c]), c, value_stats[c]) for c in VALUE_COLUMNS]
        if not rejected:
            malformed = (batch.get_column(MALFORMED_COLUMN).cast(pl.Utf8, strict=False)
                         if MALFORMED_COLUMN in batch.columns else pl.Series([None] * h, dtype=pl.Utf8))
            frames.append(pl.concat(
                [pl.DataFrame({"row_id": pl.int_range(offset, offset + h, eager=True, dtype=pl.Int64)}), ts,
                 *values, pl.DataFrame({"malformed": malformed})], how="horizontal"))
        offset += h
        batch = next(batches, None)
    rejects = _ts_verdict(ts_stats, ts_name)
    for c in VALUE_COLUMNS:
        rejects += _value_verdict(value_stats[c], names[c])
    if rejects:
        return [*rejects, *issues], offset
    # One chunk: polars 2.1 panics ("i < self.len()") on string ternaries over some multi-chunk
    # frames (a CSV read in parallel chunks with a few bad rows in several of them).
    frame = frames[0].rechunk() if len(frames) == 1 else pl.concat(frames, rechunk=True)
    frames.clear()
    return Parsed(frame, source, names, issues), offset


def _count_rows(first: pl.DataFrame, rest: Iterator[pl.DataFrame]) -> int:
    return first.height + sum(b.height for b in rest)
