"""The rule registry: every finding the validator can make, with a stable code and one action.

Codes are stored in ``market.quality_issues`` and ``market.quarantine`` and shown to users, so they
never change meaning; add a new code rather than repurpose an old one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Action(StrEnum):
    """What the validator did about a finding, from most to least severe."""

    REJECT_BATCH = "reject_batch"  # nothing of the batch is written
    DROP = "drop"  # rows left out on purpose (harmless: a duplicate, a still-open candle)
    QUARANTINE = "quarantine"  # rows kept aside for review; the blocking check fails
    REPAIR = "repair"  # the batch was fixed losslessly (e.g. sorted) and the fix reported
    FLAG = "flag"  # rows accepted as they are; the finding is recorded

    @property
    def blocking(self) -> bool:
        """True when data was refused: the ingest asset check fails and downstream stops."""
        return self in (Action.REJECT_BATCH, Action.QUARANTINE)


@dataclass(frozen=True)
class Rule:
    code: str
    action: Action
    description: str


_A = Action
_RULE_LIST: tuple[Rule, ...] = (
    # batch level: the payload cannot be interpreted as bars at all
    Rule("payload.empty", _A.REJECT_BATCH, "no rows (empty payload or header only)"),
    Rule("schema.missing_column", _A.REJECT_BATCH, "a required column (ts, open, high, low, close, volume) is absent"),
    Rule("schema.ambiguous_column", _A.REJECT_BATCH, "two columns map to the same canonical column"),
    Rule("schema.wrong_delimiter", _A.REJECT_BATCH, "a single column whose name holds ';', tab or '|': wrong CSV delimiter"),
    Rule("dtype.unparseable_column", _A.REJECT_BATCH, "a column has no parseable value (non-numeric, all missing, unsupported type)"),
    Rule("ts.epoch_seconds", _A.REJECT_BATCH, "numeric ts are epoch seconds; milliseconds are expected"),
    Rule("ts.epoch_unit", _A.REJECT_BATCH, "numeric ts are epoch micro- or nanoseconds; milliseconds are expected"),
    Rule("ts.tz_naive", _A.REJECT_BATCH, "ts without a UTC offset: the instant is ambiguous"),
    # row level: the row is set aside for review, never repaired silently
    Rule("row.malformed", _A.QUARANTINE, "the source row could not be split into the expected fields"),
    Rule("ts.unparseable", _A.QUARANTINE, "ts missing, not a timestamp, fractional, outside the epoch-ms range or before 1900"),
    Rule("dtype.unparseable_value", _A.QUARANTINE, "a price or volume that is not a plain number (e.g. '1,234.5', 'abc')"),
    Rule("ohlcv.non_finite", _A.QUARANTINE, "NaN, inf or missing open/high/low/close/volume"),
    Rule("ohlc.non_positive", _A.QUARANTINE, "a price <= 0"),
    Rule("volume.negative", _A.QUARANTINE, "volume < 0"),
    Rule("ohlc.high_below_low", _A.QUARANTINE, "high < low"),
    Rule("ohlc.open_outside_range", _A.QUARANTINE, "open outside [low, high] (never clipped)"),
    Rule("ohlc.close_outside_range", _A.QUARANTINE, "close outside [low, high] (never clipped)"),
    Rule("ts.misaligned", _A.QUARANTINE, "ts is not on the timeframe grid (daily: 00:00 UTC)"),
    Rule("ts.future", _A.QUARANTINE, "ts later than now + future_tolerance_bars timeframes"),
    Rule("ts.open_candle", _A.DROP, "the bar is still open (ts + timeframe > now)"),
    Rule("ts.open_candle_unexpected", _A.QUARANTINE, "a still-open bar in a batch declared complete"),
    Rule("ts.duplicate_identical", _A.DROP, "the same ts again with identical values: one copy kept"),
    Rule("ts.duplicate_conflict", _A.QUARANTINE, "the same ts with different values: every copy quarantined"),
    Rule("price.spike", _A.QUARANTINE, "single-bar move > k x rolling MAD and spike_min_move, reversed next bar"),
    # batch repairs and flags: rows accepted, the finding recorded
    Rule("ts.unsorted", _A.REPAIR, "rows were not in ts order; sorted"),
    Rule("schema.column_alias", _A.FLAG, "a column was recognised by an alias (e.g. timestamp -> ts)"),
    Rule("schema.extra_column", _A.FLAG, "columns outside the OHLCV schema were ignored"),
    Rule("gap.missing_bars", _A.FLAG, "bars missing between the first and last ts (never synthesised)"),
    Rule("volume.zero", _A.FLAG, "zero-volume bars (exchanges emit them)"),
    Rule("volume.stale_feed", _A.FLAG, ">= stale_bars consecutive bars with identical OHLC and zero volume"),
    Rule("price.step_100x", _A.FLAG, "price jumps ~100x or ~1/100 and stays (cents/dollars, pence/pounds)"),
    Rule("price.split_step", _A.FLAG, "price steps by a split ratio (2:1, 3:1, 4:1, ...) and stays: unapplied split?"),
)

RULES: dict[str, Rule] = {r.code: r for r in _RULE_LIST}
