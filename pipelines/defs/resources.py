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
from typing import TYPE_CHECKING

import dagster as dg

from trading_core.config import MarketDataConfig, TradingConfig, UniverseConfig, load_config
from trading_core.market_data.ingest import OhlcvSource
from trading_core.warehouse import Warehouse

if TYPE_CHECKING:  # imported lazily: the definitions load without the paper runner's imports
    from trading_core.paper.config import SessionConfig
    from trading_core.paper.control import SessionStore
    from trading_core.paper.runner import SessionRunner
    from trading_core.paper.supervision import SupervisionPolicy
    from trading_core.warehouse.paper import PaperLedger


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


class PaperResource(dg.ConfigurableResource):
    """Paper sessions: their control files, ledger, runner, and the supervisor's thresholds.

    ``data_dir`` None means the configured data directory (``$TRADING_DATA_DIR``): requests and
    status under ``<data_dir>/paper``, the ledger in ``<data_dir>/paper.duckdb``; bars come from the
    configured warehouse unless ``warehouse_path`` names another file. A live session's provider
    comes from ``market_data`` (tests hand in a fake one). The thresholds:

    - ``max_runtime_margin_s``: a run hands over (``chained``) this long before the job's
      ``dagster/max_runtime``, so run monitoring never has to mark a healthy run failed;
    - ``start_grace_s``: how long a started run may go without publishing its first heartbeat;
    - ``max_failed_runs``: failed or cancelled runs in a row (for one request) before the
      supervisor stops restarting the session and waits for a human's resume;
    - ``restart_terminated``: also restart a run a user terminated in the Dagster UI.

    The heartbeat threshold is the session's own ``stale_after_s`` (its ``SessionConfig``).
    """

    trading_config: TradingConfigResource
    market_data: MarketDataResource
    data_dir: str | None = None
    warehouse_path: str | None = None
    max_runtime_margin_s: float = 600.0
    start_grace_s: float = 120.0
    max_failed_runs: int = 3
    restart_terminated: bool = False

    def root(self) -> Path:
        return Path(self.data_dir) if self.data_dir else self.trading_config.load().data_dir

    def store(self) -> SessionStore:
        from trading_core.paper.control import SessionStore

        return SessionStore(self.root() / "paper")

    def ledger(self) -> PaperLedger:
        from trading_core.warehouse.paper import PaperLedger

        return PaperLedger(self.root() / "paper.duckdb")

    def warehouse(self) -> Warehouse:
        """The bars' warehouse, not migrated: the paper job only reads it (ingest owns its schema)."""
        cfg = self.trading_config.load()
        return Warehouse(self.warehouse_path or cfg.warehouse.path, deadline_s=cfg.warehouse.lock_deadline_s)

    def budget_s(self, config: SessionConfig, max_runtime_s: float | None) -> float:
        """The session's run budget, cut to end ``max_runtime_margin_s`` before ``max_runtime_s``."""
        if max_runtime_s is None or max_runtime_s <= 0:
            return config.run_budget_s
        return min(config.run_budget_s, max(1.0, max_runtime_s - self.max_runtime_margin_s))

    def policy(self, config: SessionConfig) -> SupervisionPolicy:
        from trading_core.paper.supervision import SupervisionPolicy

        return SupervisionPolicy(stale_after_s=config.stale_after_s, start_grace_s=self.start_grace_s,
                                 max_failed_runs=self.max_failed_runs, restart_terminated=self.restart_terminated)

    def runner(self, session_id: str, *, run_id: str, budget_s: float | None = None,
               now: datetime | None = None) -> SessionRunner:
        """A ``SessionRunner`` for one run (``build_runner``: a live session gets its provider)."""
        from trading_core.paper.runner import build_runner

        return build_runner(session_id, store=self.store(), ledger=self.ledger(), warehouse=self.warehouse(),
                            run_id=run_id, market_data=self.trading_config.load().market_data,
                            data_dir=self.root(), budget_s=budget_s, now=now,
                            build_provider=self.market_data.provider)


@dg.definitions
def resources() -> dg.Definitions:
    config = TradingConfigResource()
    market_data = MarketDataResource()
    return dg.Definitions(resources={
        "trading_config": config,
        "warehouse": WarehouseResource(trading_config=config),
        "market_data": market_data,
        "paper": PaperResource(trading_config=config, market_data=market_data),
    })
