"""Sentiment: a provider interface, an offline VIX proxy, a live HTTP index, and a filter strategy.

``SentimentProvider.series(start, end)`` returns ``pl.DataFrame(ts, value)`` where ``ts`` is the
instant the value became KNOWN (UTC) and a higher ``value`` means more risk appetite. The filter
uses a value at bar ``t`` only if it was known at the bar's OPEN time, which is stricter than
"known at its close" and so can never leak the future.

Honesty about the offline default: ``VixSentiment`` is NOT news or social sentiment. The VIX is
the option market's implied 30-day volatility of the S&P 500; it rises when investors pay up for
protection, so it is a widely used *fear proxy*. Its daily close for day D is known only after D's
close, so it is stamped as known at D + 1 day 00:00 UTC (the daily bar's open time + one day).
"""

from __future__ import annotations

import math
import os
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import numpy as np
import polars as pl
from pydantic import Field, model_validator

from ..errors import InvalidInput, ProviderError
from ._common import StreamBase
from .base import BoolArray, StrategyParams, as_bars
from .streaming import BarSlice

_DAY_MS = 86_400_000


@runtime_checkable
class SentimentProvider(Protocol):
    """A time series of risk appetite (higher = more risk-on), stamped when each value was known."""

    def series(self, start: datetime, end: datetime) -> pl.DataFrame:
        """Columns ``ts`` (Datetime ms UTC, when known) and ``value`` (Float64), sorted by ts."""
        ...


def _frame(ts_ms: np.ndarray, value: np.ndarray, start: datetime, end: datetime) -> pl.DataFrame:
    df = pl.DataFrame({"ts": ts_ms.astype(np.int64), "value": value.astype(np.float64)})
    df = df.with_columns(pl.col("ts").cast(pl.Datetime("ms", "UTC")))
    return df.filter((pl.col("ts") >= start) & (pl.col("ts") < end)).sort("ts")


class VixSentiment:
    """Offline fear proxy from daily ^VIX closes (warehouse, else the embedded sample data).

    ``transform="neg_zscore"``: value = -(VIX - rolling mean) / rolling std over ``z_window``
    daily closes (causal; NaN in warm-up). ``transform="level"``: value = -VIX, so the filter's
    "risk-off when VIX > threshold" is "value < -threshold". ``frame`` (a canonical ^VIX frame)
    bypasses loading, for tests and notebooks.
    """

    def __init__(self, *, transform: Literal["neg_zscore", "level"] = "neg_zscore", z_window: int = 252,
                 frame: pl.DataFrame | None = None, venue: str = "yahoo", symbol: str = "^VIX") -> None:
        self.transform = transform
        self.z_window = z_window
        self.venue, self.symbol = venue, symbol
        self._frame = frame

    def _vix(self) -> pl.DataFrame:
        if self._frame is not None:
            return self._frame
        frame = _load_daily(self.venue, self.symbol)
        self._frame = frame
        return frame

    def series(self, start: datetime, end: datetime) -> pl.DataFrame:
        vix = self._vix().sort("ts")
        ts = vix["ts"].dt.epoch("ms").to_numpy().astype(np.int64) if vix["ts"].dtype.is_temporal() \
            else vix["ts"].to_numpy().astype(np.int64)
        close = vix["close"].cast(pl.Float64).to_numpy()
        if self.transform == "level":
            value = -close
        else:
            s = pl.Series(close)
            mean = s.rolling_mean(self.z_window).to_numpy()
            std = s.rolling_std(self.z_window).to_numpy()
            with np.errstate(invalid="ignore", divide="ignore"):
                value = -(close - mean) / std
        return _frame(ts + _DAY_MS, value, start, end)


def _load_daily(venue: str, symbol: str) -> pl.DataFrame:
    """Daily bars from the configured warehouse, falling back to the embedded sample history."""
    from ..config import load_config

    frame: pl.DataFrame | None = None
    try:
        from ..warehouse import Warehouse

        cfg = load_config()
        wh = Warehouse(cfg.warehouse.path, deadline_s=cfg.warehouse.lock_deadline_s)
        if wh.path.exists():
            frame = wh.read_bars(venue, symbol, "1d")
    except Exception:  # noqa: BLE001 - any warehouse problem falls back to the sample data
        frame = None
    if frame is None or frame.height == 0:
        try:
            from ..market_data.providers.sample import SampleProvider

            frame = SampleProvider().fetch_ohlcv(venue, symbol, "1d", datetime(1980, 1, 1, tzinfo=UTC),
                                                 datetime(2100, 1, 1, tzinfo=UTC))
        except Exception as e:  # noqa: BLE001
            raise InvalidInput(f"sentiment: no {symbol} daily bars in the warehouse or sample data "
                               f"(trading ingest ... {symbol} 1d): {e}") from None
    return frame


