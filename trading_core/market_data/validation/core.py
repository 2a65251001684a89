"""``validate_bars``: the contract every batch of bars passes before it can reach ``market.bars``.

Pure and deterministic: no I/O, no clock (``now`` is an argument). Row rules are evaluated as
polars expressions over the whole batch; Python only touches the few offending rows.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

import numpy as np
import polars as pl

from ...config import ValidationConfig
from ...errors import InvalidInput
from ...timeframes import timeframe_ms
from ..schema import PRICE_COLUMNS
from .parse import VALUE_COLUMNS, Parsed, parse, parse_batches, to_polars
from .report import (
    ACCEPTED_SCHEMA,
    DROPPED_SCHEMA,
    QUARANTINE_SCHEMA,
    Issue,
    ValidationReport,
    issue,
    rejected_report,
)
from .rules import RULES

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HALF_HOUR_MS = 1_800_000
_DAY_MS = 86_400_000
_SPLIT_RATIOS = (1.5, 2.0, 3.0, 4.0, 5.0, 8.0, 10.0, 20.0)
_SPLIT_TOL = 0.1  # |log ratio - log n|: a day's own move rides on top of the split
_LN100, _LN2 = math.log(100.0), math.log(2.0)
_HOLIDAY_WEEKDAYS = 3  # equity daily: runs of up to this many missing weekdays are holidays

Calendar = Literal["crypto", "equity"]


def _dt(ms: Any) -> datetime | None:
    return None if ms is None else _EPOCH + timedelta(milliseconds=int(ms))


def _iso(e: pl.Expr) -> pl.Expr:
    return e.cast(pl.Datetime("ms", "UTC")).dt.to_string("%Y-%m-%dT%H:%M:%SZ")


def _grid_ms(tf: int, calendar: str) -> int:
    """Equity sessions open at :30 (NYSE 09:30), so hourly equity bars sit on a 30-minute grid."""
    if calendar == "equity" and _HALF_HOUR_MS < tf < _DAY_MS:
        return _HALF_HOUR_MS
    return tf


def _row_rules(tf: int, grid: int, timeframe: str, now_ms: int, horizon_ms: int) -> list[tuple[str, pl.Expr, pl.Expr]]:
    """(code, mask, detail) in priority order: a row is charged to the first rule it fails."""
    o, h, lo, c, v, ts = (pl.col(x) for x in ("open", "high", "low", "close", "volume", "ts"))
    fin = pl.all_horizontal([pl.col(x).is_finite() for x in VALUE_COLUMNS]).fill_null(False)
    parsed_ok = pl.all_horizontal([pl.col(f"{x}_bad").is_null() for x in VALUE_COLUMNS])
    return [
        ("row.malformed", pl.col("malformed").is_not_null(), pl.col("malformed")),
        ("ts.unparseable", pl.col("ts_bad").is_not_null(), pl.col("ts_bad")),
        ("dtype.unparseable_value", ~parsed_ok,
         pl.concat_str([pl.col(f"{x}_bad") for x in VALUE_COLUMNS], separator="; ", ignore_nulls=True)),
        ("ohlcv.non_finite", ~fin & parsed_ok, pl.concat_str(
            [pl.when(pl.col(x).is_null()).then(pl.lit(f"{x} missing"))
             .when(~pl.col(x).is_finite()).then(pl.format(f"{x}={{}}", pl.col(x))) for x in VALUE_COLUMNS],
            separator="; ", ignore_nulls=True)),
        ("ohlc.non_positive", fin & pl.any_horizontal([pl.col(p) <= 0 for p in PRICE_COLUMNS]),
         pl.concat_str([pl.when(pl.col(p) <= 0).then(pl.format(f"{p}={{}}", pl.col(p))) for p in PRICE_COLUMNS],
                       separator="; ", ignore_nulls=True)),
        ("volume.negative", fin & (v < 0), pl.format("volume={}", v)),
        ("ohlc.high_below_low", fin & (h < lo), pl.format("high {} < low {}", h, lo)),
        ("ohlc.open_outside_range", fin & ((o > h) | (o < lo)), pl.format("open {} outside [low {}, high {}]", o, lo, h)),
        ("ohlc.close_outside_range", fin & ((c > h) | (c < lo)),
         pl.format("close {} outside [low {}, high {}]", c, lo, h)),
        ("ts.misaligned", ts.is_not_null() & (((ts % grid) != 0) | pl.col("ts_offgrid")),
         pl.format(f"ts {{}} is not on the {timeframe} grid", _iso(ts))),
        ("ts.future", ts > horizon_ms, pl.format(f"ts {{}} is after now ({_iso_ms(now_ms)}) + tolerance", _iso(ts))),
    ]


def _iso_ms(ms: int) -> str:
    return f"{_dt(ms):%Y-%m-%dT%H:%M:%SZ}"


def _group_issues(rows: pl.DataFrame) -> list[Issue]:
    """One issue per rule over rows carrying rule, detail and ts (Int64 ms)."""
    if rows.height == 0:
        return []
    g = (rows.group_by("rule")
         .agg(n=pl.len(), first=pl.col("ts").min(), last=pl.col("ts").max(),
              row=pl.col("row_id").first(), detail=pl.col("detail").first())
         .sort("rule"))
    out = []
    for r in g.iter_rows(named=True):
        detail = f"{r['n']} row(s); e.g. row {r['row']}: {r['detail']}"
        out.append(issue(r["rule"], r["n"], detail, _dt(r["first"]), _dt(r["last"])))
    return out


class RawRows(Protocol):
    """Where the quarantine reads offending rows as received when the payload is not held in
    memory (a streamed file): ``raw_json(row_ids)`` -> frame of row_id, raw (JSON text)."""

    def raw_json(self, row_ids: pl.Series) -> pl.DataFrame: ...


def raw_json(source: pl.DataFrame, row_ids: pl.Series, offset: int = 0) -> pl.DataFrame:
    """The rows ``row_ids`` of ``source`` (whose first row is row ``offset`` of the payload)."""
    ids = row_ids.filter((row_ids >= offset) & (row_ids < offset + source.height)) - offset
    out = _raw_json(source, ids)
    return out.with_columns(pl.col("row_id") + offset) if offset else out


def _raw_json(source: pl.DataFrame, row_ids: pl.Series) -> pl.DataFrame:
    """The offending rows exactly as received, one JSON object each (keys = source columns)."""
    sub = source.with_row_index("__row_id").filter(pl.col("__row_id").is_in(row_ids.implode()))
    cols = [c for c in source.columns]
    try:
        exprs = [pl.col(c) if isinstance(source.schema[c], pl.List | pl.Struct | pl.Array)
                 else pl.col(c).cast(pl.Utf8) for c in cols]
        raw = sub.select(pl.col("__row_id").cast(pl.Int64).alias("row_id"),
                         pl.struct(exprs).struct.json_encode().alias("raw"))
    except Exception:  # noqa: BLE001 - exotic dtypes (Object): raw text is a courtesy, not a contract
        raw = sub.select(pl.col("__row_id").cast(pl.Int64).alias("row_id"), pl.lit(None, pl.Utf8).alias("raw"))
    return raw


def _quarantine(rows: pl.DataFrame, source: pl.DataFrame | RawRows) -> pl.DataFrame:
    if rows.height == 0:
        return pl.DataFrame(schema=QUARANTINE_SCHEMA)
    out = rows.select(
        pl.col("row_id"), pl.col("rule"), pl.col("detail"),
        pl.col("ts").cast(pl.Datetime("ms", "UTC")),
        *[pl.col(x).cast(pl.Float64) for x in VALUE_COLUMNS],
    ).join(_raw_json(source, rows.get_column("row_id")) if isinstance(source, pl.DataFrame)
           else source.raw_json(rows.get_column("row_id")), on="row_id", how="left")
    return out.sort("row_id").select(list(QUARANTINE_SCHEMA)).cast(QUARANTINE_SCHEMA)  # type: ignore[arg-type]


def _gaps(present: pl.Series, tf: int, timeframe: str, calendar: str, max_report: int) -> Issue | None:
    """Missing bars between the first and last ts the source sent (sorted unique Int64 ms)."""
    if present.len() < 2:
        return None
    f = pl.DataFrame({"ts": present}).with_columns(prev=pl.col("ts").shift(1)).drop_nulls()
    if calendar == "equity" and tf == _DAY_MS:
        day = pl.col("ts").cast(pl.Datetime("ms", "UTC")).dt.date()
        prev = pl.col("prev").cast(pl.Datetime("ms", "UTC")).dt.date()
        f = f.with_columns(missing=pl.business_day_count(prev.dt.offset_by("1d"), day).cast(pl.Int64))
        f = f.filter(pl.col("missing") > _HOLIDAY_WEEKDAYS)
    else:
        f = f.with_columns(missing=(pl.col("ts") - pl.col("prev")) // tf - 1)
        if calendar == "equity":  # intraday: nights and weekends are closed, judge within a UTC day
            f = f.filter(pl.col("ts") // _DAY_MS == pl.col("prev") // _DAY_MS)
        f = f.filter(pl.col("missing") > 0)
    if f.height == 0:
        return None
    total = int(f.get_column("missing").sum())
    big = f.sort(["missing", "ts"], descending=[True, False]).row(0, named=True)
    shown = ", ".join(f"{_iso_ms(r['prev'] + tf)} ({r['missing']})"
                      for r in f.head(min(5, max_report)).iter_rows(named=True))
    detail = (f"{total} missing {timeframe} bar(s) in {f.height} gap(s); largest {big['missing']} after "
              f"{_iso_ms(big['prev'])}; first: {shown}")
    return issue("gap.missing_bars", total, detail, _dt(f.get_column("prev")[0] + tf),
                 _dt(f.get_column("ts")[-1] - tf))


def _rolling_mad(lr: np.ndarray, idx: np.ndarray, w: int, minp: int) -> np.ndarray:
    """Centred rolling MAD of ``lr`` evaluated only at positions ``idx`` (NaN: too few samples).

    Only bars that already move more than ``spike_min_move`` need a baseline, so a clean batch of a
    million bars costs nothing here; a very noisy one falls back to a full rolling pass.
    """
    if idx.size == 0:
        return np.empty(0)
    if idx.size > 100_000:
        s = pl.Series(lr)
        med = s.rolling_median(w, min_samples=minp, center=True)
        mad = (s - med).abs().rolling_median(w, min_samples=minp, center=True)
        return mad.to_numpy()[idx]
    lo = w // 2
    padded = np.concatenate([np.full(lo, np.nan), lr, np.full(w - lo - 1, np.nan)])
    win = np.lib.stride_tricks.sliding_window_view(padded, w)[idx]
    ok = np.sum(~np.isnan(win), axis=1) >= minp
    out = np.full(idx.size, np.nan)
    if ok.any():
        with np.errstate(all="ignore"):
            med = np.nanmedian(win[ok], axis=1)
            out[ok] = np.nanmedian(np.abs(win[ok] - med[:, None]), axis=1)
    return out


def _max_step_ms(tf: int, calendar: str) -> int:
    """Longest distance between two bars whose return still counts as one bar's move."""
    if calendar == "equity":
        return 5 * _DAY_MS if tf >= _DAY_MS else 4 * _DAY_MS  # long weekends, overnight
    return tf


