"""From whatever a source produced to typed columns: names, dtypes and timestamps.

Nothing here raises on content. Problems that make the whole batch meaningless (missing columns,
seconds instead of milliseconds, naive timestamps) become reject issues; problems of single rows
become per-row detail columns (``*_bad``) that the row rules turn into quarantine entries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

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


def parse_ts(s: pl.Series) -> tuple[pl.DataFrame, list[Issue]]:
    """``ts`` to Int64 epoch ms with per-row problems; batch problems as reject issues."""
    name = s.name
    f = pl.DataFrame({"v": s})
    dt = s.dtype
    offgrid = pl.lit(False)
    if isinstance(dt, pl.Datetime):
        if dt.time_zone is None:
            ex = s.drop_nulls().head(1).to_list()
            return f, [issue("ts.tz_naive", s.len(),
                             f"column {name!r} is a datetime without time zone (e.g. {ex[0] if ex else None}); "
                             "store UTC with a zone (add 'Z' or '+00:00') or epoch milliseconds")]
        unit = dt.time_unit or "us"
        per_ms = {"ms": 1, "us": 1_000, "ns": 1_000_000}[unit]
        epoch = pl.col("v").dt.epoch(unit)
        ms = epoch.floordiv(per_ms)
        offgrid = (epoch % per_ms) != 0
        bad = pl.when(pl.col("v").is_null()).then(pl.lit("missing ts"))
    elif dt == pl.Date:
        ms = pl.col("v").cast(pl.Datetime("ms")).dt.epoch("ms")
        bad = pl.when(pl.col("v").is_null()).then(pl.lit("missing ts"))
    elif dt.is_integer() or dt.is_float():
        return _numeric_ts(f.with_columns(pl.col("v").cast(pl.Float64)), name)
    elif dt in (pl.Utf8, pl.Categorical) or isinstance(dt, pl.Enum):
        return _string_ts(f.with_columns(pl.col("v").cast(pl.Utf8).str.strip_chars()), name)
    else:
        return f, [issue("dtype.unparseable_column", s.len(), f"column {name!r} has type {dt}, not a timestamp")]
    out = f.select(ts=ms.cast(pl.Int64), ts_bad=bad.otherwise(None).cast(pl.Utf8), ts_offgrid=offgrid)
    return out, []


def _numeric_ts(f: pl.DataFrame, name: str) -> tuple[pl.DataFrame, list[Issue]]:
    """Epoch numbers: decide the unit for the batch, then judge each row."""
    v = pl.col("v")
    finite = f.get_column("v").filter(f.get_column("v").is_finite())
    if finite.len() == 0:
        return f, [issue("dtype.unparseable_column", f.height, f"column {name!r} holds no timestamp")]
    med = float(finite.abs().median())  # type: ignore[arg-type]
    if med < EPOCH_MS_MIN:
        return f, [issue("ts.epoch_seconds", f.height,
                         f"column {name!r} looks like epoch seconds (median {med:.0f}), expected milliseconds "
                         "since 1970-01-01 UTC: multiply by 1000")]
    if med >= EPOCH_MS_MAX:
        return f, [issue("ts.epoch_unit", f.height,
                         f"column {name!r} looks like epoch micro- or nanoseconds (median {med:.3g}), "
                         "expected milliseconds since 1970-01-01 UTC")]
    bad = (
        pl.when(v.is_null() | v.is_nan()).then(pl.lit("missing ts"))
        .when(v.is_infinite()).then(pl.lit("infinite ts"))
        .when((v < EPOCH_MS_MIN) | (v >= EPOCH_MS_MAX))
        .then(pl.format("epoch {} outside the millisecond range", _fmt(v.cast(pl.Int64, strict=False))))
        .when(v != v.floor()).then(pl.format("fractional epoch ms {}", _fmt(v)))
    )
    out = f.select(
        ts=pl.when(bad.is_null()).then(v).cast(pl.Int64, strict=False),
        ts_bad=bad.otherwise(None).cast(pl.Utf8),
        ts_offgrid=pl.lit(False),
    )
    return out, []


def _string_ts(f: pl.DataFrame, name: str) -> tuple[pl.DataFrame, list[Issue]]:
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
    n_naive = int(f.get_column("naive").is_not_null().sum())
    if n_naive:
        ex = f.filter(pl.col("naive").is_not_null()).get_column("v").head(1).to_list()[0]
        return f, [issue("ts.tz_naive", f.height,
                         f"{n_naive} value(s) of column {name!r} such as {ex!r} have no UTC offset; "
                         "add 'Z' or '+00:00' (or use epoch milliseconds)")]
    nums = f.get_column("num").drop_nulls()
    n_num = nums.len()
    n_text = int((f.get_column("aware").is_not_null() | f.get_column("day").is_not_null()).sum())
    if n_num > n_text:
        med = float(nums.abs().median())  # type: ignore[arg-type]
        if med < EPOCH_MS_MIN:
            return f, [issue("ts.epoch_seconds", f.height,
                             f"column {name!r} looks like epoch seconds (median {med:.0f}), expected "
                             "milliseconds since 1970-01-01 UTC: multiply by 1000")]
        if med >= EPOCH_MS_MAX:
            return f, [issue("ts.epoch_unit", f.height,
                             f"column {name!r} looks like epoch micro- or nanoseconds (median {med:.3g}), "
                             "expected milliseconds")]
    if n_num + n_text == 0 and f.height:
        ex = f.get_column("v").drop_nulls().head(1).to_list()
        return f, [issue("dtype.unparseable_column", f.height,
                         f"column {name!r} holds no timestamp (e.g. {ex[0][:40] if ex else None!r})")]
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
    out = f.select(
        ts=pl.when(bad.is_null()).then(ms).cast(pl.Int64),
        ts_bad=bad.otherwise(None).cast(pl.Utf8),
        ts_offgrid=(aware_us % 1000).fill_null(0) != 0,
    )
    return out, []


def parse_value(s: pl.Series, canon: str) -> tuple[pl.DataFrame, list[Issue]]:
    """A price or volume column to Float64; text that is not a plain number is a row problem."""
    name, dt = s.name, s.dtype
    f = pl.DataFrame({"v": s})
    bad_col = f"{canon}_bad"
    if dt.is_numeric():
        out = f.select(pl.col("v").cast(pl.Float64).alias(canon), pl.lit(None, pl.Utf8).alias(bad_col))
        if out.get_column(canon).null_count() == out.height:
            return out, [issue("dtype.unparseable_column", s.len(), f"column {name!r} is entirely missing")]
        return out, []
    if dt in (pl.Utf8, pl.Categorical) or isinstance(dt, pl.Enum):
        txt = pl.col("v").cast(pl.Utf8).str.strip_chars()
        num = txt.cast(pl.Float64, strict=False)
        out = f.select(
            num.alias(canon),
            pl.when(txt.is_not_null() & (txt != "") & num.is_null())
            .then(pl.concat_str(pl.lit(f"{canon} "), _quoted(txt)))
            .otherwise(None).cast(pl.Utf8).alias(bad_col),
        )
        if out.get_column(canon).null_count() == out.height:
            ex = f.get_column("v").cast(pl.Utf8).drop_nulls().head(1).to_list()
            what = f"non-numeric (e.g. {ex[0][:40]!r})" if ex else "entirely missing"
            return out, [issue("dtype.unparseable_column", s.len(), f"column {name!r} is {what}")]
        return out, []
    return f, [issue("dtype.unparseable_column", s.len(), f"column {name!r} has type {dt}, not a number")]


def _quoted(e: pl.Expr) -> pl.Expr:
    return pl.concat_str(pl.lit("'"), e.str.slice(0, 40), pl.lit("' is not a number"))


def parse(raw: pl.DataFrame) -> Parsed | list[Issue]:
    """Typed, row-numbered columns, or the issues that reject the batch."""
    if raw.height == 0:
        return [issue("payload.empty", 0, f"no rows (columns: {raw.columns[:12]})")]
    names, issues = map_columns(raw.columns)
    if any(i.action == "reject_batch" for i in issues):
        return issues
    parts: list[pl.DataFrame] = [pl.DataFrame({"row_id": pl.int_range(0, raw.height, eager=True, dtype=pl.Int64)})]
    rejects: list[Issue] = []
    ts, ts_issues = parse_ts(raw.get_column(names["ts"]))
    rejects += ts_issues
    parts.append(ts)
    for canon in VALUE_COLUMNS:
        col, col_issues = parse_value(raw.get_column(names[canon]), canon)
        rejects += col_issues
        parts.append(col)
    if rejects:
        return [*rejects, *issues]
    malformed = (raw.get_column(MALFORMED_COLUMN).cast(pl.Utf8, strict=False)
                 if MALFORMED_COLUMN in raw.columns else pl.Series([None] * raw.height, dtype=pl.Utf8))
    parts.append(pl.DataFrame({"malformed": malformed}))
    return Parsed(pl.concat(parts, how="horizontal"), raw, names, issues)
