"""``MlflowResource``: the model registry of the configured tracking store (``models.tracking``).

Kept here rather than in the shared resources.py: only the model assets use it.
"""

from pathlib import Path

import dagster as dg

from trading_core.ml.registry import Registry

from ..resources import TradingConfigResource


class MlflowResource(dg.ConfigurableResource):
    """``tracking_uri``/``artifact_dir`` None: ``sqlite:///<data_dir>/mlflow/mlflow.db`` and
    ``<data_dir>/mlflow/artifacts`` (tests point them at a temporary folder)."""

    trading_config: TradingConfigResource
    tracking_uri: str | None = None
    artifact_dir: str | None = None

    def registry(self) -> Registry:
        cfg = self.trading_config.load()
        base = Registry.from_config(cfg.models, cfg.data_dir)
        return Registry(self.tracking_uri or base.uri, Path(self.artifact_dir) if self.artifact_dir else base.artifact_dir,
                        base.experiment, base.name)


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(resources={"mlflow": MlflowResource(trading_config=TradingConfigResource())})