def _series_checks(bars: pl.DataFrame, cfg: ValidationConfig, max_dt: int) -> tuple[np.ndarray, list[Issue]]:
    """Spikes (returned as a mask to quarantine) and price-level steps, on sorted unique bars.

    A spike moves more than ``k`` rolling MADs and ``spike_min_move`` and the next bar takes back
    more than half of it; a step moves as much and stays. Steps near x100 are unit errors, steps
    near a split ratio are unapplied splits: both are flagged, not changed. Returns across a gap
    (more than ``max_dt``) are not one bar's move and are not judged.
    """
    n = bars.height
    spike = np.zeros(n, dtype=bool)
    if n < 3:
        return spike, []
    close = bars.get_column("close").to_numpy()
    lr = np.empty(n)
    lr[0] = np.nan
    with np.errstate(all="ignore"):
        lr[1:] = np.diff(np.log(close))
    ts = bars.get_column("ts").to_numpy()
    contiguous = np.append(False, np.diff(ts) <= max_dt)
    lr[~contiguous] = np.nan
    a = np.abs(lr)
    idx = np.flatnonzero(a > cfg.spike_min_move)
    if idx.size == 0:
        return spike, []
    mad = np.nan_to_num(_rolling_mad(lr, idx, cfg.spike_window, min(5, cfg.spike_window)), nan=0.0)
    idx = idx[a[idx] > cfg.spike_mad_k * mad]
    if idx.size == 0:
        return spike, []
    nxt = np.append(lr[1:], np.nan)[idx]
    reversed_ = np.abs(lr[idx] + nxt) < 0.5 * a[idx]  # False where there is no next bar
    spike[idx[reversed_]] = True
    after_spike = np.append(False, spike[:-1])
    steps = idx[~reversed_ & ~after_spike[idx]]
    issues: list[Issue] = []
    if steps.size:
        sa = a[steps]
        is100 = np.abs(sa - _LN100) < _LN2
        split = np.zeros(steps.size, dtype=bool)
        for r in _SPLIT_RATIOS:
            split |= np.abs(sa - math.log(r)) < _SPLIT_TOL
        split &= ~is100
        for code, m in (("price.step_100x", is100), ("price.split_step", split)):
            hit = steps[m]
            if hit.size:
                i0 = int(hit[0])
                detail = (f"{hit.size} step(s); close x{math.exp(lr[i0]):.4g} at {_iso_ms(int(ts[i0]))} "
                          "and stays (no reversal next bar)")
                issues.append(issue(code, hit.size, detail, _dt(ts[hit].min()), _dt(ts[hit].max())))
    return spike, issues


