"""The stress configuration is strict: unknown keys, bad bounds and a broken catalogue are refused
with the place they are in."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from trading_core.config import load_config
from trading_core.errors import ConfigError
from trading_core.stress.catalogue import load_catalogue
from trading_core.stress.config import (
    ComputeConfig,
    Distribution,
    MonteCarloConfig,
    StressConfig,
    SweepConfig,
)


def test_the_shipped_config_has_the_stress_section_with_in_process_compute() -> None:
    cfg = load_config().stress
    assert cfg.compute.dask_scheduler is None and cfg.montecarlo.paths == 1000
    assert cfg.montecarlo.risk is True and cfg.schedules.enabled


def test_unknown_stress_keys_are_config_errors(tmp_path: Path) -> None:
    doc = yaml.safe_load(Path("config/trading.yaml").read_text())
    doc["stress"]["montecarlo"]["pathz"] = 5
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert any("pathz" in p for p in e.value.problems)


@pytest.mark.parametrize("bad", [
    {"paths": 0}, {"paths_per_chunk": 0}, {"ruin_drawdown": 1.5}, {"percentiles": (101.0,)},
    {"execution": {"fill_prob": {"kind": "fixed", "value": 1.5}}},
])
def test_monte_carlo_bounds_are_enforced(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        MonteCarloConfig.model_validate(bad)


def test_distributions_grids_and_scheduler_addresses_are_checked() -> None:
    with pytest.raises(ValidationError):
        Distribution(kind="uniform", low=5, high=1)
    with pytest.raises(ValidationError):
        Distribution(kind="fixed", value=float("nan"))
    with pytest.raises(ValidationError):
        SweepConfig(name="x", strategy="macd", venue="yahoo", symbol="^GSPC", timeframe="1d", start="2010-01-01",
                    end="2011-01-01", grid={"fast": (5, 5)})
    with pytest.raises(ValidationError):
        ComputeConfig(dask_scheduler="http://evil; rm -rf /")
    assert ComputeConfig(dask_scheduler="tcp://10.0.0.5:8786").dask_scheduler == "tcp://10.0.0.5:8786"
    assert StressConfig().crises_file == Path("config/crises.yaml")


def test_a_broken_catalogue_names_its_file_and_the_problem(tmp_path: Path) -> None:
    doc = yaml.safe_load(Path("config/crises.yaml").read_text())
    doc["crises"].append(copy.deepcopy(doc["crises"][0]))  # a duplicate name
    bad = tmp_path / "crises.yaml"
    bad.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError, match="unique"):
        load_catalogue(bad)
    doc["crises"] = [{**copy.deepcopy(doc["crises"][0]), "end": "2000-01-01"}]
    bad.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError, match="must be after start"):
        load_catalogue(bad)
