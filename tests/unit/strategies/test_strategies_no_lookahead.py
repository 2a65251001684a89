"""Every registered strategy on real data: signals at bar t do not change when later bars do."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest

from trading_core.config import PROJECT_ROOT
from trading_core.strategies import STRATEGIES, Bars, get_strategy
from trading_core.strategies.sentiment import SentimentFilter, SentimentFilterParams, VixSentiment

CASES: list[tuple[str, dict[str, Any]]] = [
    ("buy_and_hold", {}),
    ("ma_crossover", {"grid": "10:50,20:100"}),
    ("rsi_mean_reversion", {"max_bars": "10"}),
    ("macd", {"threshold": "0.001"}),
    ("bollinger_mean_reversion", {}),
    ("bollinger_breakout", {}),
    ("support_resistance", {"mode": "bounce"}),
    ("support_resistance", {"mode": "breakout"}),
    ("fibonacci_retracement", {}),
    ("volume_profile", {"stop_pct": "0.05"}),
    ("seasonality", {"days": "mon-wed", "months": "oct-may"}),
    ("sentiment_filter", {"inner": "rsi_mean_reversion"}),
    ("yaml", {"file": str(PROJECT_ROOT / "config" / "strategies" / "rsi_trend_pullback.yaml")}),
]


def test_cases_cover_every_builtin_strategy_of_this_library() -> None:
    mine = {n for n, _ in CASES}
    assert mine <= set(STRATEGIES)


def _perturbed(b: Bars, t0: int, seed: int) -> Bars:
    """Same bars up to t0, then every later price scaled by a random walk (volume by its square)."""
    rng = np.random.default_rng(seed)
    f = np.ones((b.n_bars, 1))
    f[t0 + 1:] = np.exp(np.cumsum(rng.normal(0, 0.03, (b.n_bars - t0 - 1, 1)), axis=0))
    return Bars(ts=b.ts, open=b.open * f, high=b.high * f, low=b.low * f, close=b.close * f,
                volume=b.volume * f[:, ::-1] ** 2, symbols=b.symbols)


@pytest.mark.parametrize(("name", "params"), CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
@pytest.mark.parametrize("series", ["sp500", "btc_1h"])
def test_signals_when_future_bars_altered_then_past_signals_unchanged(
        name: str, params: dict[str, Any], series: str, request: pytest.FixtureRequest, vix: pl.DataFrame) -> None:
    frame: pl.DataFrame = request.getfixturevalue(series)
    b = Bars.from_frame(frame)
    if name == "sentiment_filter":
        s: Any = SentimentFilter(SentimentFilterParams(inner="rsi_mean_reversion"), provider=VixSentiment(frame=vix))
    else:
        s = get_strategy(name, params)
    e, x = s.signals(b)
    assert e.shape == x.shape == (b.n_bars, len(s.variants()) * b.n_symbols)
    assert e.dtype == np.bool_ and x.dtype == np.bool_
    for k, t0 in enumerate((b.n_bars // 3, 2 * b.n_bars // 3)):
        e2, x2 = s.signals(_perturbed(b, t0, k))
        assert np.array_equal(e[: t0 + 1], e2[: t0 + 1]), f"{name}: entries before {t0} changed"
        assert np.array_equal(x[: t0 + 1], x2[: t0 + 1]), f"{name}: exits before {t0} changed"
