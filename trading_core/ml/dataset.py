"""Labelled datasets from the stored features: one row per (symbol, bar), point in time.

``build_dataset`` reads the bars and the stored features of one series from the warehouse (the
features the Dagster features asset wrote), derives the model inputs (``model_features``) and the
label of ``LabelConfig``, and keeps the rows where every input is defined and the label is decided
by a bar that exists. What a dataset was built from is recorded with it: range, feature version
(stored features + model-feature code), and a content hash of exactly the numbers trained on.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt
import polars as pl

from ..errors import InvalidInput
from .config import LabelConfig
from .labels import direction_labels, triple_barrier_labels
from .model_features import MODEL_FEATURES, MODEL_FEATURES_VERSION, model_features

__all__ = ["Dataset", "build_dataset", "dataset_from_frames"]


@dataclass(frozen=True)
class Dataset:
    """X (N, F) float64 in ``columns`` order, y (N,) 0/1, ``ts`` (N,) bar open epoch ms, ``bar``
    (N,) index of the row's bar in the series, ``label_end`` (N,) index of the bar deciding it."""

    venue: str
    symbol: str
    timeframe: str
    columns: tuple[str, ...]
    X: npt.NDArray[np.float64]
    y: npt.NDArray[np.int64]
    ts: npt.NDArray[np.int64]
    bar: npt.NDArray[np.int64]
    label_end: npt.NDArray[np.int64]
    feature_version: str
    label: LabelConfig

    @property
    def rows(self) -> int:
        return int(self.y.shape[0])

    @property
    def start(self) -> datetime:
        return datetime.fromtimestamp(int(self.ts[0]) / 1000, UTC)

    @property
    def end(self) -> datetime:
        return datetime.fromtimestamp(int(self.ts[-1]) / 1000, UTC)

    @property
    def content_hash(self) -> str:
        """sha256 of the inputs, labels, times, column names and label definition."""
        h = hashlib.sha256()
        h.update(",".join(self.columns).encode())
        h.update(self.label.model_dump_json().encode())
        for a in (self.X, self.y, self.ts, self.label_end):
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()

    def describe(self) -> dict[str, object]:
        return {"venue": self.venue, "symbol": self.symbol, "timeframe": self.timeframe, "rows": self.rows,
                "start": self.start.isoformat(), "end": self.end.isoformat(), "feature_version": self.feature_version,
                "content_hash": self.content_hash, "positive_rate": float(self.y.mean()) if self.rows else None,
                "label": self.label.model_dump()}


def dataset_from_frames(bars: pl.DataFrame, features: pl.DataFrame, label: LabelConfig, *, venue: str = "",
                        symbol: str = "", timeframe: str = "", stored_version: str = "computed") -> Dataset:
    """The dataset of one series from its bars (canonical OHLCV) and its feature frame."""
    bars = bars.sort("ts")
    feats = model_features(features, bars)
    joined = bars.select("ts", "high", "low", "close").join(feats, on="ts", how="left").join(
        features.select("ts", "atr"), on="ts", how="left")
    close = joined["close"].cast(pl.Float64).to_numpy()
    if label.kind == "direction":
        y, end = direction_labels(close, label.horizon)
    else:
        atr = joined["atr"].cast(pl.Float64).fill_null(float("nan")).to_numpy()
        y, end = triple_barrier_labels(joined["high"].cast(pl.Float64).to_numpy(),
                                       joined["low"].cast(pl.Float64).to_numpy(), close, atr, label.horizon,
                                       label.tp_atr, label.sl_atr)
    X = joined.select(MODEL_FEATURES).to_numpy().astype(np.float64)
    keep = np.isfinite(X).all(axis=1) & np.isfinite(y)
    idx = np.flatnonzero(keep).astype(np.int64)
    ts = joined["ts"].dt.epoch("ms").to_numpy().astype(np.int64)
    return Dataset(venue, symbol, timeframe, MODEL_FEATURES, np.ascontiguousarray(X[idx]), y[idx].astype(np.int64),
                   ts[idx], idx, end[idx], f"{stored_version}+{MODEL_FEATURES_VERSION}", label)


def build_dataset(warehouse: object, venue: str, symbol: str, timeframe: str, label: LabelConfig,
                  start: datetime | None = None, end: datetime | None = None) -> Dataset:
    """The dataset of the series from the warehouse's bars and stored features, ts in [start, end).

    Raises ``InvalidInput`` naming the series when it has no bars or no stored features (run
    ``trading features update`` or the features asset first) or when the stored rows mix versions.
    """
    from ..warehouse.bars import read_bars
    from ..warehouse.features import read_features

    with warehouse.connect(read_only=True) as con:  # type: ignore[attr-defined]
        bars = read_bars(con, venue, symbol, timeframe, start, end)
        feats = read_features(con, venue, symbol, timeframe, start, end)
    where = f"{venue} {symbol} {timeframe}"
    if bars.height == 0:
        raise InvalidInput(f"{where}: no bars stored; run `trading ingest sample` first")
    if feats.height == 0:
        raise InvalidInput(f"{where}: no stored features; run `trading features update --symbol {symbol}` first")
    versions = feats["feature_version"].unique().to_list()
    if len(versions) != 1:
        raise InvalidInput(f"{where}: stored features mix versions {versions}; recompute them (features update --full)")
    ds = dataset_from_frames(bars, feats.drop("feature_version"), label, venue=venue, symbol=symbol,
                             timeframe=timeframe, stored_version=str(versions[0]))
    if ds.rows < 200:
        raise InvalidInput(f"{where}: only {ds.rows} labelled rows; a model needs at least 200")
    return ds
