from __future__ import annotations

import pytest

from trading_core.errors import InvalidInput
from trading_core.symbols import check_symbol, check_venue
from trading_core.timeframes import periods_per_year, timeframe_ms


@pytest.mark.parametrize("s", ["BTC/USDT", "BTC/USDT:USDT", "AAPL", "BRK-B", "BRK.B", "^GSPC", "^VIX", "EURUSD=X", "ES=F"])
def test_real_symbols_are_accepted(s: str) -> None:
    assert check_symbol(s) == s


@pytest.mark.parametrize("s", ["btc/usdt", "AAPL'; DROP TABLE x; --", "../etc/passwd", "AAPL\n", "ÄPFEL",
                               "A" * 16, "", "BTC USD", "X;Y", "a" * 10_000])
def test_hostile_symbols_are_rejected(s: str) -> None:
    with pytest.raises(InvalidInput, match="invalid symbol"):
        check_symbol(s)


def test_venue_must_be_a_lower_case_identifier() -> None:
    assert check_venue("coinbase") == "coinbase"
    with pytest.raises(InvalidInput):
        check_venue("Coinbase'--")


def test_timeframes_and_annualisation() -> None:
    assert timeframe_ms("1h") == 3_600_000
    assert periods_per_year("1d", "equity") == 252
    assert periods_per_year("1h", "crypto") == 365 * 24
    with pytest.raises(InvalidInput, match="unknown timeframe"):
        timeframe_ms("2h")
