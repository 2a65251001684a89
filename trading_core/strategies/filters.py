"""Signal filters: the one place between a strategy's raw signals and the risk layer / engine.

Why one place: a backtest and a paper session must suppress exactly the same signals, so both call
``apply_filters`` (batch, T bars at once) or ``SignalFilter.step`` (one bar at a time); both run the
same Numba kernel over the same carried state, so the streaming result equals the batch result.

Filters, in the order they are applied per bar and portfolio (docs/filters.md):

1. smoothing: a raw signal counts only if it was true in a strict majority of the last
   ``smooth_window`` bars (1 = off);
2. confirmation: the smoothed signal must hold for ``confirm_bars`` consecutive bars (1 = off);
3. exits: minimum holding period -- an exit is suppressed until the position is
   ``min_hold_bars`` bars old;
4. entries: stale-data guard (the bar is older than ``max_bar_age_ms`` at decision time, or the
   gap since the previous bar exceeds ``max_gap_ms``), throttle (at most ``max_trades`` entries
   per ``throttle_window_bars`` bars), then an external block (risk layer: VIX filter, order
   verification) passed in by the caller.

The position model follows the engine's signal rules. Long-only (the default): an entry while
flat opens, an exit while long closes, an entry while long is dropped as ``in_position`` (the
engine would ignore it, and the risk layer must not audit an order that never exists). With
``short=True`` the position is -1/0/+1 and a signal is a target side: an entry goes (or reverses)
long, an exit goes (or reverses) short, so an exit while long both closes the long (min hold
applies) and opens a short (stale data, gap, throttle and the block apply, as to a long entry); a
signal towards the side already held is ``in_position``. A reversal refused on its opening leg is
refused whole: the position is kept rather than half-done. Entries and exits on the same bar
cancel out (the engine's rule). ``block_exit`` (a halted circuit breaker) suppresses exits as
``risk_blocked``. Every raw signal gets a decision record: allowed (0) or the reason it was
suppressed. ``SignalFilter.set_position`` re-syncs the model when the engine's position changed
outside the signals (a stop order filled).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np
import polars as pl

from .filter_config import FilterConfig

__all__ = ["FilterConfig", "FilterReason", "FILTER_REASON_NAMES", "FilteredSignals", "SignalFilter",
           "apply_filters", "decision_rows", "filter_counts", "DECISION_DTYPE"]


class _Reasons:
    ALLOWED = 0
    SMOOTHING = 1
    CONFIRMATION = 2
    MIN_HOLD = 3
    STALE_DATA = 4
    DATA_GAP = 5
    THROTTLED = 6
    RISK_BLOCKED = 7
    CANCELLED = 8  # entry and exit on the same bar
    IN_POSITION = 9  # entry while already long: nothing to open


FilterReason = _Reasons()
FILTER_REASON_NAMES: dict[int, str] = {
    0: "allowed", 1: "smoothing", 2: "confirmation", 3: "min_hold", 4: "stale_data", 5: "data_gap",
    6: "throttled", 7: "risk_blocked", 8: "cancelled", 9: "in_position",
}
ENTRY, EXIT = 0, 1
DECISION_DTYPE = np.dtype([("bar", np.int64), ("portfolio", np.int64), ("kind", np.int8), ("reason", np.int8)])


@numba.njit(cache=True)
def _filter_nb(entries: np.ndarray, exits: np.ndarray, ts: np.ndarray, decision_ts: np.ndarray,
               block: np.ndarray, block_x: np.ndarray, short: bool, smooth_w: int, confirm_n: int,
               min_hold: int, max_trades: int, window: int, max_age: int, max_gap: int, bar0: int,
               prev_ts: np.int64, ring_e: np.ndarray, ring_x: np.ndarray, run_e: np.ndarray, run_x: np.ndarray,
               pos: np.ndarray, held: np.ndarray, trades: np.ndarray, n_trades: np.ndarray,
               out_e: np.ndarray, out_x: np.ndarray, dec: np.ndarray) -> int:
    """Filter T bars for P portfolios, carrying state in the ring/run/pos/held/trades arrays.

    ``bar0`` is the absolute index of row 0 (streaming); returns the number of decisions written.
    ``pos`` is -1/0/+1 (-1 only with ``short``).
    """
    T, P = entries.shape
    nd = 0
    for t in range(T):
        bar = bar0 + t
        gap_bad = False
        if max_gap > 0 and (bar > 0):
            last = ts[t - 1] if t > 0 else prev_ts
            gap_bad = ts[t] - last > max_gap
        stale = max_age > 0 and decision_ts[t] - ts[t] > max_age
        slot = bar % smooth_w
        for p in range(P):
            re = entries[t, p]
            rx = exits[t, p]
            ring_e[p, slot] = re
            ring_x[p, slot] = rx
            ce = 0
            cx = 0
            n = min(bar + 1, smooth_w)
            for k in range(smooth_w):
                ce += ring_e[p, k]
                cx += ring_x[p, k]
            se = 2 * ce > n if smooth_w > 1 else re
            sx = 2 * cx > n if smooth_w > 1 else rx
            run_e[p] = run_e[p] + 1 if se else 0
            run_x[p] = run_x[p] + 1 if sx else 0
            fe = se and run_e[p] >= confirm_n
            fx = sx and run_x[p] >= confirm_n
            er = 0
            if re:
                er = 1 if not se else (2 if not fe else 0)
            xr = 0
            if rx:
                xr = 1 if not sx else (2 if not fx else 0)
            # closing legs: minimum holding period, then a halted book keeps what it holds
            if fx and pos[p] == 1 and held[p] < min_hold:
                fx = False
                xr = 3
            if fe and pos[p] == -1 and held[p] < min_hold:
                fe = False
                er = 3
            if fx and pos[p] == 1 and block_x[t, p]:
                fx = False
                xr = 7
            if fe and pos[p] == -1 and block_x[t, p]:
                fe = False
                er = 7
            # opening legs (new positions only): stale data, gap, throttle, external block
            open_e = fe and pos[p] != 1
            open_x = fx and short and pos[p] != -1
            if open_e or open_x:
                r = 0
                if stale:
                    r = 4
                elif gap_bad:
                    r = 5
                elif max_trades > 0 and window > 0 and n_trades[p] >= max_trades and \
                        bar - trades[p, n_trades[p] % max_trades] < window:
                    r = 6
                elif block[t, p]:
                    r = 7
                if r != 0:
                    if open_e:
                        fe = False
                        er = r
                    if open_x:
                        fx = False
                        xr = r
            if fe and fx:
                fe = False
                fx = False
                er = 8 if re else er
                xr = 8 if rx else xr
            if fe and pos[p] == 1:  # already long: the engine would ignore it; say so
                fe = False
                er = 9
            if fx and short and pos[p] == -1:  # already short
                fx = False
                xr = 9
            if re:
                dec[nd, 0] = bar
                dec[nd, 1] = p
                dec[nd, 2] = 0
                dec[nd, 3] = er
                nd += 1
            if rx:
                dec[nd, 0] = bar
                dec[nd, 1] = p
                dec[nd, 2] = 1
                dec[nd, 3] = xr
                nd += 1
            out_e[t, p] = fe
            out_x[t, p] = fx
            # position model
            if pos[p] != 0:
                held[p] += 1
            new = pos[p]
            if fe:
                new = 1
            elif fx and pos[p] == 1:
                new = -1 if short else 0
            elif fx and short:
                new = -1
            if new != pos[p]:
                if new != 0 and max_trades > 0:
                    trades[p, n_trades[p] % max_trades] = bar
                    n_trades[p] += 1
                pos[p] = new
                held[p] = 0
    return nd


@numba.njit(cache=True)
def _quiet_nb(ring_e: np.ndarray, ring_x: np.ndarray, run_e: np.ndarray, run_x: np.ndarray, pos: np.ndarray,
              held: np.ndarray) -> None:
    for p in range(pos.shape[0]):
        ring_e[p, 0] = 0
        ring_x[p, 0] = 0
        run_e[p] = 0
        run_x[p] = 0
        if pos[p] != 0:
            held[p] += 1


@dataclass
class FilteredSignals:
    """Filtered entries/exits (T, P) and one decision record per raw signal (``DECISION_DTYPE``)."""

    entries: np.ndarray
    exits: np.ndarray
    decisions: np.ndarray

    def counts(self) -> dict[str, int]:
        return filter_counts(self.decisions)


@dataclass
class SignalFilter:
    """Filter state for P portfolios; ``step``/``run`` feed bars in order (paper parity)."""

    config: FilterConfig
    n_portfolios: int
    short: bool = False
    bars_seen: int = 0
    prev_ts: int = 0
    _state: dict[str, np.ndarray] = field(default_factory=dict)
    _row: dict[str, Any] = field(default_factory=dict)  # step()'s reusable one-bar buffers

    def __post_init__(self) -> None:
        p, w, m = self.n_portfolios, self.config.smooth_window, max(self.config.max_trades, 1)
        self._state = {
            "ring_e": np.zeros((p, w), np.int64), "ring_x": np.zeros((p, w), np.int64),
            "run_e": np.zeros(p, np.int64), "run_x": np.zeros(p, np.int64), "pos": np.zeros(p, np.int64),
            "held": np.zeros(p, np.int64), "trades": np.zeros((p, m), np.int64),
            "n_trades": np.zeros(p, np.int64),
        }

    def run(self, entries: np.ndarray, exits: np.ndarray, ts: np.ndarray, *,
            decision_ts: np.ndarray | None = None, block: np.ndarray | None = None,
            block_exit: np.ndarray | None = None) -> FilteredSignals:
        """Filter the next T bars (T >= 1). ``decision_ts`` defaults to ``ts`` (age 0);
        ``block`` (T,) or (T, P) bool stops new positions and ``block_exit`` closing ones
        (reason ``risk_blocked``)."""
        e = np.ascontiguousarray(np.asarray(entries, dtype=np.bool_).reshape(len(ts), -1))
        x = np.ascontiguousarray(np.asarray(exits, dtype=np.bool_).reshape(e.shape))
        if e.shape[1] != self.n_portfolios:
            raise ValueError(f"expected {self.n_portfolios} portfolios, got {e.shape[1]}")
        t = np.ascontiguousarray(np.asarray(ts, dtype=np.int64))
        d = t if decision_ts is None else np.ascontiguousarray(np.asarray(decision_ts, dtype=np.int64))
        b = _plane(block, e.shape)
        bx = _plane(block_exit, e.shape)
        return self._run(e, x, t, d, b, bx)

    def _run(self, e: np.ndarray, x: np.ndarray, t: np.ndarray, d: np.ndarray, b: np.ndarray,
             bx: np.ndarray) -> FilteredSignals:
        out_e = np.zeros(e.shape, np.bool_)
        out_x = np.zeros(e.shape, np.bool_)
        dec = np.zeros((int(e.sum() + x.sum()), 4), np.int64)
        c = self.config
        s = self._state
        nd = _filter_nb(e, x, t, d, b, bx, bool(self.short), c.smooth_window, c.confirm_bars,
                        c.min_hold_bars, c.max_trades, c.throttle_window_bars, c.max_bar_age_ms, c.max_gap_ms,
                        self.bars_seen, np.int64(self.prev_ts), s["ring_e"], s["ring_x"], s["run_e"],
                        s["run_x"], s["pos"], s["held"], s["trades"], s["n_trades"], out_e, out_x, dec)
        self.bars_seen += int(t.shape[0])
        if t.shape[0]:
            self.prev_ts = int(t[-1])
        rec = np.zeros(nd, DECISION_DTYPE)
        if nd:
            for i, name in enumerate(DECISION_DTYPE.names or ()):
                rec[name] = dec[:nd, i]
        return FilteredSignals(out_e, out_x, rec)

    def step(self, entries: np.ndarray, exits: np.ndarray, ts: int, *, decision_ts: int | None = None,
             block: np.ndarray | bool = False, block_exit: np.ndarray | bool = False) -> FilteredSignals:
        """One bar: ``entries``/``exits`` (P,) -> filtered (1, P) and that bar's decisions.

        The per-bar path of a stepped backtest and a paper session: the inputs go into buffers
        kept between calls, so a bar costs one compiled call and no array set-up."""
        if self.config.smooth_window == 1 and not entries.any() and not exits.any():
            return self._quiet(ts)
        if "e" not in self._row:
            P = self.n_portfolios
            self._row.update({k: np.zeros((1, P), np.bool_) for k in ("e", "x", "b", "bx")})
            self._row.update(t=np.zeros(1, np.int64), d=np.zeros(1, np.int64))
        r = self._row
        r["e"][0] = entries
        r["x"][0] = exits
        r["b"][0] = block
        r["bx"][0] = block_exit
        r["t"][0] = ts
        r["d"][0] = ts if decision_ts is None else decision_ts
        return self._run(r["e"], r["x"], r["t"], r["d"], r["b"], r["bx"])

    def step_quiet(self, ts: int) -> None:
        """A bar on which the strategy gave no raw signal: the filters' state advances, nothing is
        decided (the caller already knows every flag is False)."""
        if self.config.smooth_window != 1:
            z = np.zeros(self.n_portfolios, np.bool_)
            self.step(z, z, ts)
            return
        self._quiet(ts)

    def _quiet(self, ts: int) -> FilteredSignals:
        """A bar without raw signals and without smoothing: what ``_filter_nb`` does then (no
        decision, confirmation runs restart, open positions age one bar), in one small call."""
        s = self._state
        _quiet_nb(s["ring_e"], s["ring_x"], s["run_e"], s["run_x"], s["pos"], s["held"])
        self.bars_seen += 1
        self.prev_ts = int(ts)
        q = self._row.get("quiet")
        if q is None:
            q = self._row["quiet"] = FilteredSignals(np.zeros((1, self.n_portfolios), np.bool_),
                                                     np.zeros((1, self.n_portfolios), np.bool_),
                                                     np.zeros(0, DECISION_DTYPE))
        return q  # type: ignore[return-value]

    def position(self, portfolio: int) -> int:
        """The filters' view of the position: -1, 0 or +1."""
        return int(self._state["pos"][portfolio])

    def set_position(self, portfolio: int, side: int) -> None:
        """Re-sync with the engine after a fill the signals did not cause (a stop order): the
        holding period restarts, so min hold counts from the new position."""
        if side not in (-1, 0, 1) or (side == -1 and not self.short):
            raise ValueError(f"position side must be -1, 0 or 1 (-1 only with short), got {side}")
        if self._state["pos"][portfolio] != side:
            self._state["pos"][portfolio] = side
            self._state["held"][portfolio] = 0


