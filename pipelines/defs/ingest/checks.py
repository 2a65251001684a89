"""Asset checks of the ingest assets, evaluated inside the materialisation (one pass over the data).

* ``<asset>_valid`` (blocking, ERROR): the validation contract of trading_core. It fails when a
  batch was rejected or rows were quarantined (or any issue whose action refuses data); a failure
  stops every downstream step in the run and, through ``all_deps_blocking_checks_passed``, keeps
  automation from publishing the serving snapshot.
* ``<asset>_fresh`` (WARN, not blocking): the last stored bar is no older than a tolerance before
  the reference time. Stale data is still correct data, so it warns rather than blocks; and it is
  deliberately *not* declared blocking, because Dagster's ``all_deps_blocking_checks_passed``
  treats any failed blocking check (even a WARN) as "not passed" and would stop the snapshot.

Offline (the ``sample`` provider, a frozen real history) the reference time is the source's
horizon, not the clock: a 2019 sample can never be "fresh" by the clock, and the run just asked
the source for everything up to the window end and stored what it had, so the store is as fresh
as the source can make it. The check's metadata says which reference was used.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import dagster as dg

from trading_core.market_data.ingest import IngestResult


def valid_check_name(asset: str) -> str:
    return f"{asset}_valid"


def fresh_check_name(asset: str) -> str:
    return f"{asset}_fresh"


def check_specs(asset: str) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            valid_check_name(asset), asset=asset, blocking=True,
            description="Validation contract: no rejected batch, no quarantined rows, no refused "
                        "data. Blocks downstream assets when it fails.",
        ),
        dg.AssetCheckSpec(
            fresh_check_name(asset), asset=asset, blocking=False,
            description="The last stored bar is within the freshness tolerance of the partition "
                        "end (or now); offline, of the sample history's end. Warns only.",
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


def validity_result(asset: str, results: Sequence[IngestResult]) -> dg.AssetCheckResult:
    failures = {r.symbol: blocking_reasons(r) for r in results if blocking_reasons(r) or not r.ok}
    return dg.AssetCheckResult(
        check_name=valid_check_name(asset),
        asset_key=asset,
        passed=not failures,
        severity=dg.AssetCheckSeverity.ERROR,
        description=("all batches passed the validation contract" if not failures else
                     "; ".join(f"{s}: {', '.join(v) or 'refused data'}" for s, v in failures.items())),
        metadata={
            "rule_counts": dg.MetadataValue.json(rule_counts(results)),
            "blocking_rules": dg.MetadataValue.json(
                sorted({rule for r in results for rule in r.blocking_failures})),
            "rows_quarantined": sum(r.quarantined for r in results),
            "batches_rejected": sum(1 for r in results if r.batch_rejected),
            "symbols_failed": dg.MetadataValue.json(sorted(failures)),
        },
    )


def freshness_result(
    asset: str,
    *,
    last_bars: Mapping[str, datetime | None],
    window_end: datetime,
    now: datetime,
    bar: timedelta,
    tolerance: timedelta,
    offline: bool,
) -> dg.AssetCheckResult:
    """Compare each symbol's last stored bar with the reference time (see the module docstring).

    The age of a series is the time between the close of its last stored bar and the reference
    (``min(window end, now)``): a daily partition of hourly bars backfilled years later is fresh,
    while yesterday's partition whose feed stopped at noon is not.
    """
    reference = min(window_end, now)
    stale: dict[str, str] = {}
    ages: dict[str, str] = {}
    for symbol, last in last_bars.items():
        if last is None:
            ages[symbol] = "no bars stored"
            if not offline:
                stale[symbol] = "no bars stored"
            continue
        age = max(timedelta(0), reference - (last + bar))
        ages[symbol] = str(age)
        if age > tolerance and not offline:
            stale[symbol] = f"last bar {last.isoformat()} is {age} old (tolerance {tolerance})"
    stored = [t for t in last_bars.values() if t is not None]
    horizon = max(stored) if stored else None
    note = ("offline sample data: measured against the end of the sample history "
            f"({horizon.isoformat() if horizon else 'none stored'}), not the clock"
            if offline else f"measured against {reference.isoformat()}")
    return dg.AssetCheckResult(
        check_name=fresh_check_name(asset),
        asset_key=asset,
        passed=not stale,
        severity=dg.AssetCheckSeverity.WARN,
        description=note if not stale else "; ".join(f"{s}: {v}" for s, v in stale.items()),
        metadata={
            "reference": reference.isoformat(),
            "tolerance": str(tolerance),
            "age_by_clock": dg.MetadataValue.json(ages),
            "mode": "offline" if offline else "live",
        },
    )
