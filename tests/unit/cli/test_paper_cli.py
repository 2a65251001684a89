"""``trading paper ...`` end to end on the sample warehouse: start, status, activity, export,
compare, clone, requests and the refusals (one line each, exit 2)."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from pathlib import Path

import pytest
from paper_support import PaperEnv

from trading_core.cli import main

START = ["--strategy", "ma_crossover", "--param", "fast=10", "--param", "slow=30", "--symbol", "BTC/USD",
         "--venue", "coinbase", "--timeframe", "1h", "--start", "2019-02-01", "--end", "2019-02-14"]


@pytest.fixture
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = Path(os.environ["TRADING_DATA_DIR"])
    env = PaperEnv(tmp_path_factory.mktemp("src"), tmp_path_factory.getbasetemp())
    shutil.copyfile(env.warehouse.path, root / "warehouse.duckdb")
    return root


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> object:
    capsys.readouterr()
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_start_in_the_foreground_then_read_it_back(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = _json(capsys, ["paper", "start", *START, "--name", "cli", "--foreground", "--json"])
    sid = doc["session_id"]
    assert doc["outcome"]["state"] == "completed" and doc["risk_armed"] is True
    st = _json(capsys, ["paper", "status", sid, "--json"])
    assert st["state"] == "completed" and st["bars_processed"] == 14 * 24  # --end names the last day included and st["heartbeat_ts"]
    assert {"stage", "last_bar_ts", "equity", "positions", "generation"} <= set(st)
    rows = _json(capsys, ["paper", "list", "--json"])
    assert [r["session_id"] for r in rows] == [sid]
    fills = _json(capsys, ["paper", "export", sid, "--format", "json", "--kinds", "OrderFilled"])
    assert fills and all(r["payload"]["fill_id"] for r in fills)
    capsys.readouterr()
    assert main(["paper", "export", sid, "--format", "csv", "--kinds", "OrderFilled"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(table) == len(fills) and table[0]["fill_id"] == fills[0]["payload"]["fill_id"]
    out = data / "ledger.parquet"
    assert main(["paper", "export", sid, "--format", "parquet", "--out", str(out)]) == 0 and out.stat().st_size
    act = _json(capsys, ["paper", "activity", sid, "--limit", "10", "--json"])
    assert len(act) == 10 and {"kind", "decision", "reason", "symbol"} <= set(act[0])
    clone = _json(capsys, ["paper", "clone", sid, "--name", "twin", "--json"])
    assert clone["cloned_from"] == sid
    assert main(["paper", "run", clone["session_id"]]) == 0
    cmp = _json(capsys, ["paper", "compare", sid, clone["session_id"], "--json"])
    assert cmp["a"]["final_equity"] == cmp["b"]["final_equity"] and cmp["a"]["fills"] == len(fills)
    att = _json(capsys, ["paper", "attribution", sid, "--json"])
    assert att["explained"] == 0 and att["missed_fills"] == 0


def test_requests_follow_the_session_lifecycle(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sid = _json(capsys, ["paper", "start", *START, "--json"])["session_id"]
    assert _json(capsys, ["paper", "status", sid, "--json"])["state"] == "pending"
    assert _json(capsys, ["paper", "pause", sid, "--json"])["desired"] == "paused"
    assert _json(capsys, ["paper", "resume", sid, "--json"])["desired"] == "running"
    assert _json(capsys, ["paper", "stop", sid, "--json"])["desired"] == "stopped"
    capsys.readouterr()
    assert main(["paper", "resume", sid]) == 2
    assert "stopped" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["paper", "status", "ps-123"], "expected ps-<12 hex digits>"),
    (["paper", "status", "ps-0123456789ab"], "no paper session"),
    (["paper", "start", *START, "--speed", "fast"], "--speed 'fast'"),
    (["paper", "start", *START, "--feed", "paper"], "--feed 'paper'"),
    (["paper", "start", "--template", "../etc"], "--template"),
    (["paper", "start", "--template", "nope"], "no such template"),
    (["paper", "start", "--strategy", "ma_crossover", "--venue", "coinbase", "--timeframe", "1h"], "--symbol"),
])
def test_bad_arguments_are_one_line_errors(argv: list[str], message: str, data: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_the_preflight_refusal_lists_every_reason(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["paper", "start", "--strategy", "ma_crossover", "--symbol", "BTC/USD,ETH/USD", "--venue", "coinbase",
            "--timeframe", "1h", "--start", "2024-01-01", "--end", "2024-02-01"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "refused by the pre-flight" in err and "no ETH/USD 1h bars" in err and "BTC/USD: stored" in err
    assert not (data / "paper" / "sessions").exists() or not list((data / "paper" / "sessions").iterdir())


def test_templates_are_listed_and_an_unknown_key_is_named(data: Path, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    rows = _json(capsys, ["paper", "templates", "--json"])
    assert {"btc-ma-crossover", "spx-trend", "btc-live"} <= {r["name"] for r in rows}
    assert all(r.get("description") for r in rows)
    import trading_core.cli.paper as cp

    (tmp_path / "typo.yaml").write_text("strategy: ma_crossover\nsymbl: BTC/USD\n")
    monkeypatch.setattr(cp, "_templates_dir", lambda: tmp_path)
    assert main(["paper", "start", "--template", "typo"]) == 2
    assert "unknown key(s) symbl" in capsys.readouterr().err
