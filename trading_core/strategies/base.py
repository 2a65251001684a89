"""The strategy interface every rule, model-driven or composite strategy implements.

A strategy turns bars into boolean *entry* and *exit* signals, one column per portfolio, decided at
each bar's close (so with ``fill_at="next_open"`` the engine fills at the next bar's open, and with
``"close"`` at that same close; a signal never looks at a later bar).

Portfolio layout: a strategy has V parameter *variants* (1 for a plain run, the grid size for a
sweep) and is run on S symbols, giving P = V x S portfolios; portfolio ``p`` trades symbol
``p % S`` with variant ``p // S`` (variant-major). ``portfolio_symbols`` gives the engine its
``symbol_of`` array.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar, cast, runtime_checkable

import numpy as np
import numpy.typing as npt
import polars as pl
from pydantic import BaseModel, ConfigDict, field_validator

if TYPE_CHECKING:
    from .streaming import SignalStream

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]

_PRICE_FIELDS = ("open", "high", "low", "close", "volume")

# The largest integer any strategy parameter may take: every integer parameter is a window, a
# lookback, a count of bars held or similar, and a longer one than this (~400 years of daily
# bars) only overflows the indicator kernels (int64 / Numba) instead of meaning anything.
MAX_WINDOW = 100_000


def _too_big(v: Any) -> int | None:
    """The first integer in ``v`` (an int or nested tuples/lists of them) beyond +-MAX_WINDOW."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v if abs(v) > MAX_WINDOW else None
    if isinstance(v, tuple | list):
        for x in v:
            bad = _too_big(x)
            if bad is not None:
                return bad
    return None


class StrategyParams(BaseModel):
    """Base of every strategy's parameter model: unknown keys are errors, values are frozen, and
    every integer (plain or inside a ``grid``) is bounded by ``MAX_WINDOW``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="after")
    @classmethod
    def _bounded_ints(cls, v: Any) -> Any:
        bad = _too_big(v)
        if bad is not None:
            shown = str(bad) if len(str(bad)) <= 12 else f"{bad:.3g}"
            raise ValueError(f"{shown} is beyond the limit of {MAX_WINDOW} bars")
        return v


P = TypeVar("P", bound=StrategyParams)


class SingleVariantStrategy(Generic[P]):
    """Construction shared by strategies that run one parameter set (one portfolio per symbol);
    subclasses set ``name`` and ``Params`` and implement ``warmup_bars``, ``signals`` and
    ``stream``."""

    name: ClassVar[str]
    Params: ClassVar[type[StrategyParams]]
    params: P

    def __init__(self, params: P | None = None) -> None:
        self.params = params if params is not None else cast(P, self.Params())

    def variants(self) -> list[dict[str, Any]]:
        return [self.params.model_dump()]


@dataclass(frozen=True)
class Bars:
    """Aligned bars of S symbols: ``ts`` (T,) int64 epoch ms (open time, UTC), prices (T, S)."""

    ts: npt.NDArray[np.int64]
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray
    symbols: tuple[str, ...] = ("",)

    @property
    def n_bars(self) -> int:
        return int(self.close.shape[0])

    @property
    def n_symbols(self) -> int:
        return int(self.close.shape[1])

    @classmethod
    def from_frame(cls, frame: pl.DataFrame, symbol: str = "") -> Bars:
        """One symbol's canonical OHLCV frame (ts, open, high, low, close, volume) as (T, 1)."""
        missing = [c for c in ("ts", *_PRICE_FIELDS) if c not in frame.columns]
        if missing:
            raise ValueError(f"bars frame lacks columns {missing}")
        ts = frame["ts"]
        if ts.dtype.is_temporal():
            ts_ms = ts.dt.epoch("ms").to_numpy().astype(np.int64)
        else:
            ts_ms = ts.to_numpy().astype(np.int64)
        cols = {c: frame[c].cast(pl.Float64).to_numpy().reshape(-1, 1).copy() for c in _PRICE_FIELDS}
        return cls(ts=ts_ms, symbols=(symbol,), **cols)


def aligned_bars(frames: Sequence[pl.DataFrame], symbols: Sequence[str]) -> Bars:
    """Several symbols' frames on the timestamps ALL of them have (an account trades them at the
    same instants; a symbol's missing bar would otherwise need a price that never traded); one
    frame as it is. The result may hold no bar: callers say what that means for them."""
    if len(frames) == 1:
        return Bars.from_frame(frames[0], symbols[0])
    common = frames[0].select("ts")
    for f in frames[1:]:
        common = common.join(f.select("ts"), on="ts", how="inner")
    common = common.sort("ts")
    parts = [Bars.from_frame(common.join(f, on="ts", how="left").sort("ts"), s)
             for f, s in zip(frames, symbols, strict=True)]
    stack = {k: np.hstack([getattr(b, k) for b in parts]) for k in _PRICE_FIELDS}
    return Bars(ts=parts[0].ts, symbols=tuple(symbols), **stack)


def as_bars(bars: Any) -> Bars:
    """Accept ``Bars``, a canonical polars frame, or any object with ts/open/.../volume arrays.

    1-D price arrays are taken as one symbol. This is what lets strategies take the engine's own
    bar container or a frame read from the warehouse without either depending on the other.
    """
    if isinstance(bars, Bars):
        return bars
    if isinstance(bars, pl.DataFrame):
        return Bars.from_frame(bars)
    try:
        arrays = {c: np.asarray(getattr(bars, c), dtype=np.float64) for c in _PRICE_FIELDS}
        ts = np.asarray(bars.ts)
    except AttributeError as e:
        raise TypeError(f"cannot read bars from {type(bars).__name__}: {e}") from None
    arrays = {c: a.reshape(-1, 1) if a.ndim == 1 else a for c, a in arrays.items()}
    if ts.dtype.kind == "M":
        ts = ts.astype("datetime64[ms]").astype(np.int64)
    shape = arrays["close"].shape
    if any(a.shape != shape for a in arrays.values()) or ts.shape != (shape[0],):
        raise ValueError("bars arrays disagree in shape")
    symbols = tuple(getattr(bars, "symbols", ("",) * shape[1]))
    return Bars(ts=ts.astype(np.int64), symbols=symbols, **arrays)


@runtime_checkable
class Strategy(Protocol):
    """What the backtest runner, paper trading and sweeps need from a strategy."""

    name: ClassVar[str]
    Params: ClassVar[type[StrategyParams]]  # the registry validates user input with it
    params: StrategyParams

    def variants(self) -> list[dict[str, Any]]:
        """The parameter set of each variant (V entries; V=1 unless it is a grid)."""
        ...

    def warmup_bars(self) -> int:
        """Bars needed before the first signal can be true (history to load before a live run)."""
        ...

    def signals(self, bars: Any) -> tuple[BoolArray, BoolArray]:
        """(entries, exits), each bool (T, V x S), decided at each bar's close."""
        ...

    def stream(self, n_symbols: int) -> SignalStream:
        """The same signals one bar at a time on ``n_symbols`` symbols (``strategies.streaming``).

        Fed the bars of a history one at a time (``update(bar)``), the stream's flags at bar t
        equal row t of ``signals()`` on that history bit for bit, at O(1) or O(window) cost per
        bar (never a recomputation over the growing history); ``state()`` -> ``load_state`` into
        a freshly built stream continues identically (a checkpoint of a live session).
        """
        ...


def portfolio_symbols(n_variants: int, n_symbols: int) -> npt.NDArray[np.int64]:
    """``symbol_of`` for the engine: portfolio p trades symbol ``p % n_symbols``."""
    return np.tile(np.arange(n_symbols, dtype=np.int64), n_variants)
