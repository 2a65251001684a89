"""``trading backtest``: the risk layer is opt-in (``--risk``, ``--risk-config``, ``backtest.risk``),
and a run it changed says so -- in-process, on a temporary warehouse of real ^GSPC and ^VIX bars."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import polars as pl
import pytest

from trading_core.cli import main
from trading_core.config import DEFAULT_CONFIG_PATH, TradingConfig, load_config
from trading_core.errors import ConfigError

# the backtest tests' warehouse helper (real bars written through the warehouse writer)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backtest"))
from bt_helpers import build_warehouse  # noqa: E402

BASE = ["backtest", "--symbol", "^GSPC", "--venue", "yahoo", "--timeframe", "1d",
        "--start", "2000-01-01", "--end", "2018-12-31", "--no-save"]
BUY_HOLD = [*BASE, "--strategy", "buy_and_hold"]
QUIET = "risk:\n  breakers: {enabled: false}\n  market_filter: {enabled: false}\n"  # order checks only


@pytest.fixture(scope="module")
def warehouse_path(tmp_path_factory: pytest.TempPathFactory, sp500: pl.DataFrame, vix: pl.DataFrame) -> Path:
    # ^VIX too: with the risk layer on, the VIX market filter fails closed without it
    path = tmp_path_factory.mktemp("optin") / "warehouse.duckdb"
    build_warehouse(path, sp500)
    build_warehouse(path, vix, symbol="^VIX")
    return path


@pytest.fixture(autouse=True)
def use_warehouse(warehouse_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRADING_WAREHOUSE", str(warehouse_path))
    return warehouse_path


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    rc = main([*args, "--json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    return json.loads(out)


def _text(capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    rc = main(list(args))
    out, err = capsys.readouterr()
    assert rc == 0, err
    return out.strip().splitlines()


def _profile(tmp_path: Path, extra: str) -> Path:
    """The shipped config with ``extra`` YAML in place of its ``backtest:`` section."""
    text = DEFAULT_CONFIG_PATH.read_text(encoding="utf-8")
    assert "\nbacktest:\n  risk: false\n" in text
    p = tmp_path / "trading.yaml"
    p.write_text(text.replace("\nbacktest:\n  risk: false\n", "\n") + "\n" + extra, encoding="utf-8")
    return p


def _file(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


# ############# The switch ############# #


def test_default_run_has_no_risk_layer_and_uses_the_batch_driver(capsys: pytest.CaptureFixture[str]) -> None:
    doc = _json(capsys, *BUY_HOLD)
    assert doc["risk"]["enabled"] is False and doc["driver"] == "batch"
    assert doc["request"]["risk"] is None
    assert doc["risk"]["enabled_by"] is None and doc["risk"]["changed_result"] is False
    assert "without_risk" not in doc["risk"] and doc["breakers"]["events"] == []
    assert doc["trades"][0]["status"] == "open"  # bought in 2000, held to the end


def test_risk_flag_turns_the_layer_on(capsys: pytest.CaptureFixture[str]) -> None:
    doc = _json(capsys, *BUY_HOLD, "--risk")
    assert doc["risk"]["enabled"] is True and doc["driver"] == "stepped"
    assert doc["risk"]["enabled_by"] == "--risk" and doc["risk"]["breakers_enabled"] is True
    assert doc["request"]["risk"]["breakers"]["enabled"] is True


def test_risk_config_implies_risk_and_replaces_the_section(capsys: pytest.CaptureFixture[str],
                                                           tmp_path: Path) -> None:
    doc = _json(capsys, *BUY_HOLD, "--risk-config", str(_file(tmp_path, "r.yaml", QUIET)))
    assert doc["risk"]["enabled"] is True and doc["risk"]["enabled_by"] == "--risk-config"
    assert doc["risk"]["breakers_enabled"] is False  # the file's section, not the config's


def test_profile_turns_the_layer_on_and_flags_override_it(capsys: pytest.CaptureFixture[str],
                                                         tmp_path: Path) -> None:
    cfg = str(_profile(tmp_path, "backtest:\n  risk: true\n"))
    doc = _json(capsys, "--config", cfg, *BUY_HOLD)
    assert doc["risk"]["enabled"] is True and doc["risk"]["enabled_by"] == "config backtest.risk"
    assert doc["driver"] == "stepped"
    off = _json(capsys, "--config", cfg, *BUY_HOLD, "--no-risk")
    assert off["risk"]["enabled"] is False and off["driver"] == "batch"
    assert _json(capsys, "--config", cfg, *BUY_HOLD, "--risk")["risk"]["enabled_by"] == "--risk"


def test_no_risk_is_still_accepted_and_is_off(capsys: pytest.CaptureFixture[str]) -> None:
    doc = _json(capsys, *BUY_HOLD, "--no-risk")
    assert doc["risk"]["enabled"] is False and doc["driver"] == "batch"


@pytest.mark.parametrize("flags", [["--risk", "--no-risk"], ["--no-risk", "--risk"],
                                   ["--risk-config", "RC", "--no-risk"]])
def test_contradicting_risk_flags_exit_2_with_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                       flags: list[str]) -> None:
    rc_file = str(_file(tmp_path, "r.yaml", QUIET))
    rc = main([*BUY_HOLD, *[rc_file if f == "RC" else f for f in flags]])
    out, err = capsys.readouterr()
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("trading: ") and "--no-risk" in err
    assert "contradict" in err


def test_config_model_has_the_backtest_profile_off_by_default(tmp_path: Path) -> None:
    assert TradingConfig.model_fields["backtest"].default_factory is not None
    assert load_config().backtest.risk is False  # config/trading.yaml writes the default out
    with pytest.raises(ConfigError, match=r"backtest\.riks"):
        load_config(_profile(tmp_path, "backtest:\n  riks: true\n"))


# ############# Signal filters: strategy behaviour, applied with or without --risk ############# #


def test_configured_filters_apply_without_risk_and_no_filters_skips_them(
    capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    # edit the shipped strategies section in place: a second ``strategies:`` key is refused
    path = _profile(tmp_path, "")
    text = path.read_text(encoding="utf-8")
    assert text.count("\n      confirm_bars: 1 ") == 1
    path.write_text(text.replace("\n      confirm_bars: 1 ", "\n      confirm_bars: 3 "), encoding="utf-8")
    cfg = str(path)
    args = ["--config", cfg, *BASE, "--strategy", "ma_crossover", "--param", "fast=20", "--param", "slow=100"]
    doc = _json(capsys, *args)
    assert doc["risk"]["enabled"] is False
    assert doc["request"]["filters"]["confirm_bars"] == 3 and doc["driver"] == "stepped"
    assert doc["filters"].get("confirmation", 0) > 0  # the filter suppressed signals
    plain = _json(capsys, *args, "--no-filters")
    assert plain["request"]["filters"] is None and plain["driver"] == "batch" and plain["filters"] == {}
    assert plain["metrics"]["trades"] != doc["metrics"]["trades"]
    # with --risk, the comparison run keeps the filters: it is exactly the run without --risk
    armed = _json(capsys, *args, "--risk")
    assert armed["request"]["filters"]["confirm_bars"] == 3 and armed["risk"]["changed_result"] is True
    assert armed["risk"]["without_risk"]["final_equity"] == pytest.approx(doc["metrics"]["final_equity"],
                                                                         rel=1e-12)


# ############# "risk layer changed this result" ############# #


def test_kill_switch_run_says_what_changed_and_what_it_would_be_without(
    capsys: pytest.CaptureFixture[str],
) -> None:
    plain = _json(capsys, *BUY_HOLD)
    doc = _json(capsys, *BUY_HOLD, "--risk")
    risk = doc["risk"]
    assert risk["changed_result"] is True
    kill = risk["changes"]["kill_switch"]
    # the shipped breakers: the 2000-04-14 slide trips the portfolio daily-loss halt, the kill
    # switch sells, and buy-and-hold never buys again
    assert kill[0]["ts"] == "2000-04-14" and kill[0]["rule"] == "portfolio_daily_loss"
    assert kill[0]["portfolio"] == 0 and kill[0]["symbol"] == "^GSPC"
    assert risk["changes"]["breaker_transitions"] == len(doc["breakers"]["events"]) > 0
    assert sum(risk["changes"]["breaker_trips"].values()) > 0
    assert doc["trades"][0]["status"] == "closed"
    wo = risk["without_risk"]
    assert wo["final_equity"] == pytest.approx(plain["metrics"]["final_equity"], rel=1e-12)
    assert wo["sharpe"] == pytest.approx(plain["metrics"]["sharpe"], rel=1e-12)
    assert wo["driver"] == "batch" and wo["portfolios"][0]["portfolio"] == 0
    assert wo["sharpe"] > 0 > doc["metrics"]["sharpe"]  # buy-and-hold ~0.25 vs the kill switch's -0.10

    lines = _text(capsys, *BUY_HOLD, "--risk")
    changed = [i for i, line in enumerate(lines) if line.startswith("risk layer changed this result: ")]
    assert len(changed) == 1
    i = changed[0]
    assert "kill switch flattened 2000-04-14 (portfolio_daily_loss)" in lines[i]
    assert "breaker transitions" in lines[i]
    assert lines[i + 1].startswith(f"without --risk: final equity {plain['metrics']['final_equity']:,.2f}, "
                                   f"Sharpe {plain['metrics']['sharpe']:.3f} (this run: ")
    assert lines[i - 1].startswith("risk decisions: ") and lines[-1].startswith("driver stepped")


def test_refusals_are_counted_by_reason(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # VIX above 30 pauses entries: ma_crossover's crossings during 2000-2018 stress are refused
    doc = _json(capsys, *BASE, "--strategy", "ma_crossover", "--param", "fast=20", "--param", "slow=100",
                "--risk-config", str(_file(tmp_path, "r.yaml", "risk:\n  breakers: {enabled: false}\n")))
    ch = doc["risk"]["changes"]
    assert doc["risk"]["changed_result"] is True and ch["refused"].get("market_filter", 0) > 0
    assert ch["refused"] == {k: v for k, v in doc["risk"]["counts"].items() if k not in ("none", "resized")}
    assert ch["breaker_transitions"] == 0 and ch["kill_switch"] == []
    lines = _text(capsys, *BASE, "--strategy", "ma_crossover", "--param", "fast=20", "--param", "slow=100",
                  "--risk-config", str(tmp_path / "r.yaml"))
    n = sum(ch["refused"].values())
    assert any(line.startswith("risk layer changed this result: ") and f"{n} orders refused (market_filter {n})"
               in line for line in lines)
    assert any(line.startswith("without --risk-config: final equity ") for line in lines)


def test_trailing_stop_fills_count_as_a_change(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rc = _file(tmp_path, "r.yaml", QUIET + "  trailing_stop: {kind: percent, trail_pct: 0.05}\n")
    doc = _json(capsys, *BUY_HOLD, "--risk-config", str(rc))
    ch = doc["risk"]["changes"]
    assert doc["risk"]["changed_result"] is True and ch["trailing_stop_fills"] == 1  # buy-and-hold exits once
    assert ch["refused"] == {} and ch["breaker_transitions"] == 0
    assert any(f["reason"] in ("intrabar", "gap") for f in doc["fills"])


def test_nothing_fired_no_line_and_no_comparison(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rc = str(_file(tmp_path, "r.yaml", QUIET))
    doc = _json(capsys, *BUY_HOLD, "--risk-config", rc)
    risk = doc["risk"]
    assert risk["enabled"] is True and risk["changed_result"] is False and "without_risk" not in risk
    assert risk["changes"] == {"refused": {}, "resized": 0, "breaker_transitions": 0, "breaker_trips": {},
                               "kill_switch": [], "trailing_stop_fills": 0}
    lines = _text(capsys, *BUY_HOLD, "--risk-config", rc)
    assert any(line.startswith("risk decisions: none") for line in lines)
    assert not any("risk layer changed" in line or line.startswith("without ") for line in lines)
    default = _text(capsys, *BUY_HOLD)
    assert not any(line.startswith(("risk decisions", "risk layer changed", "without ")) for line in default)
