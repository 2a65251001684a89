"""Sentiment providers (VIX proxy on real data, external index against a local HTTP fake) and the
sentiment_filter wrapper's gating and timing."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest
from pytest_httpserver import HTTPServer

from trading_core.errors import InvalidInput, ProviderError
from trading_core.strategies import (
    Bars,
    ExternalIndexSentiment,
    SentimentFilter,
    SentimentFilterParams,
    SentimentProvider,
    VixSentiment,
    get_strategy,
)
from trading_core.strategies.sentiment import align_to_bars

DAY = 86_400_000


def _ms(y: int, m: int, d: int, h: int = 0) -> int:
    return int(datetime(y, m, d, h, tzinfo=UTC).timestamp() * 1000)


@pytest.mark.parametrize("rule", ["zscore", "vix_level"])
def test_vix_proxy_when_real_history_then_risk_off_2008_10_10_and_risk_on_2017_06_01(
        vix: pl.DataFrame, rule: str) -> None:
    provider = VixSentiment(frame=vix, transform="level" if rule == "vix_level" else "neg_zscore")
    f = SentimentFilter(SentimentFilterParams(rule=rule), provider=provider)
    assert isinstance(provider, SentimentProvider)
    gate = f.gate(np.array([_ms(2008, 10, 10), _ms(2017, 6, 1)], dtype=np.int64))
    assert gate.tolist() == [False, True]


def test_vix_proxy_when_day_d_changes_then_only_later_bars_see_it(vix: pl.DataFrame) -> None:
    # A daily VIX close of day D is known only after D's close: bars opening on D must not see it.
    d = datetime(2017, 6, 1, tzinfo=UTC)
    spiked = vix.with_columns(pl.when(pl.col("ts") == d).then(90.0).otherwise(pl.col("close")).alias("close"))
    bars_ts = np.array([_ms(2017, 6, 1), _ms(2017, 6, 1, 20), _ms(2017, 6, 2)], dtype=np.int64)
    p = SentimentFilterParams(rule="vix_level")
    calm = SentimentFilter(p, provider=VixSentiment(frame=vix, transform="level")).gate(bars_ts)
    spike = SentimentFilter(p, provider=VixSentiment(frame=spiked, transform="level")).gate(bars_ts)
    assert calm.tolist() == [True, True, True]
    assert spike.tolist() == [True, True, False]


def test_sentiment_filter_when_wrapping_on_real_sp500_then_entries_are_a_gated_subset(
        sp500: pl.DataFrame, vix: pl.DataFrame) -> None:
    b = Bars.from_frame(sp500)
    inner_e, inner_x = get_strategy("ma_crossover", {"fast": "20", "slow": "100"}).signals(b)
    f = SentimentFilter(SentimentFilterParams(inner_params="fast=20;slow=100", min_score=0.0), provider=VixSentiment(frame=vix))
    e, x = f.signals(b)
    assert np.array_equal(x, inner_x)
    assert not (e & ~inner_e).any() and 0 < e.sum() < inner_e.sum()
    assert f.variants() == [{"fast": 20, "slow": 100, "kind": "sma"}]


def test_sentiment_filter_when_bad_params_then_clear_errors() -> None:
    with pytest.raises(InvalidInput, match="cannot wrap itself"):
        get_strategy("sentiment_filter", {"inner": "sentiment_filter"})
    with pytest.raises(InvalidInput, match="unknown strategy 'nope'"):
        get_strategy("sentiment_filter", {"inner": "nope"})
    with pytest.raises(InvalidInput, match="vix_level needs provider vix"):
        get_strategy("sentiment_filter", {"provider": "external", "rule": "vix_level"})


def test_external_sentiment_when_local_fake_then_reads_values_with_bearer_key(
        httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SENTIMENT_KEY", "s3cret")
    httpserver.expect_request("/index", headers={"Authorization": "Bearer s3cret"}).respond_with_json(
        {"data": [{"ts": "2024-01-02T12:00:00Z", "value": -0.5}, {"ts": _ms(2024, 1, 3, 12), "value": 0.7}]})
    p = ExternalIndexSentiment(httpserver.url_for("/index"), api_key_env="TEST_SENTIMENT_KEY")
    s = p.series(datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC))
    assert s["value"].to_list() == [-0.5, 0.7]
    req, _ = httpserver.log[0]
    assert req.args["start"].startswith("2024-01-01")
    # Published at noon: a daily bar opening that day does not see it, the next one does.
    v = align_to_bars(s, np.array([_ms(2024, 1, 2), _ms(2024, 1, 3), _ms(2024, 1, 4)], dtype=np.int64))
    assert np.isnan(v[0]) and v[1:].tolist() == [-0.5, 0.7]


def test_external_sentiment_when_used_by_filter_via_env_url_then_gates_entries(
        httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    httpserver.expect_request("/s").respond_with_json(
        [{"ts": _ms(2024, 1, 1) + i * DAY, "value": 1.0 if i % 2 else -2.0} for i in range(10)])
    monkeypatch.setenv("SENTIMENT_URL", httpserver.url_for("/s"))
    monkeypatch.delenv("SENTIMENT_API_KEY", raising=False)
    f = get_strategy("sentiment_filter", {"inner": "buy_and_hold", "provider": "external"})
    assert isinstance(f, SentimentFilter)
    ts = _ms(2024, 1, 1) + np.arange(6, dtype=np.int64) * DAY
    # a value stamped exactly at a bar's open time is known at that bar
    assert f.gate(ts).tolist() == [False, True, False, True, False, True]


@pytest.mark.parametrize(("status", "body", "match"), [
    (500, {"error": "x"}, "HTTP 500"),
    (200, {"rows": []}, "expected a list"),
    (200, [{"ts": "2024-01-01", "value": "high"}], "row 0"),
])
def test_external_sentiment_when_bad_response_then_provider_error(
        httpserver: HTTPServer, status: int, body: object, match: str) -> None:
    httpserver.expect_request("/bad").respond_with_json(body, status=status)
    p = ExternalIndexSentiment(httpserver.url_for("/bad"))
    with pytest.raises(ProviderError, match=match):
        p.series(datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC))


def test_external_sentiment_when_not_http_url_then_refused() -> None:
    with pytest.raises(InvalidInput, match="http"):
        ExternalIndexSentiment("file:///etc/passwd")
