"""The stepped driver against the batch driver, and its resting stops, on real S&P 500 bars.

With the risk layer on but unable to fire, stepping the streaming engine bar by bar must give the
one-call ``simulate_signals`` ledger exactly; resting stops must fill at their level intrabar.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from bt_helpers import build_warehouse

from trading_core.backtest import BacktestRequest, run_backtest
from trading_core.risk import BreakerConfig, MarketFilterConfig, OrderLimits, RiskConfig, TrailingStopConfig

QUIET = RiskConfig(market_filter=MarketFilterConfig(enabled=False), breakers=BreakerConfig(enabled=False),
                   orders=OrderLimits(max_price_deviation=1.0, max_adv_fraction=1.0))
FIELDS = ("portfolio", "bar", "side", "qty", "price", "fee", "slippage_cost", "reason")


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory, sp500: pl.DataFrame) -> Any:
    return build_warehouse(tmp_path_factory.mktemp("parity") / "w.duckdb", sp500)


def _req(**kw: Any) -> BacktestRequest:
    base: dict[str, Any] = dict(strategy="ma_crossover", params={"grid": "10:50,20:100,5:30"}, symbol="^GSPC",
                                venue="yahoo", timeframe="1d", start=datetime(2001, 1, 1, tzinfo=UTC),
                                end=datetime(2011, 1, 1, tzinfo=UTC), fee_bps=5.0, slippage="fixed:2",
                                persist=False)
    base.update(kw)
    return BacktestRequest(**base)


@pytest.mark.parametrize("kw", [
    {},
    {"sizing": "fixed", "size": 3.0},
    {"sizing": "risk", "size": 0.02},
    {"short": True},
    {"fill": "close"},
    {"strategy": "rsi_mean_reversion", "params": {}},
    {"slippage": "sqrt:0.1"},
], ids=["all_in", "fixed", "risk", "short", "close_fill", "rsi", "sqrt_impact"])
def test_stepped_driver_equals_the_batch_kernel_when_no_rule_fires(wh: Any, kw: dict[str, Any]) -> None:
    batch = run_backtest(_req(**kw), wh)
    stepped = run_backtest(_req(risk=QUIET, **kw), wh)
    assert (batch.driver, stepped.driver) == ("batch", "stepped")
    assert len(batch.fills) > 4
    for f in FIELDS:
        np.testing.assert_array_equal(stepped.fills[f], batch.fills[f], err_msg=f)
    np.testing.assert_array_equal(stepped.equity, batch.equity)
    np.testing.assert_array_equal(stepped.position, batch.position)


def _stop_fills(fills: np.ndarray) -> Any:
    """(the buy that opened the position, the resting-order sell that closed it), in fill order."""
    entry = None
    for f in fills:
        if int(f["side"]) == 0:
            entry = f
        elif int(f["reason"]) in (1, 2):  # gap / intrabar: only resting orders fill there
            yield entry, f


def _bars(wh: Any) -> pl.DataFrame:
    return wh.read_bars("yahoo", "^GSPC", "1d", datetime(2001, 1, 1, tzinfo=UTC), datetime(2011, 1, 1, tzinfo=UTC))


def test_trailing_stop_fills_at_its_level_intrabar(wh: Any) -> None:
    trail = 0.04
    res = run_backtest(_req(params={"fast": 10, "slow": 50},
                            risk=QUIET.model_copy(update={"trailing_stop": TrailingStopConfig(
                                kind="percent", trail_pct=trail)})), wh)
    bars = _bars(wh)
    high, low, opn = (bars[c].to_numpy() for c in ("high", "low", "open"))
    stops = list(_stop_fills(res.fills))  # (entry fill, stop fill) in execution order
    assert len(stops) >= 3
    assert any(int(e["bar"]) == int(s["bar"]) for e, s in stops)  # protected from the fill bar on
    for entry, s in stops:
        b = int(s["bar"])
        decided = int(entry["bar"]) - 1  # the entry was decided at the previous close
        # the level in force during bar b: highest high from the decision bar to b-1, less 4 %
        level = high[decided:b].max() * (1 - trail)
        expected = opn[b] if opn[b] < level else level  # a gap below the stop fills at the open
        assert low[b] <= level
        assert float(s["price"]) == pytest.approx(expected * (1 - 2e-4), rel=1e-12)  # 2 bps slippage


def test_yaml_stop_loss_is_a_resting_order(wh: Any, tmp_path: Path) -> None:
    from trading_core.strategies.yaml_builder import file_sha256

    rule = tmp_path / "dip.yaml"
    rule.write_text(
        "name: dip\nindicators:\n  rsi_14: {fn: rsi, window: 14}\n"
        "entry: \"rsi_14 < 35\"\nexit: \"rsi_14 > 60\"\nstop_loss_pct: 0.03\n")
    params = {"file": str(rule), "sha256": file_sha256(rule)}
    res = run_backtest(_req(strategy="yaml", params=params, risk=QUIET, slippage="none"), wh)
    assert res.driver == "stepped"
    bars = _bars(wh)
    close, opn = bars["close"].to_numpy(), bars["open"].to_numpy()
    stops = list(_stop_fills(res.fills))
    assert len(stops) >= 2
    for entry, s in stops:
        level = close[int(entry["bar"]) - 1] * 0.97
        b = int(s["bar"])
        assert float(s["price"]) == pytest.approx(min(level, opn[b]), rel=1e-12)
    # the same rule without the risk layer still runs on the stepped driver (its stops are orders)
    plain = run_backtest(_req(strategy="yaml", params=params, slippage="none"), wh)
    assert plain.driver == "stepped"
    np.testing.assert_array_equal(plain.fills["price"], res.fills["price"])


def test_data_gap_halts_entries_through_the_system_breaker(tmp_path: Path, sp500: pl.DataFrame) -> None:
    # a week of S&P bars removed: the first bar after it is 6 weekdays late
    df = sp500.filter(~pl.col("ts").is_between(datetime(2006, 3, 6, tzinfo=UTC), datetime(2006, 3, 14, tzinfo=UTC)))
    w = build_warehouse(tmp_path / "gap.duckdb", df)
    cfg = RiskConfig(market_filter=MarketFilterConfig(enabled=False))
    res = run_backtest(_req(strategy="buy_and_hold", params={}, start=datetime(2006, 3, 1, tzinfo=UTC),
                            end=datetime(2006, 6, 1, tzinfo=UTC), risk=cfg), w)
    stale = [e for e in res.breaker_events if e["rule"] == "system_data_stale"]
    assert stale and stale[0]["to_state"] == "halted"
    assert stale[0]["ts"].date().isoformat() == "2006-03-16"  # decided at the close of the first bar after


@pytest.mark.parametrize("fill", ["next_open", "close"])
def test_atr_trailing_stop_order_follows_trailing_stop_levels(wh: Any, fill: str) -> None:
    from trading_core.risk.trailing import trailing_stop_levels

    cfg = TrailingStopConfig(kind="atr", atr_multiple=2.0)
    res = run_backtest(_req(params={"fast": 10, "slow": 50}, fill=fill, slippage="none", fee_bps=0.0,
                            risk=QUIET.model_copy(update={"trailing_stop": cfg})), wh)
    # the Trader's ATR is warmed up on the bars before the run, as a paper session's would be:
    # the reference ATR runs over the whole stored history (Wilder's average forgets its seed)
    full = wh.read_bars("yahoo", "^GSPC", "1d", None, datetime(2011, 1, 1, tzinfo=UTC))
    k = full.height - _bars(wh).height  # bars before the run
    high, low, close, opn = (full[c].to_numpy() for c in ("high", "low", "close", "open"))
    stops = list(_stop_fills(res.fills))
    assert len(stops) >= 10
    for entry, s in stops:
        decided = k + int(entry["bar"]) - (1 if fill == "next_open" else 0)
        started = np.zeros(close.shape[0], dtype=bool)
        started[decided] = True
        level = trailing_stop_levels(high, low, close, cfg, entries=started)
        b = k + int(s["bar"])
        assert float(s["price"]) == pytest.approx(min(level[b - 1], opn[b]), rel=1e-12)


def test_short_positions_get_the_mirrored_trailing_stop(wh: Any) -> None:
    from trading_core.risk.trailing import trailing_stop_levels

    cfg = TrailingStopConfig(kind="percent", trail_pct=0.04)
    res = run_backtest(_req(params={"fast": 10, "slow": 50}, short=True, slippage="none", fee_bps=0.0,
                            risk=QUIET.model_copy(update={"trailing_stop": cfg})), wh)
    bars = _bars(wh)
    high, low, close, opn = (bars[c].to_numpy() for c in ("high", "low", "close", "open"))
    pos, opener, checked = 0.0, None, {"long": 0, "short": 0}
    for f in res.fills:
        before = pos
        pos += float(f["qty"]) * (1 if int(f["side"]) == 0 else -1)
        if int(f["reason"]) in (1, 2):  # a resting stop closed the position opened by `opener`
            side = "long" if before > 0 else "short"
            started = np.zeros(close.shape[0], dtype=bool)
            started[int(opener["bar"]) - 1] = True  # type: ignore[index]
            level = trailing_stop_levels(high, low, close, cfg, side=side, entries=started)
            b = int(f["bar"])
            expected = min(level[b - 1], opn[b]) if side == "long" else max(level[b - 1], opn[b])
            assert float(f["price"]) == pytest.approx(expected, rel=1e-12)
            checked[side] += 1
        elif abs(pos) > 1e-12 and (abs(before) < 1e-12 or np.sign(before) != np.sign(pos)):
            opener = f
    assert checked["long"] >= 5 and checked["short"] >= 5
