"""Asset checks of the ingest assets, evaluated inside the materialisation (one pass over the data).

* ``<asset>_valid`` (blocking, ERROR): the validation contract of trading_core. It fails when a
  batch of this run was rejected or had rows quarantined (or any issue whose action refuses data);
  a failure stops every downstream step in the run and, through ``all_deps_blocking_checks_passed``,
  keeps automation from publishing the serving snapshot. Its text and metadata also describe what
  the store holds for the window *whoever loaded it* (``trading ingest sample`` before Dagster
  started, an earlier run): rows held out in ``market.quarantine`` are listed by symbol and rule.
  Those rows are not in ``market.bars`` (what downstream reads holds only validated bars), so a
  past quarantine does not fail today's run; the run that wrote it failed.
* ``<asset>_fresh`` (WARN, not blocking): each symbol's last stored bar is no older than a
  tolerance before its reference time. Stale data is still correct data, so it warns rather than
  blocks; and it is deliberately *not* declared blocking, because Dagster's
  ``all_deps_blocking_checks_passed`` treats any failed blocking check (even a WARN) as "not passed"
  and would stop the snapshot.

The reference time of a symbol is the end of the partition window or now, whichever is earlier;
offline (the ``sample`` provider, a frozen real history) it is the end of the window or the close
of the sample's last bar of that symbol, whichever is earlier: a 2019 sample can never be "fresh" by
the clock, but the store can hold everything the sample has. The text and the ``reference``
metadata show the same per-symbol times.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import dagster as dg

from trading_core.market_data.ingest import IngestResult
from trading_core.warehouse.bars import HeldRows


def valid_check_name(asset: str) -> str:
    return f"{asset}_valid"


def fresh_check_name(asset: str) -> str:
    return f"{asset}_fresh"


def check_specs(asset: str) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            valid_check_name(asset), asset=asset, blocking=True,
            description="Validation contract: no batch of the run rejected, no row quarantined, no "
                        "refused data; lists rows held in quarantine by any earlier load. Blocks "
                        "downstream assets when it fails.",
        ),
        dg.AssetCheckSpec(
            fresh_check_name(asset), asset=asset, blocking=False,
            description="Each symbol's last stored bar is within the freshness tolerance of the "
                        "partition end or now (offline: or the sample history's end), whichever "
                        "is earlier. Warns only.",
        ),
    ]


def rule_counts(results: Sequence[IngestResult]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for r in results:
        total.update(r.rule_counts)
    return dict(sorted(total.items()))


def blocking_reasons(result: IngestResult) -> list[str]:
    """Why one symbol's batch fails the contract; empty when it passes."""
    reasons: list[str] = []
    if result.batch_rejected:
        reasons.append(f"batch rejected: {result.reject_reason or 'no reason given'}")
    if result.quarantined:
        reasons.append(f"{result.quarantined} row(s) quarantined")
    reasons.extend(f"rule {r}" for r in result.blocking_failures
                   if not (result.batch_rejected or result.quarantined))
    return reasons


def _held_text(held: Mapping[str, HeldRows]) -> str:
    parts = []
    for sym, h in sorted(held.items()):
        rules = ", ".join(f"{r} {n}" for r, n in sorted(h.rules.items()))
        span = (f"; {h.first_ts.date()} .. {h.last_ts.date()}" if h.first_ts and h.last_ts else "")
        parts.append(f"{sym} {h.rows} ({rules}{span})")
    return "; ".join(parts)


def validity_result(asset: str, results: Sequence[IngestResult],
                    held: Mapping[str, HeldRows] | None = None) -> dg.AssetCheckResult:
    """Pass/fail from this run's batches; ``held``: rows of the window in ``market.quarantine``."""
    held = dict(held or {})
    failures = {r.symbol: blocking_reasons(r) for r in results if blocking_reasons(r) or not r.ok}
    if failures:
        text = "; ".join(f"{s}: {', '.join(v) or 'refused data'}" for s, v in failures.items())
    else:
        text = "every batch of this run passed the validation contract"
    if held:
        text += (f"; market.bars holds only validated bars, {sum(h.rows for h in held.values())} row(s) "
                 f"are held out in market.quarantine: {_held_text(held)}")
    else:
        text += "; no row of this window is held in quarantine"
    return dg.AssetCheckResult(
        check_name=valid_check_name(asset),
        asset_key=asset,
        passed=not failures,
        severity=dg.AssetCheckSeverity.ERROR,
        description=text,
        metadata={
            "rule_counts": dg.MetadataValue.json(rule_counts(results)),
            "blocking_rules": dg.MetadataValue.json(
                sorted({rule for r in results for rule in r.blocking_failures})),
            "rows_quarantined": sum(r.quarantined for r in results),
            "rows_held_in_quarantine": sum(h.rows for h in held.values()),
            "held_in_quarantine": dg.MetadataValue.json({
                s: {"rows": h.rows, "rules": h.rules,
                    "first_ts": h.first_ts.isoformat() if h.first_ts else None,
                    "last_ts": h.last_ts.isoformat() if h.last_ts else None} for s, h in sorted(held.items())}),
            "batches_rejected": sum(1 for r in results if r.batch_rejected),
            "symbols_failed": dg.MetadataValue.json(sorted(failures)),
        },
    )


def freshness_result(
    asset: str,
    *,
    last_bars: Mapping[str, datetime | None],
    references: Mapping[str, datetime],
    bar: timedelta,
    tolerance: timedelta,
    offline: bool,
) -> dg.AssetCheckResult:
    """Compare each symbol's last stored bar with its reference time (see the module docstring).

    The age of a series is the time between the close of its last stored bar and its reference:
    a daily partition of hourly bars backfilled years later is fresh, while yesterday's partition
    whose feed stopped at noon is not. Offline, a symbol with no bars stored is not stale when the
    sample has none before its reference either.
    """
    stale: dict[str, str] = {}
    ages: dict[str, str] = {}
    for symbol, last in last_bars.items():
        ref = references[symbol]
        if last is None:
            ages[symbol] = "no bars stored"
            if not offline:
                stale[symbol] = "no bars stored"
            continue
        age = max(timedelta(0), ref - (last + bar))
        ages[symbol] = str(age)
        if age > tolerance:
            stale[symbol] = f"last bar {last.isoformat()} is {age} older than {ref.isoformat()} (tolerance {tolerance})"
    basis = ("offline sample data: measured against the partition end or the end of the sample history"
             if offline else "measured against the partition end or now")
    refs = {s: references[s].isoformat() for s in last_bars}
    distinct = sorted(set(refs.values()))
    basis += (f", whichever is earlier ({distinct[0]})" if len(distinct) == 1 else
              ", whichever is earlier (" + ", ".join(f"{s}: {t}" for s, t in refs.items()) + ")")
    return dg.AssetCheckResult(
        check_name=fresh_check_name(asset),
        asset_key=asset,
        passed=not stale,
        severity=dg.AssetCheckSeverity.WARN,
        description=basis if not stale else "; ".join(f"{s}: {v}" for s, v in stale.items()) + f" ({basis})",
        metadata={
            "reference": dg.MetadataValue.json(refs),
            "tolerance": str(tolerance),
            "age": dg.MetadataValue.json(ages),
            "mode": "offline" if offline else "live",
        },
    )
