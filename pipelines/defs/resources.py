"""Resources: thin, typed wrappers that hand trading_core objects to assets.

Nothing here holds a DuckDB connection or a network client across steps: ``Warehouse`` opens a
connection per operation, and a provider is built per step (ccxt's rate limiter is per process,
and Dagster runs each step in its own process). Paths come from the environment at run time
(``TRADING_CONFIG``, ``TRADING_DATA_DIR``, ``TRADING_WAREHOUSE``) through ``load_config``, so the
definitions load even where those are unset, and tests swap in a temporary warehouse or a fake
provider by constructing these resources with different fields.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import dagster as dg

from trading_core.config import MarketDataConfig, TradingConfig, UniverseConfig, load_config
from trading_core.market_data.ingest import OhlcvSource
from trading_core.warehouse import Warehouse


class TradingConfigResource(dg.ConfigurableResource):
    """The validated ``config/trading.yaml``.

    ``config_path`` None means ``$TRADING_CONFIG`` or the project's ``config/trading.yaml``; the
    environment overrides of paths (``TRADING_DATA_DIR`` ...) apply as they do for the CLI, so a
    Dagster run and ``trading ingest`` always agree on which warehouse file they write.
    """

    config_path: str | None = None

    def load(self) -> TradingConfig:
        return load_config(self.config_path)


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse and the folder its read snapshots are published to.

    ``path`` / ``serving_dir`` override the configured locations (tests point them at a temporary
    directory); by default they come from the config, i.e. ``$TRADING_DATA_DIR/warehouse.duckdb``.
    """

    trading_config: TradingConfigResource
    path: str | None = None
    serving_dir: str | None = None

    def get(self) -> Warehouse:
        """A migrated ``Warehouse``; migrating is idempotent and cheap, so every step may call it."""
        cfg = self.trading_config.load()
        wh = Warehouse(self.path or cfg.warehouse.path, deadline_s=cfg.warehouse.lock_deadline_s)
        wh.migrate()
        return wh

    def serving_path(self, name: str) -> Path:
        """Where a snapshot called ``name`` is published (readers never open the live file)."""
        base = Path(self.serving_dir) if self.serving_dir else self.trading_config.load().warehouse.serving_dir
        return base / name


class MarketDataResource(dg.ConfigurableResource):
    """Builds the provider of a universe through trading_core (sample offline, ccxt/yfinance live).

    ``mode`` None keeps ``market_data.mode`` from the config. Tests subclass this resource and
    override :meth:`provider` to feed recorded or deliberately broken bars without a network.
    """

    mode: str | None = None

    def market_config(self, md: MarketDataConfig) -> MarketDataConfig:
        return md.model_copy(update={"mode": self.mode}) if self.mode else md

    def provider(self, universe: UniverseConfig, md: MarketDataConfig, *, now: datetime) -> OhlcvSource:
        from trading_core.market_data.providers import build_provider

        return build_provider(universe, self.market_config(md), now=now)


@dg.definitions
def resources() -> dg.Definitions:
    config = TradingConfigResource()
    return dg.Definitions(resources={
        "trading_config": config,
        "warehouse": WarehouseResource(trading_config=config),
        "market_data": MarketDataResource(),
    })
