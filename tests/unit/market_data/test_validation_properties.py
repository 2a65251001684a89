"""T7: fuzz the validator with frames carrying injected faults.

It never raises; what it accepts satisfies every invariant; accepted, dropped and quarantined rows
partition the input (all empty when the batch is rejected). Derandomised, so runs are repeatable.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trading_core.market_data.validation import ValidationReport, validate_bars
from trading_core.timeframes import timeframe_ms

NOW = datetime(2019, 6, 1, tzinfo=UTC)
T0_MS = int(datetime(2019, 5, 20, tzinfo=UTC).timestamp() * 1000)
COLS = ("ts", "open", "high", "low", "close", "volume")
FAULTS = ("nan", "inf", "neg", "zero", "swap_hl", "open_out", "dup_same", "dup_diff", "misalign", "future",
          "spike", "step", "zero_vol", "garbage_ts", "garbage_px", "null", "seconds_ts")


@st.composite
def faulty_frames(draw: st.DrawFn) -> tuple[pl.DataFrame, str]:
    timeframe = draw(st.sampled_from(["1m", "1h", "1d"]))
    tf = timeframe_ms(timeframe)
    n = draw(st.integers(0, 40))
    start = (T0_MS // tf) * tf - draw(st.integers(0, 60)) * tf
    price = draw(st.sampled_from([0.05, 4100.0, 2500.0, 1e6]))
    rows: list[list[object]] = []
    for i in range(n):
        c = price * (1 + draw(st.floats(-0.02, 0.02)))
        o = price
        h, lo = max(o, c) * 1.001, min(o, c) * 0.999
        rows.append([start + i * tf, o, h, lo, c, draw(st.floats(0.0, 1e4))])
        price = c
    for _ in range(draw(st.integers(0, 6)) if n else 0):
        fault, i = draw(st.sampled_from(FAULTS)), draw(st.integers(0, n - 1))
        r = rows[i]
        if not all(isinstance(v, int | float) for v in r):
            continue  # already broken by an earlier fault
        if fault == "nan":
            r[draw(st.integers(1, 5))] = math.nan
        elif fault == "inf":
            r[draw(st.integers(1, 5))] = draw(st.sampled_from([math.inf, -math.inf]))
        elif fault == "neg":
            r[draw(st.integers(1, 5))] = -abs(float(r[1]))  # type: ignore[arg-type]
        elif fault == "zero":
            r[draw(st.integers(1, 4))] = 0.0
        elif fault == "swap_hl":
            r[2], r[3] = r[3], r[2]
        elif fault == "open_out":
            r[1] = float(r[2]) * 1.05  # type: ignore[arg-type]
        elif fault == "dup_same":
            rows.append(list(r))
        elif fault == "dup_diff":
            rows.append([r[0], r[1], r[2], r[3], float(r[4]) * 1.0001, r[5]])  # type: ignore[arg-type]
        elif fault == "misalign":
            r[0] = int(r[0]) + draw(st.integers(1, tf - 1))  # type: ignore[arg-type]
        elif fault == "future":
            r[0] = int(NOW.timestamp() * 1000) + draw(st.integers(-3, 50)) * tf
        elif fault in ("spike", "step"):
            k = draw(st.sampled_from([1.5, 100.0, 0.01, 0.5, 4.0]))
            for j in range(i, i + 1 if fault == "spike" else n):
                rows[j][1:5] = [x * k if isinstance(x, float) else x for x in rows[j][1:5]]
        elif fault == "zero_vol":
            r[5] = 0.0
        elif fault == "garbage_ts":
            r[0] = draw(st.sampled_from(["abc", "", "2019-13-01T00:00:00Z", "1.5", "-5"]))
        elif fault == "garbage_px":
            r[draw(st.integers(1, 5))] = draw(st.sampled_from(["1,234.5", "abc", "", " ", "1e400"]))
        elif fault == "null":
            r[draw(st.integers(0, 5))] = None
        elif fault == "seconds_ts":
            r[0] = int(r[0]) // 1000  # type: ignore[arg-type]
    if draw(st.booleans()):
        rows = draw(st.permutations(rows))
    as_text = any(isinstance(v, str) for r in rows for v in r) or draw(st.booleans())
    ts_style = draw(st.sampled_from(["ms", "iso", "iso_offset"]))
    if as_text:
        def cell(j: int, v: object) -> str | None:
            if v is None or isinstance(v, str):
                return v
            if j == 0 and ts_style != "ms":
                dt = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=int(v))  # type: ignore[arg-type]
                return dt.isoformat() if ts_style == "iso_offset" else dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            return repr(v)
        data = {c: pl.Series(c, [cell(j, r[j]) for r in rows], dtype=pl.Utf8) for j, c in enumerate(COLS)}
    else:
        data = {"ts": pl.Series("ts", [r[0] for r in rows], dtype=pl.Int64)}
        data |= {c: pl.Series(c, [r[j] for r in rows], dtype=pl.Float64) for j, c in enumerate(COLS) if j}
    df = pl.DataFrame(data)
    if not as_text and draw(st.booleans()):
        df = df.with_columns(pl.col("ts").cast(pl.Datetime("ms", "UTC")))
    if draw(st.integers(0, 9)) == 0:
        df = df.drop(draw(st.sampled_from(COLS)))
    if draw(st.integers(0, 9)) == 0:
        df = df.with_columns(extra=pl.lit("x"))
    return df, timeframe


def check_invariants(df: pl.DataFrame, report: ValidationReport, timeframe: str) -> None:
    tf = timeframe_ms(timeframe)
    a = report.accepted
    if report.batch_rejected:
        assert a.height == report.dropped.height == report.quarantined.height == 0
        assert report.reject_reason
        return
    assert a.schema["ts"] == pl.Datetime("ms", "UTC")
    ids = [*a["row_id"], *report.dropped["row_id"], *report.quarantined["row_id"]]
    assert sorted(ids) == list(range(df.height)), "accepted/dropped/quarantined must partition the input"
    if a.height == 0:
        return
    for c in ("open", "high", "low", "close"):
        assert a[c].is_finite().all() and (a[c] > 0).all()
    assert a["volume"].is_finite().all() and (a["volume"] >= 0).all()
    lo, hi = pl.min_horizontal("open", "close"), pl.max_horizontal("open", "close")
    assert a.select(((pl.col("low") <= lo) & (lo <= hi) & (hi <= pl.col("high"))).all()).item()
    ms = a["ts"].dt.epoch("ms")
    assert ms.is_sorted() and ms.n_unique() == a.height
    assert (ms % tf == 0).all()
    now_ms = int(NOW.timestamp() * 1000)
    assert (ms + tf <= now_ms).all(), "no open or future bar is accepted"


FUZZ = settings(max_examples=200, derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FUZZ
@given(faulty_frames())
def test_validator_never_raises_and_accepted_rows_satisfy_every_invariant(case: tuple[pl.DataFrame, str]) -> None:
    df, timeframe = case
    report = validate_bars(df, timeframe=timeframe, now=NOW)
    check_invariants(df, report, timeframe)


@FUZZ
@given(faulty_frames(), st.sampled_from(["crypto", "equity"]), st.booleans())
def test_validator_is_deterministic_for_calendars_and_completeness(
        case: tuple[pl.DataFrame, str], calendar: str, complete: bool) -> None:
    df, timeframe = case
    kw = {"timeframe": timeframe, "now": NOW, "calendar": calendar, "expect_complete_last": complete}
    r1, r2 = validate_bars(df, **kw), validate_bars(df.clone(), **kw)  # type: ignore[arg-type]
    assert r1.issues == r2.issues and r1.accepted.equals(r2.accepted) and r1.quarantined.equals(r2.quarantined)
    if calendar == "crypto":
        check_invariants(df, r1, timeframe)


@pytest.mark.slow
@settings(max_examples=10_000, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(faulty_frames())
def test_validator_fuzz_10k_frames(case: tuple[pl.DataFrame, str]) -> None:
    df, timeframe = case
    check_invariants(df, validate_bars(df, timeframe=timeframe, now=NOW), timeframe)
