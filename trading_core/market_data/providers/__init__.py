"""Market-data providers behind one interface, and the factory that wires them from config.

Offline (the default) every universe is served by the embedded sample history; live, each
universe's ``providers`` list is tried in order, network providers behind the on-disk cache.
ccxt and yfinance are imported only when a live provider is built, so the offline path (tests,
the demo) never pays for importing them.
"""

from __future__ import annotations

from datetime import datetime

from ...config import MarketDataConfig, UniverseConfig
from .base import MarketDataProvider, ProviderUnreachable, UnknownSymbol, UnsupportedTimeframe
from .failover import AllProvidersFailed, AllProvidersUnavailable, FailoverProvider, Fallback, failure_reason
from .sample import SampleDataMissing, SampleProvider

__all__ = [
    "AllProvidersFailed",
    "AllProvidersUnavailable",
    "FailoverProvider",
    "Fallback",
    "MarketDataProvider",
    "ProviderUnreachable",
    "SampleDataMissing",
    "SampleProvider",
    "UnknownSymbol",
    "UnsupportedTimeframe",
    "build_provider",
    "failure_reason",
]


def build_provider(universe: UniverseConfig, md: MarketDataConfig, *,
                   now: datetime | None = None, fallback: bool = True) -> MarketDataProvider:
    """The provider for one universe.

    ``offline`` -> ``SampleProvider(md.sample_dir)``. ``live`` -> ``FailoverProvider`` over the
    universe's providers in order, each network provider wrapped in ``CachedProvider`` (``now``
    decides which bar is still open, so it is never cached). The ccxt provider talks to the
    exchange whose id is the universe's venue; API keys apply only when that is the configured
    ``ccxt.exchange_id`` (keys belong to one account on one exchange).

    ``fallback=False`` (``trading ingest live --no-fallback``) leaves out a ``sample`` entry listed
    after a network provider, so a network failure is an error rather than a quiet switch to the
    sample history; a universe served by ``sample`` alone keeps it.
    """
    if md.mode == "offline":
        return SampleProvider(md.sample_dir)
    from ..cache import CachedProvider

    chain: list[MarketDataProvider] = []
    kinds = list(universe.providers)
    if not fallback:
        first_net = next((i for i, k in enumerate(kinds) if k != "sample"), None)
        if first_net is not None:
            kinds = kinds[:first_net + 1] + [k for k in kinds[first_net + 1:] if k != "sample"]
    for kind in kinds:
        if kind == "sample":
            chain.append(SampleProvider(md.sample_dir))
        elif kind == "ccxt":
            from .ccxt_provider import CcxtProvider

            cfg = md.ccxt
            if universe.venue != cfg.exchange_id:
                cfg = cfg.model_copy(update={"exchange_id": universe.venue, "api_key_env": None,
                                             "api_secret_env": None})
            chain.append(CachedProvider(CcxtProvider(cfg), md.cache_dir, now=now))
        elif kind == "yfinance":
            from .yfinance_provider import YfinanceProvider

            chain.append(CachedProvider(YfinanceProvider(md.yfinance, cache_dir=md.cache_dir),
                                        md.cache_dir, now=now))
        else:  # pragma: no cover - config validation (ProviderName) already refuses others
            raise ValueError(f"unknown provider {kind!r}")
    return FailoverProvider(chain)
