"""Built-in strategies: signal shapes, timing, grids, and the registry's error messages."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest

from trading_core.errors import InvalidInput
from trading_core.strategies import (
    STRATEGIES,
    Bars,
    BuyAndHold,
    MaCrossover,
    Strategy,
    as_bars,
    get_strategy,
    parse_params,
    portfolio_symbols,
)


def _bars(close: np.ndarray) -> Bars:
    close = close.reshape(len(close), -1).astype(float)
    t = np.arange(close.shape[0], dtype=np.int64) * 86_400_000
    return Bars(ts=t, open=close, high=close, low=close, close=close, volume=np.ones_like(close),
                symbols=tuple(f"S{i}" for i in range(close.shape[1])))


# ############# Registry ############# #


def test_registry_when_listed_then_each_class_satisfies_strategy_protocol() -> None:
    assert {"buy_and_hold", "ma_crossover", "rsi_mean_reversion", "macd", "bollinger_mean_reversion",
            "bollinger_breakout", "support_resistance", "fibonacci_retracement", "volume_profile",
            "seasonality", "sentiment_filter", "yaml"} <= set(STRATEGIES)
    for name in STRATEGIES:
        s = get_strategy(name, {})
        assert isinstance(s, Strategy)
        assert s.name == name


def test_get_strategy_when_unknown_name_then_message_lists_known_names() -> None:
    with pytest.raises(InvalidInput, match=r"unknown strategy 'rsi'; expected one of .*buy_and_hold.*ma_crossover"):
        get_strategy("rsi", {})


def test_get_strategy_when_unknown_param_then_message_names_it_and_allowed_params() -> None:
    with pytest.raises(InvalidInput, match=r"unknown param 'fastt'; allowed params: fast, slow, kind, grid"):
        get_strategy("ma_crossover", {"fastt": "5"})
    with pytest.raises(InvalidInput, match=r"unknown param 'x'; allowed params: none"):
        get_strategy("buy_and_hold", {"x": 1})


def test_get_strategy_when_bad_literal_then_message_names_param_and_allowed_values() -> None:
    with pytest.raises(InvalidInput) as e:
        get_strategy("ma_crossover", {"kind": "wma"})
    msg = str(e.value)
    assert "param 'kind'='wma'" in msg and "one of sma, ema" in msg
    assert "\n" not in msg


@pytest.mark.parametrize(("params", "fragment"), [
    ({"fast": "x"}, "param 'fast'='x'"),
    ({"fast": "0"}, "integer >= 1"),
    ({"fast": 50, "slow": 10}, "fast window must be below slow window, got 50:10"),
    ({"grid": "5-20"}, "grid pair '5-20' is not fast:slow"),
    ({"grid": "5:20,30:10"}, "got 30:10"),
])
def test_get_strategy_when_bad_ma_params_then_invalid_input(params: dict, fragment: str) -> None:
    with pytest.raises(InvalidInput, match="strategy ma_crossover") as e:
        get_strategy("ma_crossover", params)
    assert fragment in str(e.value)


def test_get_strategy_when_string_values_then_coerced() -> None:
    s = get_strategy("ma_crossover", {"fast": "5", "slow": "20.0", "kind": "ema"})
    assert s.variants() == [{"fast": 5, "slow": 20, "kind": "ema"}]


def test_parse_params_when_malformed_then_invalid_input() -> None:
    assert parse_params(["fast=5", "grid=5:20,10:50"]) == {"fast": "5", "grid": "5:20,10:50"}
    with pytest.raises(InvalidInput, match="expected key=value"):
        parse_params(["fast"])
    with pytest.raises(InvalidInput, match="given twice"):
        parse_params(["fast=1", "fast=2"])


# ############# Buy and hold ############# #


def test_buy_and_hold_when_signalled_then_single_entry_at_first_bar_and_no_exit() -> None:
    entries, exits = BuyAndHold().signals(_bars(np.arange(1.0, 6.0)))
    assert entries.shape == (5, 1) and entries.dtype == np.bool_
    assert entries[:, 0].tolist() == [True, False, False, False, False]
    assert not exits.any()


def test_buy_and_hold_when_polars_frame_then_accepted(sp500: pl.DataFrame) -> None:
    entries, exits = BuyAndHold().signals(sp500)
    assert entries.shape == (sp500.height, 1)
    assert entries.sum() == 1


# ############# MA crossover ############# #


def test_ma_crossover_when_hand_series_then_enters_on_cross_up_exits_on_cross_down() -> None:
    # Arrange: fast=1 (the close itself) vs slow=3 SMA.
    close = np.array([5.0, 4.0, 3.0, 2.0, 6.0, 7.0, 8.0, 1.0, 1.0])
    s = get_strategy("ma_crossover", {"fast": 1, "slow": 3})

    # Act
    entries, exits = s.signals(_bars(close))

    # Assert: slow SMA = [nan, nan, 4, 3, 3.667, 5, 7, 5.333, 3.333]
    assert np.flatnonzero(entries[:, 0]).tolist() == [4]
    assert np.flatnonzero(exits[:, 0]).tolist() == [7]


def test_ma_crossover_when_real_data_then_matches_pandas_reference(sp500: pl.DataFrame) -> None:
    close = sp500["close"].to_numpy()
    entries, exits = get_strategy("ma_crossover", {"fast": 20, "slow": 100}).signals(sp500)
    f = pd.Series(close).rolling(20).mean()
    sl = pd.Series(close).rolling(100).mean()
    want_entry = ((f > sl) & (f.shift(1) <= sl.shift(1))).to_numpy()
    want_exit = ((f < sl) & (f.shift(1) >= sl.shift(1))).to_numpy()
    np.testing.assert_array_equal(entries[:, 0], want_entry)
    np.testing.assert_array_equal(exits[:, 0], want_exit)
    assert 10 < entries.sum() < 200
    assert not entries[:100].any()  # no signal in the warm-up
    # Entries and exits alternate: never two entries without an exit in between.
    events = np.where(entries[:, 0], 1, 0) - np.where(exits[:, 0], 1, 0)
    seq = events[events != 0]
    assert np.all(seq[1:] != seq[:-1])


def test_ma_crossover_when_grid_on_two_symbols_then_variant_major_columns(sp500: pl.DataFrame) -> None:
    # Arrange: two symbols (the S&P close and a scaled copy), three grid pairs.
    close = sp500["close"].to_numpy()
    two = np.column_stack([close, close[::-1].copy()])
    bars = _bars(two)
    s = get_strategy("ma_crossover", {"grid": "5:20, 10:50,20:100", "kind": "ema"})

    # Act
    entries, exits = s.signals(bars)

    # Assert
    assert entries.shape == (len(close), 6)
    assert portfolio_symbols(len(s.variants()), 2).tolist() == [0, 1, 0, 1, 0, 1]
    for v, (fast, slow) in enumerate([(5, 20), (10, 50), (20, 100)]):
        single = MaCrossover(MaCrossover.Params(fast=fast, slow=slow, kind="ema"))  # type: ignore[call-arg]
        for sym in range(2):
            e1, x1 = single.signals(_bars(two[:, sym]))
            np.testing.assert_array_equal(entries[:, v * 2 + sym], e1[:, 0])
            np.testing.assert_array_equal(exits[:, v * 2 + sym], x1[:, 0])
    assert s.warmup_bars() == 100


def test_as_bars_when_object_with_1d_arrays_then_single_symbol() -> None:
    class Obj:
        ts = np.array(["2020-01-01", "2020-01-02"], dtype="datetime64[ms]")
        open = high = low = close = np.array([1.0, 2.0])
        volume = np.array([5.0, 5.0])

    b = as_bars(Obj())
    assert b.close.shape == (2, 1)
    assert b.ts.tolist() == [1577836800000, 1577923200000]
    with pytest.raises(TypeError):
        as_bars(object())


def test_registry_names_match_their_classes_and_load_lazily() -> None:
    import subprocess
    import sys

    from trading_core.strategies.registry import STRATEGIES

    for name in STRATEGIES:
        assert STRATEGIES[name].name == name
    code = ("import sys; from trading_core.strategies.registry import check_strategy_name, STRATEGIES\n"
            "check_strategy_name('ma_crossover')\n"
            "try:\n    check_strategy_name('nope')\nexcept Exception as e:\n    print(type(e).__name__)\n"
            "print('numba' in sys.modules, 'trading_core.strategies.ma_crossover' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["InvalidInput", "False", "False"]