def _volume_flags(bars: pl.DataFrame, cfg: ValidationConfig, timeframe: str) -> list[Issue]:
    v = bars.get_column("volume")
    zero = v == 0
    nz = int(zero.sum())
    if nz == 0:
        return []
    zts = bars.get_column("ts").filter(zero)
    out = [issue("volume.zero", nz, f"{nz} of {bars.height} bar(s) with zero volume",
                 _dt(zts.min()), _dt(zts.max()))]
    same = (pl.col("volume") == 0) & (pl.col("volume").shift(1) == 0)
    for p in PRICE_COLUMNS:
        same = same & (pl.col(p) == pl.col(p).shift(1))
    f = bars.select("ts", "volume", same=same.fill_null(False))
    if int(f.get_column("same").sum()) < cfg.stale_bars - 1:
        return out
    runs = (f.with_columns(run=(~pl.col("same")).cum_sum())
            .group_by("run").agg(n=pl.len(), zero=(pl.col("volume") == 0).all(),
                                 first=pl.col("ts").min(), last=pl.col("ts").max())
            .filter(pl.col("zero") & (pl.col("n") >= cfg.stale_bars)).sort("first"))
    if runs.height:
        bars_n = int(runs.get_column("n").sum())
        r0 = runs.row(0, named=True)
        out.append(issue("volume.stale_feed", bars_n,
                         f"{runs.height} run(s) of >= {cfg.stale_bars} identical zero-volume {timeframe} bars "
                         f"({bars_n} bars); first from {_iso_ms(r0['first'])} ({r0['n']} bars)",
                         _dt(r0["first"]), _dt(runs.get_column("last").max())))
    return out


