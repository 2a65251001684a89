"""``trading regimes --at`` / ``--all`` on labels computed by ``trading features update`` from real
^GSPC daily bars 1999-2018 in a temporary warehouse."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import polars as pl
import pytest

from trading_core.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backtest"))
from bt_helpers import build_warehouse  # noqa: E402

GSPC = ["regimes", "--symbol", "^GSPC"]


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory, sp500: pl.DataFrame) -> Path:
    path = tmp_path_factory.mktemp("regimes") / "warehouse.duckdb"
    build_warehouse(path, sp500)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRADING_DATA_DIR", str(path.parent))
        mp.setenv("TRADING_WAREHOUSE", str(path))
        assert main(["features", "update", "--symbol", "^GSPC", "--json"]) == 0
    return path


@pytest.fixture(autouse=True)
def use_labelled(labelled: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TRADING_WAREHOUSE", str(labelled))
    yield


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main([*GSPC, *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_at_gives_the_label_in_force_and_its_span(capsys: pytest.CaptureFixture[str]) -> None:
    doc = _json(capsys, "--at", "2008-10-15")
    assert (doc["venue"], doc["timeframe"]) == ("yahoo", "1d")
    assert doc["regime"] == "high_vol_stress"  # the autumn 2008 crash
    span = doc["span"]
    assert span["regime"] == doc["regime"] and span["start"] <= "2008-10-15" <= span["end"]
    assert span["bars"] >= 5 and doc["at"].startswith("2008-10-15")
    # a Saturday inherits Friday's label; the text form says the same on one line
    assert _json(capsys, "--at", "2008-10-18")["span"] == span
    assert main([*GSPC, "--at", "2008-10-15T15:30:00Z"]) == 0
    line = capsys.readouterr().out.strip()
    assert "high_vol_stress" in line and span["start"] in line and len(line.splitlines()) == 1


def test_all_lists_spans_covering_every_label(capsys: pytest.CaptureFixture[str]) -> None:
    doc = _json(capsys, "--all")
    spans = doc["all_spans"]
    assert len(spans) == doc["spans"] > len(doc["longest_spans"])
    assert sum(s["bars"] for s in spans) == doc["bars"] > 4000
    assert all(a["end"] < b["start"] and a["regime"] != b["regime"] for a, b in pairwise(spans))
    # from the first label after the warm-up (~271 bars into 1999) to the last bar of 2018
    assert spans[0]["start"].startswith("2000-") and spans[-1]["end"].startswith("2018-12-31")
    assert spans[-1] == doc["current"]
    assert main([*GSPC, "--all"]) == 0
    text = capsys.readouterr().out
    listed = text.split(f"all {len(spans)} spans:\n")[1].splitlines()[:len(spans)]
    assert [line.split()[0] for line in listed] == [s["regime"] for s in spans]
    assert listed[0].endswith(f"{spans[0]['start']} .. {spans[0]['end']}")


@pytest.mark.parametrize(("argv", "message"), [
    (["--at", "15/10/2008"], "expected a date"),
    (["--at", "yesterday"], "expected a date"),
    (["--at", "1995-01-03"], "outside the labelled bars"),  # before the warm-up ends
    (["--at", "2019-06-01"], "outside the labelled bars"),  # after the last bar
    (["--at", "2008-10-15", "--all"], "exclusive"),
])
def test_bad_at_is_one_line_and_exit_2(argv: list[str], message: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*GSPC, *argv, "--json"]) == 2
    out = capsys.readouterr()
    assert out.out == "" and message in out.err and len(out.err.splitlines()) == 1


def test_no_labels_names_the_command_that_computes_them(tmp_path: Path, sp500: pl.DataFrame,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    bare = build_warehouse(tmp_path / "bare.duckdb", sp500.head(50))
    monkeypatch.setenv("TRADING_WAREHOUSE", str(bare.path))
    assert main([*GSPC, "--at", "1999-02-01"]) == 2
    err = capsys.readouterr().err
    assert "no regime labels" in err
    assert "trading features update --symbol ^GSPC --venue yahoo --timeframe 1d" in err
