"""What the stress tests share: a copy of the sample warehouse and a config whose venues charge
nothing (so a buy-and-hold curve can be computed by hand from the same bars)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.paper_support import sample_warehouse
from trading_core.config import load_config
from trading_core.stress.config import StrategySpec
from trading_core.warehouse import Warehouse

ZERO_FEES = {"fees": {"tiers": [{"min_volume_30d": 0.0, "maker_bps": 0.0, "taker_bps": 0.0}]}}


def warehouse_copy(dest: Path, cache_root: Path) -> Warehouse:
    return sample_warehouse(dest, cache_root)


def trading_config(data_dir: Path, *, zero_fees: bool = False, paths: int = 40, paths_per_chunk: int = 20,
                   strategies: tuple[StrategySpec, ...] | None = None, **mc: Any) -> Any:
    cfg = load_config()
    stress = cfg.stress
    stress = stress.model_copy(update={
        "montecarlo": stress.montecarlo.model_copy(update={"paths": paths, "paths_per_chunk": paths_per_chunk, **mc}),
        **({"strategies": strategies} if strategies is not None else {})})
    upd: dict[str, Any] = {"data_dir": data_dir, "stress": stress}
    if zero_fees:
        upd["venues"] = {"yahoo": ZERO_FEES, "coinbase": ZERO_FEES}
    return cfg.model_copy(update=upd)
