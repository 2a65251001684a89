"""Helpers of the backtest tests: real S&P 500 bars, a temporary warehouse, a reference simulator."""

from __future__ import annotations

# ############# Warehouse with real bars ############# #
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import polars as pl

from trading_core.warehouse import Warehouse  # noqa: E402


@dataclass
class _Report:
    """The minimum ``ReportLike`` the warehouse writer takes: every row accepted, no issues."""

    accepted: pl.DataFrame
    dropped: pl.DataFrame = field(default_factory=pl.DataFrame)
    quarantined: pl.DataFrame = field(default_factory=pl.DataFrame)
    issues: list = field(default_factory=list)
    batch_rejected: bool = False
    reject_reason: str | None = None
    rows_in: int = 0


def build_warehouse(path: Path, bars: pl.DataFrame, *, venue: str = "yahoo", symbol: str = "^GSPC",
                    timeframe: str = "1d") -> Warehouse:
    wh = Warehouse(path)
    wh.migrate()
    wh.write_report(venue=venue, symbol=symbol, timeframe=timeframe, source="test:sp500",
                    report=_Report(accepted=bars, rows_in=bars.height))
    return wh


# ############# A slow, obvious signal simulator (stands in for the engine in runner tests) ############# #

from types import SimpleNamespace  # noqa: E402

import numpy as np  # noqa: E402

from trading_core.engine.enums import FILL_DTYPE  # noqa: E402


def reference_simulate(ts, open, high, low, close, volume, *, entries, exits, symbol_of, model,  # noqa: A002
                       cash=100_000.0, size_mode="all_in", size=1.0, short=False, device="cpu", seed=0):
    """Long-only, one symbol per portfolio: all-in or fixed units, flat taker fee and fixed bps slippage."""
    fee = model.fee_tiers[0].taker_bps / 1e4
    slip = model.slippage_bps / 1e4
    n, n_port = entries.shape
    eq, cs, pos_out = np.zeros((n, n_port)), np.zeros((n, n_port)), np.zeros((n, n_port))
    fills = []
    for p in range(n_port):
        s = int(symbol_of[p])
        c, q, oid = float(cash), 0.0, 0
        pending = 0  # +1 buy, -1 sell at the next open
        for t in range(n):
            if pending and model.fill_at == "next_open":
                side, pending = pending, 0
                c, q, oid = _fill(fills, p, s, t, ts[t], side, open[t, s], c, q, oid, fee, slip, size_mode, size, 0)
            want = 1 if (entries[t, p] and q == 0) else (-1 if (exits[t, p] and q > 0) else 0)
            if want:
                if model.fill_at == "close":
                    c, q, oid = _fill(fills, p, s, t, ts[t], want, close[t, s], c, q, oid, fee, slip, size_mode,
                                      size, 3)
                elif t + 1 < n:
                    pending = want
            eq[t, p], cs[t, p], pos_out[t, p] = c + q * close[t, s], c, q
    rec = np.array(fills, dtype=FILL_DTYPE) if fills else np.zeros(0, dtype=FILL_DTYPE)
    return SimpleNamespace(fills=rec, equity=eq, cash=cs, position=pos_out, final_equity=eq[-1])


def _fill(fills, p, s, t, ts, side, ref, c, q, oid, fee, slip, size_mode, size, reason):
    price = ref * (1 + slip) if side > 0 else ref * (1 - slip)
    if side > 0:
        qty = c / (price * (1 + fee)) if size_mode == "all_in" else float(size)
        c -= qty * price * (1 + fee)
        q += qty
    else:
        qty = q
        c += qty * price * (1 - fee)
        q = 0.0
    fills.append((p, s, t, ts, oid, 0 if side > 0 else 1, qty, price, qty * price * fee,
                  qty * abs(price - ref), 1, reason, 0))
    return c, q, oid + 1


# ############# A hand-made strategy: signals exactly on the named days ############# #

from typing import Any, ClassVar  # noqa: E402

from trading_core.strategies import STRATEGIES  # noqa: E402
from trading_core.strategies.base import SingleVariantStrategy, StrategyParams, as_bars  # noqa: E402


class _OnDatesParams(StrategyParams):
    entries: str = ""  # comma-separated YYYY-MM-DD: entry signalled at that bar's close
    exits: str = ""


class OnDates(SingleVariantStrategy[_OnDatesParams]):
    """A hand-made strategy: signals exactly on the named days, so a test knows every decision."""

    name: ClassVar[str] = "on_dates"
    Params: ClassVar[type[StrategyParams]] = _OnDatesParams

    def warmup_bars(self) -> int:
        return 0

    def signals(self, bars: Any) -> tuple[np.ndarray, np.ndarray]:
        b = as_bars(bars)
        days = b.ts.astype("datetime64[ms]").astype("datetime64[D]").astype(str)

        def mask(spec: str) -> np.ndarray:
            want = {d for d in spec.split(",") if d}
            return np.isin(days, list(want))[:, None]

        return mask(self.params.entries), mask(self.params.exits)


def register_on_dates(monkeypatch: Any) -> None:
    """Make ``--strategy on_dates`` / ``strategy="on_dates"`` available for one test."""
    monkeypatch.setitem(STRATEGIES, "on_dates", OnDates)
