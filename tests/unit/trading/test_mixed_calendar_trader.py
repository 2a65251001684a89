"""The trading loop on a union calendar: a 24/7 symbol and a weekday symbol whose weekend rows are
NaN ("closed"). The stepped Trader equals the one-call batch form (``trade_signals``); a live
strategy stream (one per symbol on its own bars) equals its replayed batch ``own_bar_signals``;
the average daily volume of the weekday symbol ignores its closed days."""

from __future__ import annotations

import numpy as np
import pytest
from trader_helpers import (
    DAY_MS,
    QUIET_RISK,
    book_json,
    collect,
    config,
    events_json,
    make_bars,
    random_signals,
)

from trading_core.engine import MarketModel
from trading_core.engine.model import FeeTier
from trading_core.strategies import Bars, get_strategy
from trading_core.strategies.base import own_bar_signals, signal_stream
from trading_core.trading import ReplaySignals, Trader, bar_slices
from trading_core.trading.batch import trade_signals
from trading_core.trading.inputs import AdvTracker

SAT = 1_600_473_600_000  # 2020-09-19 00:00 UTC, a Saturday: the run opens with the equity closed
SYMBOLS = ("BTC", "SPX")


def _weekend(ts: np.ndarray) -> np.ndarray:
    return ((ts // DAY_MS) + 3) % 7 >= 5


def mixed_bars(T: int, seed: int, t0: int = SAT) -> Bars:
    """Daily random walks; symbol 1 (an equity) has no bar on weekends (NaN in every field)."""
    b = make_bars(T, SYMBOLS, seed=seed, bar_ms=DAY_MS, t0=t0, vol=0.02)
    closed = _weekend(b.ts)
    parts = {}
    for k in ("open", "high", "low", "close", "volume"):
        x = getattr(b, k).copy()
        x[closed, 1] = np.nan
        parts[k] = x
    return Bars(ts=b.ts, symbols=SYMBOLS, **parts)


MODEL = MarketModel(fee_tiers=(FeeTier(maker_bps=5.0, taker_bps=7.5),), slippage_bps=2.0)


@pytest.mark.parametrize("fill_at", ["next_open", "close"])
@pytest.mark.parametrize(("size_mode", "size"), [("all_in", 1.0), ("fixed", 3.0)])
def test_stepped_trader_equals_the_batch_form_on_a_mixed_calendar(fill_at: str, size_mode: str,
                                                                  size: float) -> None:
    T, C = 240, 4
    bars = mixed_bars(T, seed=7)
    closed = _weekend(bars.ts)
    ent, ex = random_signals(T, C, seed=8, p_entry=0.12, p_exit=0.1)
    ent[0], ex[0] = True, False  # the first bar (a Saturday, nothing of the equity known yet) signals all
    symbol_of = (0, 1, 0, 1)
    model = MODEL.replace(fill_at=fill_at)
    batch = trade_signals(bars.ts, bars.open, bars.high, bars.low, bars.close, bars.volume, entries=ent, exits=ex,
                          symbol_of=np.array(symbol_of), model=model, cash=100_000.0, size_mode=size_mode,
                          size=size, device="cpu")
    cfg = config(SYMBOLS, symbol_of, model=model, risk=QUIET_RISK, size_mode=size_mode, size=size, bar_ms=DAY_MS)
    tr = Trader(cfg, ReplaySignals(ent, ex))
    _, fills, equity = collect(tr, bars)
    got = np.concatenate(fills)
    got = got[np.argsort(got["portfolio"], kind="stable")]
    assert got.shape == batch.fills.shape and got.shape[0] > 20
    for f in ("portfolio", "symbol", "bar", "side", "qty", "price", "fee", "slippage_cost", "reason"):
        np.testing.assert_array_equal(got[f], batch.fills[f], err_msg=f)
    np.testing.assert_array_equal(equity, batch.equity)
    assert np.isfinite(equity).all()
    spx = got[got["symbol"] == 1]
    assert spx.shape[0] and not closed[spx["bar"]].any()  # never on a weekend
    assert closed[got[got["symbol"] == 0]["bar"]].any()  # BTC does trade on weekends


def test_live_stream_equals_replayed_own_bar_signals_in_one_shared_account() -> None:
    """One account holding both symbols, risk on: the Trader fed the strategy's stream
    (``signal_stream``: one per symbol on its own bars) gives the events of the Trader replaying the
    batch ``own_bar_signals`` -- the paper session and the backtest agree on a mixed portfolio."""
    from trader_helpers import tripping_risk

    strat = get_strategy("ma_crossover", {"grid": "3:8,5:20"})
    T, warm_n = 330, 60
    allb = mixed_bars(warm_n + T, seed=21)
    ent, ex = own_bar_signals(strat, allb)
    C = ent.shape[1]
    symbol_of = tuple(c % 2 for c in range(C))
    cfg = config(SYMBOLS, symbol_of, account_of=(0,) * C, model=MODEL, risk=tripping_risk(), bar_ms=DAY_MS)

    def part(sl: slice) -> Bars:
        return Bars(ts=allb.ts[sl], symbols=SYMBOLS,
                    **{k: getattr(allb, k)[sl] for k in ("open", "high", "low", "close", "volume")})

    warm, bars = part(slice(0, warm_n)), part(slice(warm_n, None))
    live = Trader(cfg, signal_stream(strat, 2))
    live.warm_up(bar_slices(warm))
    replay = Trader(cfg, ReplaySignals(ent[warm_n:], ex[warm_n:]))
    replay.warm_up(bar_slices(warm), strategy=False)
    ev_live, f_live, eq_live = collect(live, bars)
    ev_replay, _, _ = collect(replay, bars)
    assert events_json(ev_live) == events_json(ev_replay)
    assert book_json(live) == book_json(replay)
    fills = np.concatenate(f_live)
    closed = _weekend(bars.ts)
    assert (fills["symbol"] == 1).any() and not closed[fills[fills["symbol"] == 1]["bar"]].any()
    assert np.isfinite(eq_live).all()


def test_adv_ignores_the_closed_days_of_a_weekday_symbol() -> None:
    """On the union calendar each symbol's ADV equals a tracker fed that symbol's own bars alone."""
    bars = mixed_bars(200, seed=3)
    both = AdvTracker(2, window_days=10)
    alone = [AdvTracker(1, window_days=10), AdvTracker(1, window_days=10)]
    for t in range(bars.n_bars):
        v = both.update(int(bars.ts[t]), bars.volume[t]).copy()
        for s in range(2):
            if np.isfinite(bars.close[t, s]):
                want = alone[s].update(int(bars.ts[t]), bars.volume[t, s:s + 1])
                np.testing.assert_array_equal(v[s:s + 1], want, err_msg=f"bar {t} symbol {s}")
        if t == 97:  # a state round trip mid-run continues identically
            fresh = AdvTracker(2, window_days=10)
            fresh.load_state(both.state())
            both = fresh
    # the weekday symbol's ADV is its weekday volumes' mean, not diluted by zero-volume weekends
    spx = bars.volume[np.isfinite(bars.volume[:, 1]), 1]
    assert both.value[1] == pytest.approx(spx[-11:-1].mean(), rel=1e-12)
