"""Backtest-vs-paper attribution: why a session's fills differ from a backtest's on the same bars.

Each backtest fill is matched to the session fill of the same symbol and side nearest in time
(within ``window`` bars, each session fill used once). The cash difference of the trades is then
split into:

- **timing**: matched fills on different bars (the decision or the fill came later/earlier; the
  market moved in between) -- ``(paper price - backtest price) x signed quantity``;
- **price**: matched fills on the same bar at different prices (slippage, latency, fill model);
- **fees**: the fee difference of matched fills;
- **partial**: the notional a matched fill lacked (positive) or exceeded, at the backtest's price;
- **missed** / **extra**: the notional of backtest fills with no session counterpart and the reverse.

timing, price and fees are cash costs, signed so that positive means the session did worse (paid
more or received less); their sum is ``explained``. partial, missed and extra change exposure,
not the cost of a trade: what they did to the result is in the ``residual`` -- the equity gap
(backtest final equity minus the session's) that the cash costs do not explain.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Attribution", "FillRow", "attribute", "attribute_session"]


@dataclass(frozen=True)
class FillRow:
    bar: int
    symbol: str
    side: str  # buy | sell
    qty: float
    price: float
    fee: float

    @property
    def sign(self) -> int:
        return 1 if self.side == "buy" else -1


@dataclass
class Attribution:
    matched: int = 0
    same_bar: int = 0
    timing_fills: int = 0
    partial_fills: int = 0
    missed_fills: int = 0
    extra_fills: int = 0
    timing: float = 0.0
    price: float = 0.0
    partial: float = 0.0
    missed: float = 0.0
    extra: float = 0.0
    fees: float = 0.0
    paper_equity: float | None = None
    backtest_equity: float | None = None
    details: list[dict[str, Any]] = field(default_factory=list)

    @property
    def explained(self) -> float:
        return self.timing + self.price + self.fees

    @property
    def equity_gap(self) -> float | None:
        """Backtest final equity minus the session's (positive: the session did worse)."""
        if self.paper_equity is None or self.backtest_equity is None:
            return None
        return self.backtest_equity - self.paper_equity

    @property
    def residual(self) -> float | None:
        gap = self.equity_gap
        return None if gap is None else gap - self.explained

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(explained=self.explained, equity_gap=self.equity_gap, residual=self.residual)
        return d


def attribute(paper: list[FillRow], backtest: list[FillRow], *, window: int = 5,
              tol: float = 1e-9) -> Attribution:
    """Match and split; see the module docstring. Fills are in time order."""
    out = Attribution()
    used = [False] * len(paper)
    for b in backtest:
        best, best_d = None, None
        for k, p in enumerate(paper):
            if used[k] or p.symbol != b.symbol or p.side != b.side:
                continue
            d = abs(p.bar - b.bar)
            if d <= window and (best_d is None or d < best_d):
                best, best_d = k, d
                if d == 0:
                    break
        if best is None:
            out.missed_fills += 1
            out.missed += b.qty * b.price
            out.details.append({"kind": "missed", "bar": b.bar, "symbol": b.symbol, "side": b.side, "qty": b.qty})
            continue
        used[best] = True
        p = paper[best]
        out.matched += 1
        q = min(p.qty, b.qty)
        cost = (p.price - b.price) * q * b.sign  # buying dearer / selling cheaper costs
        if p.bar == b.bar:
            out.same_bar += 1
            out.price += cost
        else:
            out.timing_fills += 1
            out.timing += cost
        if abs(p.qty - b.qty) > tol * max(1.0, b.qty):
            out.partial_fills += 1
            out.partial += (b.qty - p.qty) * b.price
            out.details.append({"kind": "partial", "bar": p.bar, "symbol": p.symbol, "side": p.side,
                                "paper_qty": p.qty, "backtest_qty": b.qty})
        out.fees += p.fee - b.fee
        if p.bar != b.bar or abs(p.price - b.price) > tol * b.price:
            out.details.append({"kind": "timing" if p.bar != b.bar else "price", "symbol": p.symbol, "side": p.side,
                                "paper_bar": p.bar, "backtest_bar": b.bar, "paper_price": p.price,
                                "backtest_price": b.price, "cost": cost})
    for k, p in enumerate(paper):
        if not used[k]:
            out.extra_fills += 1
            out.extra += p.qty * p.price
            out.details.append({"kind": "extra", "bar": p.bar, "symbol": p.symbol, "side": p.side, "qty": p.qty})
    return out


def attribute_session(session_id: str, *, store: Any, ledger: Any, warehouse: Any,
                      baseline: dict[str, Any] | None = None, window: int = 5) -> Attribution:
    """The session's fills against ``trading backtest --risk`` of its request over the bars it has
    processed; ``baseline`` overrides request fields of the backtest (``{"slippage": "none"}``:
    what the session's execution costs against ideal fills)."""
    from datetime import UTC, datetime

    from ..backtest import run_backtest
    from ..timeframes import timeframe_ms

    config = store.load(session_id)
    with ledger.connect(read_only=True) as con:
        ck = ledger.checkpoint(con, session_id)
        frame = ledger.events(con, session_id, ["OrderFilled"])
        eq = ledger.equity(con, session_id)
    if ck is None:
        from ..errors import InvalidInput

        raise InvalidInput(f"session {session_id} has processed no bar yet: nothing to attribute")
    symbols = tuple(config.request.universe)
    paper = []
    for row in frame.iter_rows(named=True):
        d = json.loads(row["payload"])
        paper.append(FillRow(int(d["bar"]), row["symbol"] or symbols[0], d["side"], float(d["qty"]),
                             float(d["price"]), float(d["fee"])))
    end = datetime.fromtimestamp((ck.last_bar_ts + timeframe_ms(config.request.timeframe)) / 1000.0, tz=UTC)
    request = config.request.model_copy(update={"end": end, "persist": False, **(baseline or {})})
    request = type(request).model_validate(request.model_dump())  # re-validate the overrides
    res = run_backtest(request, warehouse)
    bt = [FillRow(int(f["bar"]), symbols[int(f["symbol"])], "buy" if int(f["side"]) == 0 else "sell",
                  float(f["qty"]), float(f["price"]), float(f["fee"])) for f in res.fills]
    out = attribute(paper, bt, window=window)
    out.paper_equity = float(eq.filter(eq["bar_index"] == eq["bar_index"].max())["equity"].sum()) if eq.height else None
    out.backtest_equity = float(res.equity[-1].sum())
    return out
