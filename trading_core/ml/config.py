"""``ModelsConfig``: the ``models:`` section of config/trading.yaml (labels, walk-forward, models,
promotion, drift, tracking, retraining).

Pure pydantic, no heavy imports: ``trading_core.config`` imports it at start-up. Every number is
finite and bounded, unknown keys are errors (a typo never silently falls back to a default).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..symbols import Symbol, Venue
from ..timeframes import Timeframe

__all__ = [
    "MODEL_KINDS", "DriftConfig", "LabelConfig", "ModelKind", "ModelsConfig", "PromotionConfig",
    "TrackingConfig", "WalkForwardConfig",
]

ModelKind = Literal["logistic", "random_forest", "xgboost", "ensemble"]
MODEL_KINDS: tuple[str, ...] = ("logistic", "random_forest", "xgboost", "ensemble")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class LabelConfig(_Strict):
    """What a row's label means. ``direction``: close ``horizon`` bars later above this close.
    ``triple_barrier``: the take-profit barrier (``tp_atr`` ATRs above the close) is touched before
    the stop (``sl_atr`` below) within ``horizon`` bars; a timeout counts as the sign of the return."""

    kind: Literal["direction", "triple_barrier"] = "direction"
    horizon: int = Field(default=5, ge=1, le=500, description="bars ahead the label looks")
    tp_atr: float = Field(default=2.0, gt=0, le=50)
    sl_atr: float = Field(default=2.0, gt=0, le=50)


class WalkForwardConfig(_Strict):
    """Out-of-sample folds in time order. ``rolling``: each fold trains on the last ``train_bars``
    before its test window; ``anchored``: on everything since the first row. Training rows whose
    label window reaches into the test window are purged, and ``embargo_bars`` more are dropped
    between train and test (serial correlation of features)."""

    scheme: Literal["rolling", "anchored"] = "rolling"
    folds: int = Field(default=5, ge=2, le=50)
    train_bars: int = Field(default=1500, ge=100, le=1_000_000)
    test_bars: int = Field(default=500, ge=20, le=1_000_000)
    embargo_bars: int = Field(default=5, ge=0, le=10_000)


class PromotionConfig(_Strict):
    """When a challenger may become champion: it beats the champion's walk-forward ``metric`` by
    ``margin`` (and, unless it is the baseline, the baseline's by the same margin), and passes the
    sanity bounds on its out-of-sample predictions."""

    metric: Literal["auc", "balanced_accuracy", "accuracy", "neg_log_loss"] = "auc"
    margin: float = Field(default=0.005, ge=0, le=1)
    min_mean_proba: float = Field(default=0.05, ge=0, le=1, description="mean predicted probability lower bound")
    max_mean_proba: float = Field(default=0.95, ge=0, le=1)
    max_calibration_gap: float = Field(default=0.15, ge=0, le=1,
                                       description="|mean probability - positive rate| out of sample")
    min_trades: int = Field(default=5, ge=0, le=1_000_000, description="round trips of the OOS signal backtest")

    @model_validator(mode="after")
    def _bounds(self) -> PromotionConfig:
        if self.min_mean_proba >= self.max_mean_proba:
            raise ValueError("min_mean_proba must be below max_mean_proba")
        return self


class DriftConfig(_Strict):
    """Thresholds of the drift checks (reference = training window, current = recent window)."""

    window_bars: int = Field(default=126, ge=20, le=100_000, description="bars of the current window")
    psi_warn: float = Field(default=0.2, gt=0, le=100)
    psi_fail: float = Field(default=0.5, gt=0, le=100)
    ks_pvalue_warn: float = Field(default=0.001, gt=0, lt=1, description="per-feature KS p-value (Bonferroni-adjusted)")
    ks_pvalue_fail: float = Field(default=1e-6, gt=0, lt=1)
    warn_fraction: float = Field(default=0.1, gt=0, le=1, description="share of features in warn that warns")
    fail_fraction: float = Field(default=0.25, gt=0, le=1, description="share of features in fail that fails the check")
    prediction_psi_warn: float = Field(default=0.2, gt=0, le=100)
    prediction_psi_fail: float = Field(default=0.5, gt=0, le=100)
    accuracy_drop_warn: float = Field(default=0.05, ge=0, le=1, description="live accuracy below walk-forward")
    accuracy_drop_fail: float = Field(default=0.10, ge=0, le=1)
    bins: int = Field(default=10, ge=3, le=100)

    @model_validator(mode="after")
    def _order(self) -> DriftConfig:
        if self.psi_fail < self.psi_warn or self.prediction_psi_fail < self.prediction_psi_warn:
            raise ValueError("psi fail thresholds must not be below the warn ones")
        if self.ks_pvalue_fail > self.ks_pvalue_warn:
            raise ValueError("ks_pvalue_fail must not be above ks_pvalue_warn")
        if self.accuracy_drop_fail < self.accuracy_drop_warn:
            raise ValueError("accuracy_drop_fail must not be below accuracy_drop_warn")
        return self


class TrackingConfig(_Strict):
    """MLflow: None paths mean ``sqlite:///<data_dir>/mlflow/mlflow.db`` and
    ``<data_dir>/mlflow/artifacts`` (``tracking_uri(data_dir)`` / ``artifact_root(data_dir)``)."""

    uri: str | None = None
    artifact_root: Path | None = None
    experiment: str = Field(default="trading-models", min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.\- ]+$")
    registered_model: str = Field(default="ml_signal", min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.\-]+$")

    def tracking_uri(self, data_dir: Path) -> str:
        return self.uri or f"sqlite:///{(Path(data_dir) / 'mlflow' / 'mlflow.db').resolve()}"

    def artifact_dir(self, data_dir: Path) -> Path:
        return (self.artifact_root or Path(data_dir) / "mlflow" / "artifacts").resolve()


class ModelsConfig(_Strict):
    """The model lifecycle (docs/models.md)."""

    venue: Venue = "yahoo"
    symbol: Symbol = "^GSPC"
    timeframe: Timeframe = "1d"
    calendar: Literal["crypto", "equity"] = "equity"
    label: LabelConfig = LabelConfig()
    walk_forward: WalkForwardConfig = WalkForwardConfig()
    models: tuple[ModelKind, ...] = ("logistic", "random_forest", "xgboost", "ensemble")
    seed: int = Field(default=7, ge=0, le=2**31 - 1)
    rf_trees: int = Field(default=100, ge=1, le=5000)
    xgb_rounds: int = Field(default=150, ge=1, le=10_000)
    max_depth: int = Field(default=4, ge=1, le=32)
    entry_threshold: float = Field(default=0.55, gt=0, lt=1, description="go long above this probability")
    exit_threshold: float = Field(default=0.45, gt=0, lt=1, description="go flat below this probability")
    fee_bps: float = Field(default=5.0, ge=0, le=1000, description="fees of the OOS signal backtest")
    promotion: PromotionConfig = PromotionConfig()
    drift: DriftConfig = DriftConfig()
    tracking: TrackingConfig = TrackingConfig()
    retrain_cron: str = Field(default="0 3 * * 0", min_length=9, max_length=100, description="weekly retrain (UTC)")

    @model_validator(mode="after")
    def _check(self) -> ModelsConfig:
        if "logistic" not in self.models:
            raise ValueError("models must include the logistic baseline")
        if len(set(self.models)) != len(self.models):
            raise ValueError("models are listed twice")
        if self.exit_threshold > self.entry_threshold:
            raise ValueError("exit_threshold must not be above entry_threshold")
        return self