class ExternalIndexSentiment:
    """A live sentiment index served as JSON over HTTP(S).

    GET ``url`` with query ``start``/``end`` (ISO 8601 UTC) and, when the environment variable
    ``api_key_env`` is set, header ``Authorization: Bearer <key>`` (the key never appears in
    configuration or logs). Accepted bodies: ``[{"ts": ..., "value": ...}, ...]`` or
    ``{"data": [...]}``; ``ts`` is ISO 8601 or epoch milliseconds and must be when the value was
    PUBLISHED. ``value`` is taken as risk appetite (higher = risk-on); ``invert`` flips a fear index.
    """

    def __init__(self, url: str, *, api_key_env: str | None = None, timeout_s: float = 10.0,
                 invert: bool = False) -> None:
        if not url.lower().startswith(("http://", "https://")):
            raise InvalidInput(f"sentiment url {_redact(url)!r}: expected http:// or https://")
        self.url, self.api_key_env, self.timeout_s, self.invert = url, api_key_env, timeout_s, invert
        self._key()  # refuse a keyed plain-http URL now rather than at the first request

    def _key(self) -> str | None:
        """The API key from ``api_key_env``, refusing to send it over plain http to another host:
        a bearer key travels only over https, or to this machine (127.0.0.1 / localhost / ::1)."""
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key and _plain_http_off_host(self.url):
            raise InvalidInput(
                f"sentiment url {_redact(self.url)}: ${self.api_key_env} holds an API key, which would be sent "
                "in clear text over http://; use https:// (http is allowed only without a key or to localhost)")
        return key or None

    def series(self, start: datetime, end: datetime) -> pl.DataFrame:
        import requests

        headers = {"Accept": "application/json"}
        key = self._key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        try:
            r = requests.get(self.url, params={"start": start.isoformat(), "end": end.isoformat()},
                             headers=headers, timeout=self.timeout_s)
        except requests.RequestException as e:
            raise ProviderError(f"sentiment {self.url}: {type(e).__name__}") from None
        if r.status_code != 200:
            raise ProviderError(f"sentiment {self.url}: HTTP {r.status_code}")
        try:
            body = r.json()
        except ValueError:
            raise ProviderError(f"sentiment {self.url}: response is not JSON") from None
        rows = body.get("data") if isinstance(body, dict) else body
        if not isinstance(rows, list):
            raise ProviderError(f"sentiment {self.url}: expected a list of {{ts, value}} or {{data: [...]}}")
        ts, vals = [], []
        for i, row in enumerate(rows):
            try:
                ts.append(_epoch_ms(row["ts"]))
                v = float(row["value"])
            except (KeyError, TypeError, ValueError):
                raise ProviderError(f"sentiment {self.url}: row {i} lacks a valid ts/value: {row!r:.80}") from None
            if not math.isfinite(v):
                raise ProviderError(f"sentiment {self.url}: row {i} value is not finite")
            vals.append(-v if self.invert else v)
        return _frame(np.asarray(ts, dtype=np.int64), np.asarray(vals, dtype=np.float64), start, end)


