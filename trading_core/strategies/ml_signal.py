"""``ml_signal``: trade the registered model's predictions (the champion, or a pinned version).

At each bar's close the model's inputs are computed from the bars seen so far, with the same
code the training dataset used (``features.compute_features`` -> ``ml.model_features``), and the
model's probability that the label is positive decides: long above ``entry_threshold``, flat
below ``exit_threshold``. The model is loaded through ``ml.registry.Registry.load_verified``
(ours only, artifact hash checked) and is resolved ONCE, when the strategy first needs it: a
backtest follows the alias as it was at its start, so a rerun with ``version=N`` reproduces it.

``reload=true`` (paper sessions): the stream re-reads the ``champion`` alias at every bar
boundary and, when it moved, loads the new version before deciding that bar; ``take_switch()``
reports it once, and the Trader writes a ``ModelSwitched`` event into the ledger. Every event the
Trader emits carries ``event_tag`` (``<model>@v<version>``), so the ledger says which version
decided each order. Nothing is loaded at construction (listing strategies needs no registry).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import polars as pl
from pydantic import Field, model_validator

from ._common import StreamBase
from .base import BoolArray, SingleVariantStrategy, StrategyParams, as_bars
from .streaming import BarSlice

__all__ = ["MlSignal", "MlSignalParams"]


class MlSignalParams(StrategyParams):
    version: int = Field(default=0, ge=0, description="registered version; 0 = the champion alias")
    model: str = Field(default="", max_length=100, pattern=r"^[A-Za-z0-9_.\-]*$",
                       description="registered model name; empty = models.tracking.registered_model")
    entry_threshold: float = Field(default=0.55, gt=0, lt=1, allow_inf_nan=False)
    exit_threshold: float = Field(default=0.45, gt=0, lt=1, allow_inf_nan=False)
    reload: bool = Field(default=False, description="follow the champion alias at bar boundaries (paper)")

    @model_validator(mode="after")
    def _order(self) -> MlSignalParams:
        if self.exit_threshold > self.entry_threshold:
            raise ValueError("exit_threshold must not be above entry_threshold")
        return self


class _Loaded:
    """A verified model and what trading it needs: the pin and the feature spec of its series."""

    def __init__(self, registry: Any, pin: Any, model: Any, spec: Any) -> None:
        self.registry, self.pin, self.model, self.spec = registry, pin, model, spec

    @property
    def tag(self) -> str:
        return str(self.pin.tag())


def _load(params: MlSignalParams, registry: Any = None) -> _Loaded:
    from ..config import load_config
    from ..features.compute import FeatureSpec
    from ..features.pipeline import series_spec
    from ..ml.registry import Registry

    if registry is None:
        cfg = load_config()
        registry = Registry.from_config(cfg.models, cfg.data_dir)
        if params.model:
            registry = Registry(registry.uri, registry.artifact_dir, registry.experiment, params.model)
    pin = registry.resolve(params.version or None)
    model = registry.load_verified(pin)
    series = dict(registry.version(pin.version).tags or {}).get("series", "::1d").split(":")
    tf = series[2] if len(series) == 3 else "1d"
    calendar: Literal["crypto", "equity"] = "equity" if series[0] == "yahoo" else "crypto"
    return _Loaded(registry, pin, model, series_spec(FeatureSpec(), tf, calendar))


def _proba(loaded: _Loaded, frame: pl.DataFrame) -> np.ndarray:
    """(T,) probability per bar of ``frame`` (NaN while an input is warming up)."""
    from ..features.compute import compute_features
    from ..ml.model_features import MODEL_FEATURES, model_features

    X = model_features(compute_features(frame, loaded.spec), frame).select(MODEL_FEATURES).to_numpy()
    out = np.full(X.shape[0], np.nan)
    ok = np.isfinite(X).all(axis=1)
    if ok.any():
        out[ok] = loaded.model.predict_proba(X[ok])[:, 1]
    return out


def _frame(ts: np.ndarray, o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray, v: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame({"ts": pl.Series(ts.astype(np.int64)).cast(pl.Datetime("ms", "UTC")), "open": o, "high": h,
                         "low": lo, "close": c, "volume": v})


class MlSignal(SingleVariantStrategy[MlSignalParams]):
    """Long/flat on the registered model's probability; one portfolio per symbol."""

    name: ClassVar[str] = "ml_signal"
    Params: ClassVar[type[StrategyParams]] = MlSignalParams

    def __init__(self, params: MlSignalParams | None = None, *, registry: Any = None) -> None:
        super().__init__(params)
        self._registry = registry
        self._loaded: _Loaded | None = None

    def loaded(self) -> _Loaded:
        """The model, resolved once (alias -> version) on first use."""
        if self._loaded is None:
            self._loaded = _load(self.params, self._registry)
        return self._loaded

    @property
    def event_tag(self) -> str:
        return self.loaded().tag

    def variants(self) -> list[dict[str, Any]]:
        """The params plus the resolved model (``model_version``: ``name@vN``), so every stored
        result names the version that traded."""
        return [{**self.params.model_dump(), "model_version": self.loaded().tag}]

    def warmup_bars(self) -> int:
        from ..features.compute import FeatureSpec, lookback_bars

        return lookback_bars(FeatureSpec()) + 25

    def signals(self, bars: Any) -> tuple[BoolArray, BoolArray]:
        b = as_bars(bars)
        loaded = self.loaded()
        ent = np.zeros((b.n_bars, b.n_symbols), np.bool_)
        ex = np.zeros_like(ent)
        for s in range(b.n_symbols):
            p = _proba(loaded, _frame(b.ts, b.open[:, s], b.high[:, s], b.low[:, s], b.close[:, s], b.volume[:, s]))
            ent[:, s] = p > self.params.entry_threshold
            ex[:, s] = p < self.params.exit_threshold
        return ent, ex

    def stream(self, n_symbols: int) -> MlSignalStream:
        return MlSignalStream(self, n_symbols)


