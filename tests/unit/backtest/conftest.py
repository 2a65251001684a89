"""Fixtures of the backtest tests (helpers live in bt_helpers.py)."""

from __future__ import annotations

import polars as pl
import pytest
from bt_helpers import build_warehouse

from trading_core.warehouse import Warehouse


@pytest.fixture(scope="module")
def spx_warehouse(tmp_path_factory: pytest.TempPathFactory, sp500: pl.DataFrame) -> Warehouse:
    """A migrated warehouse holding ^GSPC daily bars on venue yahoo (1999-2018)."""
    return build_warehouse(tmp_path_factory.mktemp("wh") / "warehouse.duckdb", sp500)
