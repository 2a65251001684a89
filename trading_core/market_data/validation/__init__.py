"""The validation contract applied to every batch of bars from every source.

See docs in ``core.validate_bars`` and the rule registry in ``rules.RULES``; reliability-and-security
section 3 states the contract (reject / quarantine / drop / repair / flag).
"""

from __future__ import annotations

from .core import RawRows, raw_json, validate_bar_batches, validate_bars
from .parse import ALIASES, MALFORMED_COLUMN
from .report import Issue, ValidationReport
from .rules import RULES, Action, Rule

__all__ = ["ALIASES", "MALFORMED_COLUMN", "RULES", "Action", "Issue", "RawRows", "Rule", "ValidationReport",
           "raw_json", "validate_bar_batches", "validate_bars"]
