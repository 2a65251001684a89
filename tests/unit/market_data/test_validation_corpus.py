"""T6: the malformed-data corpus. Every file is refused, quarantined, repaired or carries the flag it
was built to carry; nothing is silently accepted; every rule in the registry is exercised."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from trading_core.errors import InvalidInput
from trading_core.market_data.normalize import read_bar_file
from trading_core.market_data.validation import RULES, Action, ValidationReport, validate_bars

CORPUS = Path(__file__).resolve().parents[2] / "fixtures" / "bad_inputs"
MANIFEST: list[dict[str, Any]] = yaml.safe_load((CORPUS / "manifest.yaml").read_text())["files"]


def _run(entry: dict[str, Any]) -> ValidationReport:
    raw = read_bar_file(CORPUS / entry["file"])
    return validate_bars(
        raw, timeframe=entry["timeframe"], now=datetime.fromisoformat(entry["now"].replace("Z", "+00:00")),
        calendar=entry.get("calendar", "crypto"), expect_complete_last=entry.get("expect_complete_last", False))


def test_corpus_has_at_least_40_files_and_the_manifest_matches_the_folder() -> None:
    on_disk = {p.name for p in CORPUS.iterdir() if p.suffix in (".json", ".csv", ".parquet")}
    assert len(MANIFEST) >= 40
    assert {e["file"] for e in MANIFEST} == on_disk


@pytest.mark.parametrize("entry", MANIFEST, ids=[e["file"] for e in MANIFEST])
def test_corpus_file_raises_its_expected_rules_and_is_never_silently_accepted(entry: dict[str, Any]) -> None:
    if entry.get("read_error"):
        with pytest.raises(InvalidInput, match=entry["file"]):
            read_bar_file(CORPUS / entry["file"])
        return
    report = _run(entry)
    got = {i.rule: i for i in report.issues}
    for exp in entry["expect"]:
        assert exp["rule"] in got, f"{entry['file']}: {exp['rule']} not raised; got {sorted(got)}"
        assert got[exp["rule"]].action == Action(exp["action"])
        assert RULES[exp["rule"]].action == Action(exp["action"]), "manifest disagrees with the registry"
    for rule, count in entry.get("counts", {}).items():
        assert got[rule].count == count, f"{entry['file']}: {rule} count {got[rule].count} != {count}"
    if "accepted" in entry:
        assert report.accepted.height == entry["accepted"]
    expected = {e["rule"] for e in entry["expect"]}
    refused = [i for i in report.issues if i.action is not Action.FLAG]
    assert refused or expected & {i.rule for i in report.issues}, f"{entry['file']} silently accepted"
    if report.batch_rejected:
        assert report.accepted.height == report.dropped.height == report.quarantined.height == 0
        assert report.reject_reason
    else:
        ids = [*report.accepted["row_id"], *report.dropped["row_id"], *report.quarantined["row_id"]]
        assert sorted(ids) == list(range(report.rows_in))


def test_every_rule_in_the_registry_is_hit_by_some_corpus_file() -> None:
    hit: set[str] = set()
    for entry in MANIFEST:
        if not entry.get("read_error"):
            hit |= {i.rule for i in _run(entry).issues}
    assert set(RULES) - hit == set()


def test_unsorted_corpus_file_is_repaired_to_the_sorted_original() -> None:
    entry = next(e for e in MANIFEST if e["file"] == "ccxt_unsorted.json")
    report = _run(entry)
    clean = validate_bars(read_bar_file(CORPUS / "ccxt_gap_1.json").head(0), timeframe="1h",
                          now=datetime.fromisoformat(entry["now"].replace("Z", "+00:00")))
    assert clean.batch_rejected  # sanity: an empty payload is refused
    ts = report.accepted["ts"]
    assert ts.is_sorted() and ts.n_unique() == ts.len() == report.rows_in
    assert report.accepted["row_id"].to_list()[20:25] == [24, 23, 22, 21, 20]
