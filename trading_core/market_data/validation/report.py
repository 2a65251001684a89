"""What the validator returns: the accepted bars, the rows left out and why, and every finding."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import polars as pl

from ..schema import OHLCV_SCHEMA
from .rules import RULES, Action

ACCEPTED_SCHEMA: dict[str, pl.DataType] = {**OHLCV_SCHEMA, "row_id": pl.Int64()}
DROPPED_SCHEMA: dict[str, pl.DataType] = {"row_id": pl.Int64(), "rule": pl.Utf8(), "detail": pl.Utf8()}
QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "row_id": pl.Int64(), "rule": pl.Utf8(), "detail": pl.Utf8(), **OHLCV_SCHEMA, "raw": pl.Utf8(),
}


@dataclass(frozen=True)
class Issue:
    """One finding: a rule, what was done, how many rows (or bars) and where in time."""

    rule: str
    action: Action
    count: int
    first_ts: datetime | None
    last_ts: datetime | None
    detail: str


def issue(rule: str, count: int, detail: str, first_ts: datetime | None = None,
          last_ts: datetime | None = None) -> Issue:
    """Build an issue whose action comes from the registry, so code and action never disagree."""
    return Issue(rule, RULES[rule].action, int(count), first_ts, last_ts, detail)


@dataclass
class ValidationReport:
    """The validator's verdict on one batch.

    ``accepted`` rows are canonical, sorted, unique, finite and aligned; together with ``dropped``
    and ``quarantined`` (by ``row_id``) they partition the input unless ``batch_rejected``, in
    which case all three are empty and every input row counts as rejected.
    """

    accepted: pl.DataFrame
    dropped: pl.DataFrame
    quarantined: pl.DataFrame
    issues: list[Issue] = field(default_factory=list)
    batch_rejected: bool = False
    reject_reason: str | None = None
    rows_in: int = 0

    @property
    def ok(self) -> bool:
        """Nothing refused: not rejected and no blocking (reject/quarantine) finding."""
        return not self.batch_rejected and not any(i.action.blocking for i in self.issues)

    def rule_counts(self) -> dict[str, int]:
        """Rows (or bars, for gaps) per rule code."""
        out: dict[str, int] = {}
        for i in self.issues:
            out[i.rule] = out.get(i.rule, 0) + i.count
        return out

    @property
    def counts(self) -> dict[str, int]:
        """Row counts by outcome: accepted (write candidates), dropped, quarantined, repaired, rejected."""
        return {
            "rows_in": self.rows_in,
            "accepted": self.accepted.height,
            "dropped": self.dropped.height,
            "quarantined": self.quarantined.height,
            "repaired": sum(i.count for i in self.issues if i.action is Action.REPAIR),
            "rejected": self.rows_in if self.batch_rejected else 0,
        }

    def issue(self, rule: str) -> Issue | None:
        """The finding for ``rule``, if any (each rule appears at most once)."""
        return next((i for i in self.issues if i.rule == rule), None)


def rejected_report(rows_in: int, issues: list[Issue]) -> ValidationReport:
    """A whole-batch rejection: empty outputs, the reasons joined into one line."""
    reasons = [i for i in issues if i.action is Action.REJECT_BATCH]
    reason = "; ".join(f"{i.rule}: {i.detail}" for i in reasons) or None
    return ValidationReport(
        accepted=pl.DataFrame(schema=ACCEPTED_SCHEMA),
        dropped=pl.DataFrame(schema=DROPPED_SCHEMA),
        quarantined=pl.DataFrame(schema=QUARANTINE_SCHEMA),
        issues=issues,
        batch_rejected=True,
        reject_reason=reason,
        rows_in=rows_in,
    )
