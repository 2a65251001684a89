"""`trading report RUN_OR_SESSION --out FILE.html`: writes the page; an unknown id is one line, exit 2."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from paper_support import gspc_request, sample_warehouse

from trading_core.backtest import run_backtest
from trading_core.cli import main


def test_report_of_a_stored_backtest_is_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wh = sample_warehouse(Path(os.environ["TRADING_DATA_DIR"]) / "warehouse.duckdb", tmp_path)
    run_backtest(gspc_request(persist=True, risk=None), wh, run_id="cli-run-1")
    out = tmp_path / "out" / "report.html"
    assert main(["report", "cli-run-1", "--out", str(out), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["kind"] == "backtest" and doc["out"] == str(out) and doc["trades"] > 0
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "Backtest cli-run-1" in page


@pytest.mark.parametrize(("target", "message"), [
    ("nope", "trading: no backtest run nope: the warehouse"),
    ("ps-zz", "trading: session id 'ps-zz'"),
    ("ps-0123456789ab", "trading: no paper session ps-0123456789ab"),
    ("../../etc/passwd", "is not a backtest run id or a paper session id"),
])
def test_an_unknown_id_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], target: str,
                                              message: str) -> None:
    assert main(["report", target, "--out", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "r.html").exists()