def _clock(timeframe: str, now: datetime, config: ValidationConfig | None,
           calendar: str) -> tuple[int, ValidationConfig, int, int]:
    """The checked arguments every entry point shares: bar length, config, now and the future horizon (ms)."""
    tf = timeframe_ms(timeframe)
    if calendar not in ("crypto", "equity"):
        raise InvalidInput(f"unknown calendar {calendar!r}; expected 'crypto' or 'equity'")
    if now.tzinfo is None:
        raise InvalidInput("now must be timezone-aware (UTC)")
    cfg = config or ValidationConfig()
    now_ms = (now - _EPOCH) // timedelta(milliseconds=1)
    return tf, cfg, now_ms, now_ms + cfg.future_tolerance_bars * tf


def validate_bars(
    raw: pl.DataFrame | Any,
    *,
    timeframe: str,
    now: datetime,
    config: ValidationConfig | None = None,
    expect_complete_last: bool = False,
    calendar: Calendar = "crypto",
) -> ValidationReport:
    """Judge one batch of bars against the contract; never raises on content.

    ``raw`` is a polars or pandas frame from a normaliser or a provider (text or typed columns).
    ``now`` decides future and still-open bars. ``expect_complete_last``: the caller promises
    every bar is closed (e.g. a historical file), so a still-open bar is quarantined rather than
    quietly dropped. ``calendar="equity"``: daily gaps skip weekends and tolerate holiday runs of
    up to three weekdays; intraday gaps are judged within a day and bars may sit on :30.
    """
    tf, cfg, now_ms, horizon_ms = _clock(timeframe, now, config, calendar)
    df = to_polars(raw)
    parsed = parse(df)
    if not isinstance(parsed, Parsed):
        return rejected_report(df.height, parsed)
    return _validate_parsed(parsed, tf, timeframe, now_ms, horizon_ms, cfg, expect_complete_last, calendar)


