"""``trading stress`` end to end on the sample warehouse: runs, stores with lineage, reports JSON
with max_drawdown per window, and the stored rows read back; figures sit beside the results."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.unit.stress._stress_support import warehouse_copy
from trading_core.cli import main
from trading_core.warehouse import Warehouse
from trading_core.warehouse.stress import (
    latest_run,
    read_montecarlo,
    read_optimisation_history,
    read_stability,
    read_survival,
)


@pytest.fixture
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = Path(os.environ["TRADING_DATA_DIR"])
    src = warehouse_copy(tmp_path_factory.mktemp("stress_cli") / "w.duckdb", tmp_path_factory.getbasetemp())
    shutil.copyfile(src.path, d / "warehouse.duckdb")
    return d


def test_stress_json_reports_max_drawdown_per_window_and_stores_the_run(data_dir: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["stress", "--crisis", "q4_selloff_2018", "--crisis", "covid_2020", "--strategy", "macd",
               "--symbol", "^GSPC", "--venue", "yahoo", "--paths", "20", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    windows = out["windows"]
    assert len(windows) == 2 * 2 * 2  # crises x (buy-and-hold, macd) x risk off/on
    assert all("max_drawdown" in w for w in windows)
    q4 = [w for w in windows if w["crisis"] == "q4_selloff_2018"]
    assert all(w["status"] == "ok" and w["max_drawdown"] < 0 for w in q4)
    assert all(w["status"] == "no data" and w["max_drawdown"] is None for w in windows if w["crisis"] == "covid_2020")
    mc = {m["crisis"]: m for m in out["montecarlo"]}
    assert mc["q4_selloff_2018"]["paths"] == 20 and mc["covid_2020"]["status"] == "no data"
    q4_mc = mc["q4_selloff_2018"]
    assert q4_mc["draws"] == 20  # every path its own execution draw
    assert set(q4_mc["execution"]) == {"slippage_bps", "fee_bps", "latency_ms", "fill_prob"}
    assert q4_mc["execution"]["latency_ms"]["corr_total_return"] is None  # fixed in the default config
    names = {Path(f).name for f in out["figures"]}
    assert {"drawdown_q4_selloff_2018.html", "drawdown_q4_selloff_2018.json", "montecarlo_q4_selloff_2018.json"} <= names
    assert all(Path(f).parent == data_dir / "stress" / out["run_id"] for f in out["figures"])

    wh = Warehouse(data_dir / "warehouse.duckdb")
    with wh.connect(read_only=True) as con:
        run = latest_run(con, "crisis+montecarlo")
        rows = read_survival(con, out["run_id"])
        mcs = read_montecarlo(con, out["run_id"])
    assert run is not None and run["run_id"] == out["run_id"]
    assert run["seed"] == 7 and run["code_version"].startswith("0.1.0") and run["execution_model_hash"]
    assert {r["status"] for r in run["data_range"]} == {"ok", "no data"}
    assert rows.height == 8 and set(rows["status"]) == {"ok", "no data"}
    stored = {(r["crisis"], r["strategy"], r["risk"]): r["max_drawdown"] for r in rows.iter_rows(named=True)}
    assert all(stored[(w["crisis"], w["strategy"], w["risk"])] == w["max_drawdown"] for w in windows)
    assert mcs.height == 1 and mcs["paths"][0] == 20 and mcs["draws"][0] == 20
    assert json.loads(mcs["detail"][0])["execution"] == q4_mc["execution"]


def test_stress_montecarlo_text_names_the_assumption_the_return_is_most_sensitive_to(
        data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    cfg = tmp_path / "trading.yaml"
    doc = yaml.safe_load(Path("config/trading.yaml").read_text())
    doc.setdefault("stress", {})["montecarlo"] = {
        "mode": "execution", "risk": False, "strategy": {"name": "ma_crossover", "params": {"fast": 5, "slow": 20}},
        "execution": {"slippage_bps": {"kind": "fixed", "value": 0}, "latency_ms": {"kind": "fixed", "value": 0},
                      "fill_prob": {"kind": "fixed", "value": 1}, "fee_bps": {"kind": "uniform", "low": 0, "high": 50}}}
    cfg.write_text(yaml.safe_dump(doc))
    rc = main(["--config", str(cfg), "stress", "montecarlo", "--crisis", "q4_selloff_2018", "--symbol", "^GSPC",
               "--venue", "yahoo", "--paths", "30", "--no-save", "--no-figures"])
    assert rc == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("montecarlo q4_selloff_2018"))
    assert "30 paths" in line and "return most sensitive to fee_bps (rank corr -1.00)" in line


def test_stress_montecarlo_text_says_when_no_execution_draw_ranks_with_the_return() -> None:
    from trading_core.cli.stress import _sensitivity

    weak = {"execution": {"fee_bps": {"corr_total_return": -0.06}, "slippage_bps": {"corr_total_return": 0.02},
                          "latency_ms": {"corr_total_return": None}}}
    assert _sensitivity(weak) == ", no execution draw ranks with the return (strongest: fee_bps, rank corr -0.06)"
    assert _sensitivity({"execution": {}}) == "" and _sensitivity({}) == ""


def test_stress_stability_stores_the_optimisation_history(data_dir: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    cfg = tmp_path / "trading.yaml"
    doc = yaml.safe_load(Path("config/trading.yaml").read_text())
    doc.setdefault("stress", {})["stability"] = {
        "walk_forward": {"train_bars": 400, "test_bars": 200, "max_folds": 3},
        "sweeps": [{"name": "gspc_small", "strategy": "ma_crossover", "venue": "yahoo", "symbol": "^GSPC",
                    "timeframe": "1d", "start": "2004-01-01", "end": "2009-12-31",
                    "grid": {"fast": [5, 10], "slow": [30, 60]}}]}
    cfg.write_text(yaml.safe_dump(doc))
    assert main(["--config", str(cfg), "stress", "stability", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    (s,) = out["stability"]
    assert s["sweep"] == "gspc_small" and len(s["folds"]) == 3 and isinstance(s["overfit"], bool)
    assert any(Path(f).name == "heatmap_gspc_small.html" for f in out["figures"])
    with Warehouse(data_dir / "warehouse.duckdb").connect(read_only=True) as con:
        hist = read_optimisation_history(con, out["run_id"])
        stab = read_stability(con, out["run_id"])
    assert hist.height == 4 * (1 + 2 * 3) and stab.height == 1


def test_stress_list_and_bad_arguments_answer_in_one_line(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stress", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    status = {(r["crisis"], r["symbol"]): r["status"] for r in rows}
    assert status[("gfc_2008", "^GSPC")] == "ok" and status[("crypto_may_2021", "BTC/USD")] == "no data"
    assert main(["stress", "--crisis", "nope"]) == 2
    assert "unknown crisis nope" in capsys.readouterr().err
    assert main(["stress", "--crisis", "gfc_2008", "--start", "2008-01-01", "--end", "2008-02-01"]) == 2
    assert main(["stress", "--paths", "0"]) == 2
