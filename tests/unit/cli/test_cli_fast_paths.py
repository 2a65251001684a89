"""The ``trading`` command's fast paths: ``--help`` and argument errors import none of the heavy
stack (Numba, Polars, DuckDB, NumPy, SciPy), and ``trading up``'s background Numba warm-up runs
and stops. Behaviour, not timing: benchmarks/cli.py has the wall times."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

HEAVY = ("numba", "polars", "duckdb", "numpy", "scipy")

# In a fresh interpreter: run the CLI's main, then report its exit code and the heavy modules loaded.
_PROBE = f"HEAVY = {HEAVY!r}\n" + """
import json, sys
from trading_core.cli import main
out, argv = sys.argv[1], sys.argv[2:]
try:
    rc = main(argv)
except SystemExit as e:
    rc = e.code
with open(out, "w") as f:
    json.dump({"rc": rc, "heavy": sorted(m for m in HEAVY if m in sys.modules)}, f)
"""

BAD_CASH = ["backtest", "--strategy", "ma_crossover", "--symbol", "^GSPC", "--venue", "yahoo", "--timeframe", "1d",
            "--start", "2005-01-01", "--end", "2006-01-01", "--cash", "-1"]


def _probe(tmp_path: Path, argv: list[str]) -> tuple[dict, str]:
    out = tmp_path / "probe.json"
    proc = subprocess.run([sys.executable, "-c", _PROBE, str(out), *argv], capture_output=True, text=True,
                          timeout=120)
    return json.loads(out.read_text()), proc.stdout + proc.stderr


@pytest.mark.parametrize(("argv", "rc"), [
    (["--help"], 0),
    (["backtest", "--help"], 0),
    (["up", "--help"], 0),
    (["ingest", "file", "--help"], 0),
    (["backtest", "--bogus"], 2),  # unknown flag: argparse's usage error
    (["nosuchcommand"], 2),
    (["ingest", "file", "x.csv", "--symbol", "BTC/USD", "--venue", "coinbase", "--timeframe", "7m"], 2),  # bad choice
    (BAD_CASH, 2),  # a bad value the handler refuses
    ([*BAD_CASH[:-1], "100", "--fill", "sometimes"], 2),
    ([*BAD_CASH[:-1], "100", "--end", "2004-01-01"], 2),
])
def test_cli_when_help_or_argument_error_then_no_heavy_module_imported(
    tmp_path: Path, argv: list[str], rc: int,
) -> None:
    # Act
    result, output = _probe(tmp_path, argv)

    # Assert
    assert result["rc"] == rc, output
    assert result["heavy"] == [], f"{argv} imported {result['heavy']}"


def test_backtest_when_cash_negative_then_one_line_naming_the_flag(tmp_path: Path) -> None:
    # Act
    _, output = _probe(tmp_path, BAD_CASH)

    # Assert
    assert output.strip() == "trading: --cash '-1': expected a number > 0 and <= 1e+15"


def test_up_when_no_warmup_flag_then_parsed() -> None:
    from trading_core.cli import build_parser

    # Act
    on = build_parser().parse_args(["up"])
    off = build_parser().parse_args(["up", "--no-warmup", "--no-load"])

    # Assert
    assert on.warmup is True
    assert off.warmup is False


def test_warmup_command_when_started_then_logs_and_stops_on_request(tmp_path: Path) -> None:
    from trading_core.cli.up import start_warmup, stop_background, warmup_command

    log = tmp_path / "logs" / "numba-warmup.log"
    assert warmup_command()[0] == sys.executable

    # Act
    proc = start_warmup(log)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "Numba warm-up started" not in (log.read_text() if log.exists() else ""):
            assert proc.poll() is None, log.read_text()
            time.sleep(0.1)
    finally:
        t0 = time.monotonic()
        stop_background(proc, grace_s=5.0)
        stopped_in = time.monotonic() - t0

    # Assert
    assert "Numba warm-up started" in log.read_text()
    assert proc.returncode is not None
    assert stopped_in < 6.0


def test_warm_up_when_run_in_process_then_every_step_succeeds(capsys: pytest.CaptureFixture[str]) -> None:
    from trading_core.cli.up import warm_up

    # Act
    rc = warm_up(strategies=("ma_crossover",))

    # Assert
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "engine kernels:" in out
    assert "strategy ma_crossover (batch driver, filters):" in out
    assert "stepped driver: Trader, default risk, trailing stop):" in out
    assert "ma_crossover on two symbols (stepped driver):" in out
    assert "the command's own modules (bytecode for a first `trading backtest`):" in out
    assert "FAILED" not in out
