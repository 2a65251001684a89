"""Failover order, the on-disk response cache, and the config-driven factory."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from trading_core.config import MarketDataConfig, UniverseConfig
from trading_core.errors import InvalidInput, ProviderError, TransientProviderError
from trading_core.market_data.cache import CachedProvider, cache_key, current_bar_open
from trading_core.market_data.providers import (
    AllProvidersFailed,
    AllProvidersUnavailable,
    FailoverProvider,
    SampleProvider,
    build_provider,
)
from trading_core.market_data.providers.sample import DEFAULT_SAMPLE_DIR


def d(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


class Stub:
    """A provider that raises ``error`` or returns ``frame``, counting calls."""

    def __init__(self, name: str, *, error: Exception | None = None, frame: pl.DataFrame | None = None,
                 supported: bool = True) -> None:
        self.name, self.error, self.frame, self.supported = name, error, frame, supported
        self.calls: list[tuple[Any, ...]] = []

    def supports(self, venue: str, symbol: str, timeframe: str) -> bool:
        return self.supported

    def fetch_ohlcv(self, venue: str, symbol: str, timeframe: str, start: datetime,
                    end: datetime) -> pl.DataFrame:
        self.calls.append((venue, symbol, timeframe, start, end))
        if self.error is not None:
            raise self.error
        assert self.frame is not None
        return self.frame


GSPC = ("yahoo", "^GSPC", "1d", d(2008, 10, 6), d(2008, 10, 11))


# ------------------------------------------------------------------------------------------------
# Failover
# ------------------------------------------------------------------------------------------------

def test_first_provider_that_answers_wins_and_is_recorded(sample_provider: SampleProvider) -> None:
    down = Stub("yfinance", error=TransientProviderError("yahoo timed out"))
    f = FailoverProvider([down, sample_provider])
    df = f.fetch_ohlcv(*GSPC)
    assert f.last_source == "sample" and len(down.calls) == 1
    assert [round(c, 2) for c in df["close"]] == [1056.89, 996.23, 984.94, 909.92, 899.22]
    assert f.fetch_with_source(*GSPC)[1] == "sample"


def test_a_healthy_first_provider_is_used_without_touching_the_rest(sample_provider: SampleProvider) -> None:
    live = Stub("ccxt", frame=sample_provider.fetch_ohlcv(*GSPC))
    spare = Stub("sample", frame=pl.DataFrame())
    f = FailoverProvider([live, spare])
    assert f.fetch_ohlcv(*GSPC).height == 5
    assert f.last_source == "ccxt" and spare.calls == []


def test_permanent_provider_error_also_moves_to_the_next(sample_provider: SampleProvider) -> None:
    f = FailoverProvider([Stub("ccxt", error=ProviderError("ccxt: unknown symbol '^GSPC'")), sample_provider])
    assert f.fetch_ohlcv(*GSPC).height == 5 and f.last_source == "sample"


def test_all_failing_raises_one_error_listing_each_provider() -> None:
    f = FailoverProvider([Stub("ccxt", error=TransientProviderError("timeout at deadline")),
                          Stub("sample", error=ProviderError("unknown symbol"))])
    with pytest.raises(AllProvidersFailed) as ei:
        f.fetch_ohlcv(*GSPC)
    msg = str(ei.value)
    assert "ccxt: TransientProviderError: timeout at deadline" in msg
    assert "sample: ProviderError: unknown symbol" in msg and "yahoo:^GSPC 1d" in msg
    assert [n for n, _ in ei.value.failures] == ["ccxt", "sample"] and f.last_source is None


def test_all_transient_failures_stay_transient_so_callers_retry_later() -> None:
    f = FailoverProvider([Stub("ccxt", error=TransientProviderError("a")),
                          Stub("yfinance", error=TransientProviderError("b")),
                          Stub("sample", supported=False)])
    with pytest.raises(AllProvidersUnavailable, match="does not serve"):
        f.fetch_ohlcv(*GSPC)


def test_unsupported_providers_are_skipped_without_a_call(sample_provider: SampleProvider) -> None:
    skipped = Stub("yfinance", supported=False, error=AssertionError("must not be called"))
    f = FailoverProvider([skipped, sample_provider])
    assert f.fetch_ohlcv(*GSPC).height == 5 and skipped.calls == []


def test_invalid_input_is_not_failed_over() -> None:
    s = Stub("ccxt", frame=pl.DataFrame())
    with pytest.raises(InvalidInput):
        FailoverProvider([s]).fetch_ohlcv("yahoo", "'; DROP TABLE--", "1d", d(2008, 1, 1), d(2008, 2, 1))
    assert s.calls == []


# ------------------------------------------------------------------------------------------------
# Cache
# ------------------------------------------------------------------------------------------------

NOW = d(2024, 1, 10, 15, 30)


def test_second_fetch_of_a_closed_range_makes_no_request(sample_provider: SampleProvider, tmp_path: Path) -> None:
    inner = Stub("yfinance", frame=sample_provider.fetch_ohlcv(*GSPC))
    c = CachedProvider(inner, tmp_path, now=NOW)
    first = c.fetch_ohlcv(*GSPC)
    assert c.last_from_cache is False
    second = c.fetch_ohlcv(*GSPC)
    assert len(inner.calls) == 1 and c.last_from_cache is True
    assert second.equals(first) and second.schema == first.schema
    files = list((tmp_path / "yfinance").glob("*.parquet"))
    assert [f.name for f in files] == [f"{cache_key('yfinance', *GSPC)}.parquet"]
    assert c.name == "yfinance"  # the warehouse records the real source, not "cache"


def test_cache_survives_a_new_process_object(sample_provider: SampleProvider, tmp_path: Path) -> None:
    CachedProvider(Stub("yfinance", frame=sample_provider.fetch_ohlcv(*GSPC)), tmp_path, now=NOW).fetch_ohlcv(*GSPC)
    again = Stub("yfinance", error=AssertionError("network must not be used"))
    assert CachedProvider(again, tmp_path, now=NOW).fetch_ohlcv(*GSPC).height == 5


def test_range_including_the_still_open_bar_is_never_cached(btc_1h: pl.DataFrame, tmp_path: Path) -> None:
    now = d(2019, 10, 17, 9, 40)  # the 09:00 bar is still forming
    inner = Stub("ccxt", frame=btc_1h.tail(3))
    c = CachedProvider(inner, tmp_path, now=now)
    rng = ("coinbase", "BTC/USD", "1h", d(2019, 10, 17, 7), d(2019, 10, 17, 10))
    c.fetch_ohlcv(*rng)
    c.fetch_ohlcv(*rng)
    assert len(inner.calls) == 2 and not (tmp_path / "ccxt").exists()
    closed = ("coinbase", "BTC/USD", "1h", d(2019, 10, 17, 7), d(2019, 10, 17, 9))
    c.fetch_ohlcv(*closed)
    c.fetch_ohlcv(*closed)
    assert len(inner.calls) == 3


def test_now_may_be_a_callable_clock(btc_1h: pl.DataFrame, tmp_path: Path) -> None:
    t = {"now": d(2019, 10, 17, 9, 40)}
    inner = Stub("ccxt", frame=btc_1h.tail(1))
    c = CachedProvider(inner, tmp_path, now=lambda: t["now"])
    rng = ("coinbase", "BTC/USD", "1h", d(2019, 10, 17, 9), d(2019, 10, 17, 10))
    assert not c.cacheable("1h", rng[4])
    t["now"] = d(2019, 10, 17, 10, 0, 1)  # the bar has closed
    assert c.cacheable("1h", rng[4])
    assert current_bar_open(d(2019, 10, 17, 9, 59), "4h") == d(2019, 10, 17, 8)


def test_empty_answers_are_not_cached(tmp_path: Path, btc_1h: pl.DataFrame) -> None:
    inner = Stub("ccxt", frame=btc_1h.clear())
    c = CachedProvider(inner, tmp_path, now=NOW)
    c.fetch_ohlcv("coinbase", "BTC/USD", "1h", d(2016, 1, 1), d(2016, 1, 2))
    c.fetch_ohlcv("coinbase", "BTC/USD", "1h", d(2016, 1, 1), d(2016, 1, 2))
    assert len(inner.calls) == 2


def test_a_damaged_cache_file_is_a_miss_and_is_rewritten(sample_provider: SampleProvider, tmp_path: Path) -> None:
    inner = Stub("yfinance", frame=sample_provider.fetch_ohlcv(*GSPC))
    c = CachedProvider(inner, tmp_path, now=NOW)
    path = c.path_for(*GSPC)
    c.fetch_ohlcv(*GSPC)
    path.write_bytes(b"PAR1 half a file")
    assert c.fetch_ohlcv(*GSPC).height == 5 and len(inner.calls) == 2
    assert pl.read_parquet(path).height == 5


def test_writes_leave_no_temporary_files(sample_provider: SampleProvider, tmp_path: Path) -> None:
    c = CachedProvider(Stub("yfinance", frame=sample_provider.fetch_ohlcv(*GSPC)), tmp_path, now=NOW)
    c.fetch_ohlcv(*GSPC)
    assert sorted(os.listdir(tmp_path / "yfinance")) == [c.path_for(*GSPC).name]


def test_provider_errors_pass_through_the_cache_uncached(tmp_path: Path) -> None:
    c = CachedProvider(Stub("ccxt", error=TransientProviderError("down")), tmp_path, now=NOW)
    with pytest.raises(TransientProviderError):
        c.fetch_ohlcv(*GSPC)
    assert not (tmp_path / "ccxt").exists()


# ------------------------------------------------------------------------------------------------
# build_provider
# ------------------------------------------------------------------------------------------------

def universe(**kw: Any) -> UniverseConfig:
    base = {"name": "crypto", "asset_class": "crypto", "venue": "coinbase", "timeframe": "1h",
            "symbols": ["BTC/USD"], "providers": ["ccxt", "sample"], "start": date(2017, 7, 1)}
    return UniverseConfig(**{**base, **kw})


def md(u: UniverseConfig, tmp_path: Path, mode: str) -> MarketDataConfig:
    return MarketDataConfig(mode=mode, universes=[u], cache_dir=tmp_path / "cache", sample_dir=DEFAULT_SAMPLE_DIR)


def test_offline_mode_builds_the_sample_provider(tmp_path: Path) -> None:
    u = universe()
    p = build_provider(u, md(u, tmp_path, "offline"))
    assert isinstance(p, SampleProvider) and p.sample_dir == DEFAULT_SAMPLE_DIR
    assert p.fetch_ohlcv("coinbase", "BTC/USD", "1h", d(2019, 10, 17, 9), d(2019, 10, 17, 10))["close"][0] == 8035.88


def test_live_mode_builds_ordered_failover_with_cached_network_providers(tmp_path: Path) -> None:
    from trading_core.market_data.providers.ccxt_provider import CcxtProvider

    u = universe()
    p = build_provider(u, md(u, tmp_path, "live"), now=NOW)
    assert isinstance(p, FailoverProvider)
    assert [x.name for x in p.providers] == ["ccxt", "sample"]
    cached = p.providers[0]
    assert isinstance(cached, CachedProvider) and isinstance(cached.inner, CcxtProvider)
    assert cached.dir == tmp_path / "cache" / "ccxt" and cached.now() == NOW
    assert isinstance(p.providers[1], SampleProvider)


def test_live_equities_use_yfinance_then_sample(tmp_path: Path) -> None:
    from trading_core.market_data.providers.yfinance_provider import YfinanceProvider

    u = universe(name="equities", asset_class="equity", venue="yahoo", timeframe="1d",
                 symbols=["^GSPC"], providers=["yfinance", "sample"], start=date(1999, 1, 4))
    p = build_provider(u, md(u, tmp_path, "live"))
    assert isinstance(p, FailoverProvider)
    assert isinstance(p.providers[0], CachedProvider) and isinstance(p.providers[0].inner, YfinanceProvider)


def test_live_ccxt_provider_uses_the_universe_venue_as_exchange_id(tmp_path: Path) -> None:
    u = universe(venue="kraken", providers=["ccxt"])
    p = build_provider(u, md(u, tmp_path, "live"))
    assert isinstance(p, FailoverProvider)
    inner = p.providers[0].inner  # type: ignore[attr-defined]
    assert inner.exchange_id == "kraken" and inner.supports("kraken", "BTC/USD", "1h")


def test_live_failover_falls_back_to_sample_when_the_venue_is_unreachable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The real ccxt exchange's HTTP layer fails (as with no route to the venue): after its retry
    budget the sample provider serves, and the batch source says so."""
    import ccxt

    def unreachable(self: Any, url: str, *a: Any, **k: Any) -> Any:
        raise ccxt.NetworkError(f"no route to {url}")

    monkeypatch.setattr(ccxt.Exchange, "fetch", unreachable)
    u = universe(providers=["ccxt", "sample"])
    m = md(u, tmp_path, "live").model_copy(update={"ccxt": md(u, tmp_path, "live").ccxt.model_copy(
        update={"max_retries": 0, "enable_rate_limit": False})})
    p = build_provider(u, m, now=NOW)
    assert isinstance(p, FailoverProvider)
    df = p.fetch_ohlcv("coinbase", "BTC/USD", "1h", d(2019, 10, 17, 7), d(2019, 10, 17, 10))
    assert p.last_source == "sample" and df.height == 3
    assert df["ts"].max() - df["ts"].min() == timedelta(hours=2)