def _plane(a: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    if a is None:
        return np.zeros(shape, np.bool_)
    b = np.asarray(a, dtype=np.bool_)
    return np.ascontiguousarray(np.broadcast_to(b[:, None] if b.ndim == 1 else b, shape))


def apply_filters(entries: np.ndarray, exits: np.ndarray, ts: np.ndarray, cfg: FilterConfig | None = None, *,
                  decision_ts: np.ndarray | None = None, block: np.ndarray | None = None,
                  block_exit: np.ndarray | None = None, short: bool = False) -> FilteredSignals:
    """Filter a whole (T, P) signal history in one call; see ``SignalFilter``."""
    e = np.asarray(entries, dtype=np.bool_)
    e2 = e.reshape(e.shape[0], -1)
    return SignalFilter(cfg or FilterConfig(), e2.shape[1], short=short).run(
        e2, exits, ts, decision_ts=decision_ts, block=block, block_exit=block_exit)


def filter_counts(decisions: np.ndarray) -> dict[str, int]:
    """Decisions counted by reason name (the ``filters`` section of ``trading backtest --json``)."""
    codes, n = np.unique(decisions["reason"], return_counts=True)
    return {FILTER_REASON_NAMES[int(c)]: int(k) for c, k in zip(codes, n, strict=True)}


def decision_rows(decisions: np.ndarray, ts: np.ndarray, *, run_id: str, context: str = "backtest",
                  strategy: str = "", symbols: list[str] | None = None,
                  symbol_of: np.ndarray | None = None) -> pl.DataFrame:
    """Decision records as rows of ``backtest.signal_decisions`` (warehouse/signals.py)."""
    bars = decisions["bar"].astype(np.int64)
    port = decisions["portfolio"].astype(np.int64)
    sym: list[Any]
    if symbols is not None and symbol_of is not None:
        sym = [symbols[int(symbol_of[p])] for p in port.tolist()]
    else:
        sym = [None] * len(port)
    return pl.DataFrame({
        "run_id": [run_id] * len(bars), "context": [context] * len(bars),
        "ts": pl.Series(np.asarray(ts, dtype=np.int64)[bars]).cast(pl.Datetime("ms", "UTC")),
        "bar": bars, "portfolio": port, "strategy": [strategy] * len(bars), "symbol": sym,
        "kind": np.where(decisions["kind"] == ENTRY, "entry", "exit"),
        "decision": np.where(decisions["reason"] == 0, "allowed", "suppressed"),
        "reason": [FILTER_REASON_NAMES[int(r)] for r in decisions["reason"].tolist()],
    }, schema_overrides={"symbol": pl.Utf8})
