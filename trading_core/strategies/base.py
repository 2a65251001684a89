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
    """Several symbols' frames on the UNION of their timestamps (a portfolio of a 24/7 venue and a
    session venue steps whenever any of its markets has a bar); one frame as it is.

    A symbol with no bar at a step is *closed* there: its price fields are NaN (NaN = no bar, the
    one mechanism the engine, the Trader and ``own_bar_signals`` read). The result may hold no
    bar: callers say what that means for them."""
    if len(frames) == 1:
        return Bars.from_frame(frames[0], symbols[0])
    union = pl.concat([f.select("ts") for f in frames]).unique().sort("ts")
    parts = [Bars.from_frame(union.join(f, on="ts", how="left").sort("ts"), s)
             for f, s in zip(frames, symbols, strict=True)]
    stack = {k: np.hstack([getattr(b, k) for b in parts]) for k in _PRICE_FIELDS}
    return Bars(ts=parts[0].ts, symbols=tuple(symbols), **stack)


def open_mask(bars: Bars) -> BoolArray:
    """(T, S) True where the symbol has a bar (its close is a number)."""
    return np.isfinite(bars.close)


def symbol_bars(bars: Bars, s: int, rows: npt.NDArray[np.int64] | None = None) -> Bars:
    """Symbol ``s`` alone, on ``rows`` (default: its own real bars), as (T_s, 1)."""
    if rows is None:
        rows = np.flatnonzero(np.isfinite(bars.close[:, s]))
    return Bars(ts=bars.ts[rows], symbols=(bars.symbols[s] if s < len(bars.symbols) else "",),
                **{k: getattr(bars, k)[rows, s:s + 1] for k in _PRICE_FIELDS})


def own_bar_signals(strategy: Strategy, bars: Any) -> tuple[BoolArray, BoolArray]:
    """``strategy.signals`` with each symbol's indicators computed on its OWN bars.

    On a union calendar a closed symbol's bars are NaN; a rolling window over them would carry NaN
    (or, padded, flat weekend bars of an equity). So when any bar is closed each symbol is
    evaluated alone on its real bars and its flags are put back on the union rows; a closed bar
    carries no signal. Without a closed bar this is ``strategy.signals(bars)`` unchanged. Every
    batch caller (backtests, the stepped Trader's replayed signals, stress, Monte Carlo) goes
    through here (``backtest.runner.warmed_signals``)."""
    b = as_bars(bars)
    is_open = open_mask(b)
    if b.n_symbols == 1 or bool(is_open.all()):
        return strategy.signals(b)
    T, S = b.n_bars, b.n_symbols
    V = len(strategy.variants())
    entries = np.zeros((T, V * S), np.bool_)
    exits = np.zeros((T, V * S), np.bool_)
    for s in range(S):
        rows = np.flatnonzero(is_open[:, s])
        if rows.shape[0] == 0:
            continue
        e, x = strategy.signals(symbol_bars(b, s, rows))
        cols = np.arange(V) * S + s
        entries[np.ix_(rows, cols)] = np.asarray(e, np.bool_).reshape(rows.shape[0], V)
        exits[np.ix_(rows, cols)] = np.asarray(x, np.bool_).reshape(rows.shape[0], V)
    return entries, exits


class OwnBarsStream:
    """A strategy's ``SignalStream`` on S symbols that feeds each symbol's own stream only on that
    symbol's real bars (the streaming twin of ``own_bar_signals``): flags at a closed bar are
    False. On bars where every symbol is open it gives the joint stream's flags (strategies decide
    each symbol on its own bars), so paper sessions and the stepped Trader agree with backtests."""

    def __init__(self, strategy: Strategy, n_symbols: int) -> None:
        self.S = int(n_symbols)
        self.V = len(strategy.variants())
        self.columns = self.V * self.S
        self.streams = [strategy.stream(1) for _ in range(self.S)]
        self.event_tag = getattr(self.streams[0], "event_tag", None) if self.streams else None
        self._cols = [np.arange(self.V) * self.S + s for s in range(self.S)]

    def update(self, bar: Any) -> tuple[BoolArray, BoolArray]:
        from .streaming import BarSlice

        ent = np.zeros(self.columns, np.bool_)
        ex = np.zeros(self.columns, np.bool_)
        for s, st in enumerate(self.streams):
            if bar.close[s] != bar.close[s]:  # NaN: closed
                continue
            one = BarSlice(int(bar.ts), bar.open[s:s + 1], bar.high[s:s + 1], bar.low[s:s + 1],
                           bar.close[s:s + 1], bar.volume[s:s + 1])
            e, x = st.update(one)
            ent[self._cols[s]] = e
            ex[self._cols[s]] = x
        tag = getattr(self.streams[0], "event_tag", None) if self.streams else None
        self.event_tag = tag
        return ent, ex

    def take_switch(self) -> Any:
        """A model-driven strategy's switch of model version (the first symbol's stream speaks)."""
        out = None
        for st in self.streams:
            f = getattr(st, "take_switch", None)
            got = f() if f is not None else None
            out = out or got
        return out

    def state(self) -> dict[str, Any]:
        return {"own_bars": [st.state() for st in self.streams]}

    def load_state(self, state: dict[str, Any]) -> None:
        for st, sub in zip(self.streams, state["own_bars"], strict=True):
            st.load_state(sub)


def signal_stream(strategy: Strategy, n_symbols: int) -> Any:
    """The stream a Trader or a paper session runs: the strategy's own for one symbol, else one
    per symbol on its own bars (``OwnBarsStream``), so a closed market never enters an indicator."""
    if n_symbols <= 1:
        return strategy.stream(n_symbols)
    return OwnBarsStream(strategy, n_symbols)


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
