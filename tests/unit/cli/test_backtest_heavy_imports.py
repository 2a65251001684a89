"""A plain ``trading backtest`` (the README's first example, saved, with and without the risk
layer) loads none of the heavy stack it does not use: no MLflow, scikit-learn, XGBoost, Dagster,
Plotly, Streamlit, ccxt, yfinance, nor SciPy's solvers (``scipy.optimize``, which only Markowitz
allocation calls). Run in a fresh interpreter on a temporary warehouse of real ^GSPC and ^VIX
bars. Behaviour, not timing: benchmarks/cli.py has the wall times."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

# the backtest tests' warehouse helper (real bars written through the warehouse writer)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backtest"))
from bt_helpers import build_warehouse  # noqa: E402

UNUSED = ("mlflow", "sklearn", "xgboost", "dagster", "plotly", "streamlit", "ccxt", "yfinance", "scipy.optimize",
          "lightgbm", "shap", "torch")

# In a fresh interpreter: run the CLI's main, then report its exit code and which unused modules loaded.
_PROBE = f"UNUSED = {UNUSED!r}\n" + """
import contextlib, io, json, sys
from trading_core.cli import main
out, argv = sys.argv[1], sys.argv[2:]
with contextlib.redirect_stdout(io.StringIO()) as stdout:
    rc = main(argv)
with open(out, "w") as f:
    json.dump({"rc": rc, "loaded": sorted(m for m in UNUSED if m in sys.modules),
               "result": json.loads(stdout.getvalue()) if rc == 0 else None}, f)
"""

README_BACKTEST = ["backtest", "--strategy", "ma_crossover", "--param", "fast=10", "--param", "slow=50",
                   "--symbol", "^GSPC", "--venue", "yahoo", "--timeframe", "1d", "--start", "2005-01-01",
                   "--end", "2018-12-31", "--json"]


@pytest.fixture(scope="module")
def warehouse_path(tmp_path_factory: pytest.TempPathFactory, sp500: pl.DataFrame, vix: pl.DataFrame) -> Path:
    path = tmp_path_factory.mktemp("imports") / "warehouse.duckdb"
    build_warehouse(path, sp500)
    build_warehouse(path, vix, symbol="^VIX")
    return path


@pytest.mark.parametrize(("extra", "driver"), [
    ([], "batch"),  # the README's example as written: one simulate call, saved to the warehouse
    (["--risk"], "stepped"),  # the risk layer on: the trading loop (Trader, gate, sizing, breakers)
])
def test_backtest_when_plain_run_then_no_unused_heavy_module_imported(
    tmp_path: Path, warehouse_path: Path, extra: list[str], driver: str,
) -> None:
    # Arrange
    out = tmp_path / "probe.json"
    env = {**os.environ, "TRADING_WAREHOUSE": str(warehouse_path)}

    # Act
    proc = subprocess.run([sys.executable, "-c", _PROBE, str(out), *README_BACKTEST, *extra], capture_output=True,
                          text=True, env=env, timeout=600)

    # Assert
    assert out.exists(), proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    assert result["rc"] == 0, proc.stdout + proc.stderr
    assert result["result"]["driver"] == driver
    assert result["result"]["persisted"] is True
    assert result["loaded"] == [], f"a plain backtest imported {result['loaded']}"