class MlSignalStream(StreamBase):
    """The last ``W`` bars in a ring; each bar recomputes the inputs over them (every feature at
    bar t depends only on the last ``lookback_bars`` bars, so this equals the batch value) and
    predicts one row per symbol. O(W) per bar."""

    _arrays = ("ring",)

    def __init__(self, strategy: MlSignal, n_symbols: int) -> None:
        super().__init__(n_symbols)
        self.strategy = strategy
        self.W = strategy.warmup_bars() + 1
        self.ring = np.full((self.W, 6, n_symbols), np.nan)  # ts, o, h, l, c, v
        self._switch: tuple[str, str] | None = None

    @property
    def event_tag(self) -> str:
        return self.strategy.event_tag

    def take_switch(self) -> tuple[str, str] | None:
        """(previous, current) once after the model changed at a bar boundary, else None."""
        s, self._switch = self._switch, None
        return s

    def _maybe_reload(self) -> None:
        st = self.strategy
        if not st.params.reload:
            return
        cur = st.loaded()
        latest = cur.registry.alias_version("champion")
        if latest is not None and latest != cur.pin.version:
            new = _load(st.params.model_copy(update={"version": latest}), cur.registry)
            st._loaded = new
            self._switch = (cur.tag, new.tag)

    def update(self, bar: BarSlice) -> tuple[BoolArray, BoolArray]:
        self._maybe_reload()
        self.ring[:-1] = self.ring[1:]
        self.ring[-1, 0] = bar.ts
        for i, x in enumerate((bar.open, bar.high, bar.low, bar.close, bar.volume), start=1):
            self.ring[-1, i] = x
        self.t += 1
        n = min(self.t, self.W)
        win = self.ring[-n:]
        ent = np.zeros(self.columns, np.bool_)
        ex = np.zeros(self.columns, np.bool_)
        loaded = self.strategy.loaded()
        for s in range(self.columns):
            w = win[:, :, s]
            p = _proba(loaded, _frame(w[:, 0], w[:, 1], w[:, 2], w[:, 3], w[:, 4], w[:, 5]))[-1]
            ent[s] = p > self.strategy.params.entry_threshold
            ex[s] = p < self.strategy.params.exit_threshold
        return ent, ex