def validate_bar_batches(
    batches: Iterator[pl.DataFrame],
    raw_rows: RawRows,
    *,
    timeframe: str,
    now: datetime,
    config: ValidationConfig | None = None,
    expect_complete_last: bool = False,
    calendar: Calendar = "crypto",
) -> ValidationReport:
    """``validate_bars`` of a payload given as consecutive batches (a file too large to hold as
    text): each batch is parsed as it comes, the whole-column verdicts and the series rules
    (order, duplicates, gaps, spikes, stale runs) run once over the typed rows of all of them, and
    quarantined rows are read back as received through ``raw_rows``. Same report as
    ``validate_bars`` of the concatenated batches; row numbers are relative to the payload."""
    tf, cfg, now_ms, horizon_ms = _clock(timeframe, now, config, calendar)
    parsed, rows = parse_batches(batches, source=raw_rows)
    if not isinstance(parsed, Parsed):
        return rejected_report(rows, parsed)
    return _validate_parsed(parsed, tf, timeframe, now_ms, horizon_ms, cfg, expect_complete_last, calendar)


def _validate_parsed(p: Parsed, tf: int, timeframe: str, now_ms: int, horizon_ms: int, cfg: ValidationConfig,
                     expect_complete_last: bool, calendar: str) -> ValidationReport:
    f = p.frame
    issues = list(p.issues)
    rules = _row_rules(tf, _grid_ms(tf, calendar), timeframe, now_ms, horizon_ms)
    f = f.with_columns(_bad=pl.any_horizontal([m for _, m, _ in rules]).fill_null(False))
    bad = f.filter(pl.col("_bad")).with_columns(
        rule=pl.coalesce([pl.when(m).then(pl.lit(code)) for code, m, _ in rules]),
        detail=pl.concat_str([pl.when(m).then(d) for _, m, d in rules], separator="; ", ignore_nulls=True),
    )
    good = f.filter(~pl.col("_bad")).select("row_id", "ts", *VALUE_COLUMNS)
    quarantine_parts: list[pl.DataFrame] = [bad.select("row_id", "rule", "detail", "ts", *VALUE_COLUMNS)]
    dropped_parts: list[pl.DataFrame] = []

    # Bars not closed yet at ``now`` (within the future tolerance): drop, or quarantine if unexpected.
    is_open = pl.col("ts") + tf > now_ms
    open_rows = good.filter(is_open)
    good = good.filter(~is_open)
    if open_rows.height:
        code = "ts.open_candle_unexpected" if expect_complete_last else "ts.open_candle"
        open_rows = open_rows.with_columns(
            rule=pl.lit(code),
            detail=pl.format(f"bar {{}} closes after now ({_iso_ms(now_ms)})", _iso(pl.col("ts"))))
        (quarantine_parts if expect_complete_last else dropped_parts).append(
            open_rows.select("row_id", "rule", "detail", "ts", *VALUE_COLUMNS))

    # Order as received, judged on the rows that survived the row rules.
    ts = good.get_column("ts")
    n_unsorted = int((ts < ts.cum_max().shift(1)).sum()) if good.height > 1 else 0
    if n_unsorted:
        issues.append(issue("ts.unsorted", n_unsorted,
                            f"{n_unsorted} row(s) earlier than a row before them; sorted by ts"))
    good = good.sort(["ts", "row_id"])

    dup = good.get_column("ts").is_duplicated()
    if dup.any():
        d = good.filter(dup).with_columns(
            _distinct=pl.struct(list(VALUE_COLUMNS)).n_unique().over("ts"),
            _first=pl.col("row_id").min().over("ts"),
            _copies=pl.len().over("ts"),
        )
        conflict = d.filter(pl.col("_distinct") > 1).with_columns(
            rule=pl.lit("ts.duplicate_conflict"),
            detail=pl.format("{} copies of ts {} with {} different values", pl.col("_copies"),
                             _iso(pl.col("ts")), pl.col("_distinct")))
        same = d.filter((pl.col("_distinct") == 1) & (pl.col("row_id") != pl.col("_first"))).with_columns(
            rule=pl.lit("ts.duplicate_identical"),
            detail=pl.format("identical copy of row {} (ts {})", pl.col("_first"), _iso(pl.col("ts"))))
        quarantine_parts.append(conflict.select("row_id", "rule", "detail", "ts", *VALUE_COLUMNS))
        dropped_parts.append(same.select("row_id", "rule", "detail", "ts", *VALUE_COLUMNS))
        gone = pl.concat([conflict.get_column("row_id"), same.get_column("row_id")])
        good = good.filter(~pl.col("row_id").is_in(gone.implode()))

    # Gaps: against every aligned, closed ts the source sent, whatever its values.
    present = (f.filter(pl.col("ts").is_not_null() & pl.col("ts_bad").is_null() & ~pl.col("ts_offgrid")
                        & ((pl.col("ts") % _grid_ms(tf, calendar)) == 0) & (pl.col("ts") + tf <= now_ms))
               .get_column("ts").unique().sort())
    gap = _gaps(present, tf, timeframe, calendar, cfg.max_gap_report)

    spike_np, series_issues = _series_checks(good, cfg, _max_step_ms(tf, calendar))
    if spike_np.any():
        spike = pl.Series(spike_np)
        sp = good.with_columns(_x=pl.col("close") / pl.col("close").shift(1)).filter(spike)
        details = [f"close {c} is x{x:.4g} the previous close and reverses next bar"
                   for c, x in zip(sp["close"], sp["_x"], strict=True)]  # few rows: plain Python
        sp = sp.with_columns(rule=pl.lit("price.spike"), detail=pl.Series(details, dtype=pl.Utf8))
        quarantine_parts.append(sp.select("row_id", "rule", "detail", "ts", *VALUE_COLUMNS))
        good = good.filter(~spike)

    quarantined = pl.concat([q.cast({"ts": pl.Int64}) for q in quarantine_parts])
    dropped = pl.concat(dropped_parts) if dropped_parts else pl.DataFrame(
        schema={"row_id": pl.Int64, "rule": pl.Utf8, "detail": pl.Utf8, "ts": pl.Int64})
    row_issues = _group_issues(pl.concat([quarantined.select("rule", "detail", "ts", "row_id"),
                                          dropped.select("rule", "detail", "ts", "row_id")]))
    issues += row_issues
    if gap:
        issues.append(gap)
    issues += series_issues
    issues += _volume_flags(good, cfg, timeframe)
    order = {code: i for i, code in enumerate(RULES)}
    issues.sort(key=lambda i: order[i.rule])

    accepted = good.select(
        pl.col("ts").cast(pl.Datetime("ms", "UTC")), *VALUE_COLUMNS, "row_id").cast(ACCEPTED_SCHEMA)  # type: ignore[arg-type]
    dropped_out = dropped.select("row_id", "rule", "detail").sort("row_id").cast(DROPPED_SCHEMA)  # type: ignore[arg-type]
    return ValidationReport(
        accepted=accepted,
        dropped=dropped_out,
        quarantined=_quarantine(quarantined, p.source),
        issues=issues,
        batch_rejected=False,
        reject_reason=None,
        rows_in=p.frame.height,
    )

