from __future__ import annotations

from pathlib import Path

import pytest

from trading_core.cli import main
from trading_core.config import load_config
from trading_core.errors import ConfigError

GOOD = Path(__file__).resolve().parents[3] / "config" / "trading.yaml"


def test_default_config_is_valid_and_offline() -> None:
    cfg = load_config(GOOD)
    assert cfg.market_data.mode == "offline"
    assert {u.name for u in cfg.market_data.universes} == {"crypto", "crypto_daily", "equities"}
    assert cfg.services.host == "127.0.0.1"


def test_every_problem_is_reported_with_its_path_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "market_data:\n"
        "  mode: offlne\n"
        "  universes:\n"
        "    - name: x\n"
        "      asset_class: crypto\n"
        "      venue: coinbase\n"
        "      timeframe: 7h\n"
        "      symbols: ['btc;--']\n"
        "      start: 2020-01-01\n"
        "  colour: blue\n"
    )
    with pytest.raises(ConfigError) as e:
        load_config(bad)
    problems = e.value.problems
    assert any(p.startswith("market_data.mode (line 2)") for p in problems)
    assert any(p.startswith("market_data.universes[0].timeframe (line 7)") and "7h" in p for p in problems)
    assert any(p.startswith("market_data.universes[0].symbols[0] (line 8)") for p in problems)
    assert any(p.startswith("market_data.colour (line 10)") for p in problems)


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("market_data:\n  mode: [offline\n")
    with pytest.raises(ConfigError) as e:
        load_config(bad)
    assert "line" in e.value.problems[0] and "invalid YAML" in e.value.problems[0]


def test_data_dir_and_warehouse_follow_environment_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRADING_DATA_DIR", str(tmp_path / "d"))
    cfg = load_config(GOOD)
    assert cfg.warehouse.path == tmp_path / "d" / "warehouse.duckdb"
    assert cfg.warehouse.serving_dir == tmp_path / "d" / "serving"
    monkeypatch.setenv("TRADING_WAREHOUSE", str(tmp_path / "w.duckdb"))
    assert load_config(GOOD).warehouse.path == tmp_path / "w.duckdb"


def test_config_validate_command_exits_2_and_lists_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("market_data:\n  universes: []\n")
    assert main(["config", "validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "market_data.universes (line 2)" in err
    assert main(["config", "validate", str(GOOD)]) == 0


def test_config_option_is_accepted_after_the_subcommand(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("market_data:\n  universes: []\n")
    assert main(["config", "validate", "--config", str(bad)]) == 2
    assert main(["--config", str(GOOD), "config", "validate"]) == 0