def _plain_http_off_host(url: str) -> bool:
    """True for an ``http://`` URL whose host is not the loopback interface."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme.lower() != "http":
        return False
    host = (parts.hostname or "").lower()
    if host == "localhost":
        return False
    import ipaddress

    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name other than localhost (127.evil.example is a name, not an address)
        return True


def _redact(url: str) -> str:
    """The URL without user:password or query (either may carry a secret)."""
    from urllib.parse import urlsplit

    p = urlsplit(url)
    return f"{p.scheme}://{p.netloc.rpartition('@')[2]}{p.path}"


def _epoch_ms(v: Any) -> int:
    if isinstance(v, bool):
        raise ValueError("bool timestamp")
    if isinstance(v, int | float):
        return int(v)
    dt = datetime.fromisoformat(str(v).replace("Z", "+00:00"))
    dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    return int(dt.timestamp() * 1000)


def align_to_bars(sentiment: pl.DataFrame, bar_ts_ms: np.ndarray) -> np.ndarray:
    """Latest value known at or before each bar's open time (NaN before the first one).

    An as-of join on the OPEN time: a value stamped after a bar opened is first used on the next
    bar, so no bar ever sees information from after it began.
    """
    if sentiment.height == 0:
        return np.full(bar_ts_ms.shape, np.nan)
    st = sentiment["ts"].dt.epoch("ms").to_numpy().astype(np.int64)
    sv = sentiment["value"].to_numpy().astype(np.float64)
    idx = np.searchsorted(st, bar_ts_ms, side="right") - 1
    out = np.where(idx >= 0, sv[np.clip(idx, 0, None)], np.nan)
    return out


class SentimentFilterParams(StrategyParams):
    """The wrapped strategy and the sentiment gate."""

    inner: str = Field(default="ma_crossover", description="strategy whose entries are gated")
    inner_params: str = Field(default="", description="its params as k=v;k=v, e.g. fast=20;slow=100")
    provider: Literal["vix", "external"] = Field(default="vix", description="sentiment source")
    rule: Literal["zscore", "vix_level"] = Field(
        default="zscore", description="zscore: risk-on when value >= min_score; vix_level: risk-off when VIX > vix_max")
    min_score: float = Field(default=-1.0, description="lowest sentiment value that allows entries")
    vix_max: float = Field(default=30.0, gt=0, description="VIX level above which entries are blocked")
    z_window: int = Field(default=252, ge=5, description="daily closes in the VIX z-score")
    exit_on_risk_off: bool = Field(default=False, description="also exit when the gate closes")
    url_env: str = Field(default="SENTIMENT_URL", description="env var holding the external index URL")
    api_key_env: str = Field(default="SENTIMENT_API_KEY", description="env var holding its API key")

    @model_validator(mode="after")
    def _consistent(self) -> SentimentFilterParams:
        if self.inner == "sentiment_filter":
            raise ValueError("sentiment_filter cannot wrap itself")
        if self.rule == "vix_level" and self.provider != "vix":
            raise ValueError("rule vix_level needs provider vix")
        return self


def _history_start_s(first_bar_ms: int) -> float:
    """Sentiment older than this (epoch s) is not read: 400 days before the first bar."""
    return first_bar_ms / 1000 - 400 * 86_400


def _inner_params(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in text.split(";"):
        if not part.strip():
            continue
        k, sep, v = part.partition("=")
        if not sep or not k.strip():
            raise InvalidInput(f"sentiment_filter inner_params {part!r}: expected k=v")
        out[k.strip()] = v.strip()
    return out


class SentimentFilter:
    """Entries of ``inner`` pass only when the gate is open at that bar; exits always pass."""

    name: ClassVar[str] = "sentiment_filter"
    Params: ClassVar[type[StrategyParams]] = SentimentFilterParams

    def __init__(self, params: SentimentFilterParams | None = None, *,
                 provider: SentimentProvider | None = None) -> None:
        from .registry import get_strategy

        self.params: SentimentFilterParams = params or SentimentFilterParams()
        p = self.params
        self.inner = get_strategy(p.inner, _inner_params(p.inner_params))
        self._provider = provider

    @property
    def provider(self) -> SentimentProvider:
        """The injected provider, else the configured one (built lazily: no I/O at validation)."""
        if self._provider is None:
            p = self.params
            if p.provider == "vix":
                self._provider = VixSentiment(
                    transform="level" if p.rule == "vix_level" else "neg_zscore", z_window=p.z_window)
            else:
                url = os.environ.get(p.url_env)
                if not url:
                    raise InvalidInput(f"sentiment_filter: provider external needs the URL in ${p.url_env}")
                self._provider = ExternalIndexSentiment(url, api_key_env=p.api_key_env)
        return self._provider

    def variants(self) -> list[dict[str, Any]]:
        return self.inner.variants()

    def warmup_bars(self) -> int:
        return self.inner.warmup_bars()

    def threshold(self) -> float:
        p = self.params
        return -p.vix_max if p.rule == "vix_level" else p.min_score

    def gate(self, bar_ts_ms: np.ndarray) -> BoolArray:
        """Bool (T,): entries allowed at each bar (False where no sentiment is known yet)."""
        if bar_ts_ms.shape[0] == 0:
            return np.zeros(0, dtype=np.bool_)
        start = datetime.fromtimestamp(_history_start_s(int(bar_ts_ms[0])), tz=UTC)
        end = datetime.fromtimestamp(int(bar_ts_ms[-1]) / 1000 + 1, tz=UTC)
        value = align_to_bars(self.provider.series(start, end), bar_ts_ms)
        with np.errstate(invalid="ignore"):
            return value >= self.threshold()  # NaN (unknown) -> closed

    def signals(self, bars: Any) -> tuple[BoolArray, BoolArray]:
        b = as_bars(bars)
        entries, exits = self.inner.signals(b)
        ok = self.gate(b.ts)[:, None]
        if self.params.exit_on_risk_off:
            exits = exits | ~ok
        return entries & ok, exits

    def stream(self, n_symbols: int) -> SentimentFilterStream:
        return SentimentFilterStream(self, n_symbols)


class SentimentFilterStream(StreamBase):
    """The inner strategy's stream, gated per bar by the latest sentiment value known at the bar's
    open time (``align_to_bars``'s as-of rule).

    The provider is read forward in chunks of ``CHUNK_S`` seconds from 400 days before the first
    bar (as ``gate`` does); values stamped after the current bar wait in ``pending`` and are used
    only once a bar opens at or after their stamp, so no bar sees a value published after it began.
    """

    CHUNK_S: ClassVar[int] = 30 * 86_400

    def __init__(self, strategy: SentimentFilter, n_symbols: int) -> None:
        self.inner = strategy.inner.stream(n_symbols)
        super().__init__(self.inner.columns)
        self.strategy = strategy
        self.start_s = math.nan  # the history start (epoch s), set by the first bar
        self.fetched_end_s = 0  # provider read up to here (exclusive, whole epoch seconds)
        self.last_value = math.nan
        self.pending_ts = np.zeros(0, np.int64)
        self.pending_value = np.zeros(0)

    def parts(self) -> dict[str, Any]:
        return {"inner": self.inner}

    def state(self) -> dict[str, Any]:
        return {**super().state(), "start_s": self.start_s, "fetched_end_s": self.fetched_end_s,
                "last_value": self.last_value, "pending_ts": self.pending_ts.copy(),
                "pending_value": self.pending_value.copy()}

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self.start_s = float(state["start_s"])
        self.fetched_end_s = int(state["fetched_end_s"])
        self.last_value = float(state["last_value"])
        self.pending_ts = np.asarray(state["pending_ts"], dtype=np.int64).copy()
        self.pending_value = np.asarray(state["pending_value"], dtype=np.float64).copy()

    def _read_until(self, ts_ms: int) -> None:
        """Read the provider until it has been read past ``ts_ms``."""
        while self.fetched_end_s * 1000 <= ts_ms:
            first = self.t == 0 and self.fetched_end_s == 0
            start = datetime.fromtimestamp(self.start_s if first else self.fetched_end_s, tz=UTC)
            end_s = ts_ms // 1000 + 1 + self.CHUNK_S
            frame = self.strategy.provider.series(start, datetime.fromtimestamp(end_s, tz=UTC))
            if frame.height:
                self.pending_ts = np.concatenate(
                    [self.pending_ts, frame["ts"].dt.epoch("ms").to_numpy().astype(np.int64)])
                self.pending_value = np.concatenate(
                    [self.pending_value, frame["value"].to_numpy().astype(np.float64)])
            self.fetched_end_s = end_s

    def update(self, bar: BarSlice) -> tuple[BoolArray, BoolArray]:
        ts = int(bar.ts)
        if self.t == 0:
            self.start_s = _history_start_s(ts)
        self._read_until(ts)
        known = int(np.searchsorted(self.pending_ts, ts, side="right"))
        if known:
            self.last_value = float(self.pending_value[known - 1])
            self.pending_ts = self.pending_ts[known:]
            self.pending_value = self.pending_value[known:]
        ok = bool(self.last_value >= self.strategy.threshold())  # NaN (unknown) -> closed
        entries, exits = self.inner.update(bar)
        self.t += 1
        if self.strategy.params.exit_on_risk_off and not ok:
            exits = np.ones_like(exits)
        return entries & ok, exits
