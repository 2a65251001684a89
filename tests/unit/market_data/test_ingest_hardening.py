"""`trading ingest` mistakes: each one is one stderr line, exit 2, promptly; nothing hangs.

* files: a FIFO, /dev/zero, a directory and an oversized (sparse) file are refused after an
  ``os.stat`` that never opens them; row/column limits and a deeply nested JSON file are one line;
* ``ingest sample`` run again says "already up to date" (the counts stay in --json);
* ``ingest live`` with the venues unreachable (a closed port on 127.0.0.1, never the network)
  fails over at once, says per provider what failed and why, and ``--no-fallback`` is exit 2.
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from trading_core.cli import main
from trading_core.config import PROJECT_ROOT, CcxtConfig, YfinanceConfig
from trading_core.errors import InvalidInput, TransientProviderError
from trading_core.market_data import normalize
from trading_core.market_data.normalize import read_bar_file
from trading_core.market_data.providers.base import ProviderUnreachable, RetryPolicy, unreachable_reason

FILE_ARGS = ["--symbol", "BTC/USD", "--venue", "coinbase", "--timeframe", "1h"]


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("trading: ")
    return lines[0]


def _ingest_file(path: Path | str, capsys: pytest.CaptureFixture[str]) -> str:
    started = time.monotonic()
    rc = main(["ingest", "file", str(path), *FILE_ARGS])
    assert rc == 2
    assert time.monotonic() - started < 10
    return _one_error_line(capsys)


# ------------------------------------------------------------------------------------------------
# files
# ------------------------------------------------------------------------------------------------

@pytest.mark.timeout(20)
def test_fifo_is_refused_without_opening_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "bars.csv"
    os.mkfifo(fifo)  # opening it for reading would block until a writer came
    line = _ingest_file(fifo, capsys)
    assert line == f"trading: {fifo}: is a FIFO (named pipe); only regular files are read"


@pytest.mark.timeout(60)
def test_fifo_in_a_fresh_process_exits_2_with_one_line(tmp_path: Path) -> None:
    fifo = tmp_path / "bars.parquet"
    os.mkfifo(fifo)
    code = "import sys; from trading_core.cli import main; sys.exit(main())"
    proc = subprocess.run([sys.executable, "-c", code, "ingest", "file", str(fifo), *FILE_ARGS],
                          capture_output=True, text=True, timeout=45, cwd=PROJECT_ROOT, env=os.environ.copy())
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [f"trading: {fifo}: is a FIFO (named pipe); only regular files are read"]


@pytest.mark.timeout(20)
def test_dev_zero_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert _ingest_file("/dev/zero", capsys) == "trading: /dev/zero: is a character device; only regular files are read"


def test_directory_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "bars.csv"
    d.mkdir()
    assert _ingest_file(d, capsys) == f"trading: {d}: is a directory, not a bar file"


@pytest.mark.timeout(20)
@pytest.mark.parametrize("name", ["huge.csv", "huge.parquet", "huge.json"])
def test_sparse_3_gib_file_is_refused_before_reading(tmp_path: Path, name: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    big = tmp_path / name
    with open(big, "wb") as fh:
        fh.truncate(3 * 1024**3)  # sparse: no disk used, but 3 GiB to any reader (streaming allows 2 GiB)
    line = _ingest_file(big, capsys)
    assert line == (f"trading: {big}: 3.0 GiB is over the 2.0 GiB limit for bar files "
                    f"(set $TRADING_MAX_BAR_FILE_MB to change it)")


def test_size_limit_can_be_changed_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "bars.csv"
    with open(f, "wb") as fh:
        fh.truncate(3 * 1024**2)
    monkeypatch.setenv("TRADING_MAX_BAR_FILE_MB", "1")
    assert _ingest_file(f, capsys).endswith("3 MiB is over the 1 MiB limit for bar files "
                                            "(set $TRADING_MAX_BAR_FILE_MB to change it)")
    monkeypatch.setenv("TRADING_MAX_BAR_FILE_MB", "lots")
    assert _ingest_file(f, capsys) == "trading: $TRADING_MAX_BAR_FILE_MB='lots': expected a positive number of MiB"


def test_sparse_file_under_the_limit_is_binary_not_a_crash(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "zeros.csv"
    with open(f, "wb") as fh:
        fh.truncate(64 * 1024**2)
    assert _ingest_file(f, capsys) == f"trading: {f}: binary content, not a CSV text file"


def test_zeros_named_parquet_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "zeros.parquet"
    with open(f, "wb") as fh:
        fh.truncate(8 * 1024**2)
    line = _ingest_file(f, capsys)
    assert line.startswith(f"trading: {f}: not a readable Parquet file (")


def test_row_limit_is_checked_for_csv_and_from_the_parquet_footer(
        tmp_path: Path, btc_1h: pl.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(normalize, "MAX_BAR_ROWS", 10)
    frame = btc_1h.head(20)
    pq = tmp_path / "bars.parquet"
    frame.write_parquet(pq)
    csv = tmp_path / "bars.csv"
    frame.with_columns(pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%SZ")).write_csv(csv)
    for f in (pq, csv):
        with pytest.raises(InvalidInput) as e:
            read_bar_file(f)
        assert str(e.value) == f"{f}: more than 10 rows, over the limit for one bar file; split it"
    monkeypatch.setattr(normalize, "MAX_BAR_ROWS", 20)
    assert read_bar_file(pq).height == 20 and read_bar_file(csv).height == 20


def test_a_polars_panic_is_one_line_not_a_crash(tmp_path: Path, btc_1h: pl.DataFrame,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "bars.parquet"
    btc_1h.head(5).write_parquet(f)

    def panic(*_a: Any, **_k: Any) -> pl.DataFrame:
        raise pl.exceptions.PanicException("capacity overflow")

    monkeypatch.setattr(normalize.pl, "read_parquet", panic)
    monkeypatch.setattr(normalize.pl, "from_arrow", panic)  # the batched reader panics too
    assert _ingest_file(f, capsys) == (f"trading: {f}: not a readable Parquet file "
                                       f"(PanicException: capacity overflow)")


@pytest.mark.timeout(20)
def test_deeply_nested_json_is_one_line_not_a_recursion_error(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "bars.json"
    f.write_text("[" * 200_000 + "]" * 200_000)
    assert _ingest_file(f, capsys) == f"trading: {f}: JSON nested too deeply to be bar data"


def test_json_over_its_own_limit_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(normalize, "MAX_JSON_BYTES", 1024)
    f = tmp_path / "bars.json"
    f.write_text(json.dumps([[1_500_000_000_000 + i, 1, 2, 0.5, 1.5, 3] for i in range(200)]))
    line = _ingest_file(f, capsys)
    assert line.endswith("is over the 1.0 KiB limit for JSON bar files; convert it to CSV or Parquet")


# ------------------------------------------------------------------------------------------------
# sample, run again
# ------------------------------------------------------------------------------------------------

def test_sample_run_again_says_already_up_to_date_and_json_keeps_the_counts(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ingest", "sample"]) == 0
    first = capsys.readouterr().out.strip().splitlines()
    assert first and all("written" in line for line in first)
    assert main(["ingest", "sample"]) == 0
    again = capsys.readouterr()
    lines = again.out.strip().splitlines()
    assert len(lines) == len(first)
    assert all(line.endswith(": already up to date (no new bars since the last ingest)") for line in lines), lines
    assert "read 0, written 0" not in again.out and again.err == ""
    assert main(["ingest", "sample", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert all(r["rows_read"] == 0 and r["written"] == 0 and r["batch_rejected"] is False for r in report)


def test_unchanged_file_rerun_says_already_up_to_date(tmp_path: Path, btc_1h: pl.DataFrame,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "btc.csv"
    btc_1h.head(50).with_columns(pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%SZ")).write_csv(src)
    assert main(["ingest", "file", str(src), *FILE_ARGS]) == 0
    capsys.readouterr()
    assert main(["ingest", "file", str(src), *FILE_ARGS]) == 0
    assert capsys.readouterr().out.strip() == ("coinbase BTC/USD 1h from file:btc.csv: already up to date "
                                               "(all 50 bars unchanged)")


# ------------------------------------------------------------------------------------------------
# live without a reachable venue
# ------------------------------------------------------------------------------------------------

LIVE_CONFIG = """\
market_data:
  mode: offline
  universes:
    - name: crypto
      asset_class: crypto
      venue: coinbase
      timeframe: 1h
      symbols: ["BTC/USD"]
      providers: [ccxt, sample]
      start: 2019-10-10
    - name: equities
      asset_class: equity
      venue: yahoo
      timeframe: 1d
      symbols: ["^GSPC", "^VIX"]
      providers: [yfinance, sample]
      start: 2018-06-01
  ccxt:
    enable_rate_limit: false
"""


def _closed_port() -> int:
    """A loopback port nothing listens on: connecting is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def dead_venues(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point the real ccxt exchange and the real yfinance client at a closed port on 127.0.0.1."""
    import yfinance
    import yfinance.base
    import yfinance.data
    import yfinance.scrapers.history

    from trading_core.market_data.providers import ccxt_provider

    base = f"http://127.0.0.1:{_closed_port()}"
    real = ccxt_provider._shared_exchange.__wrapped__

    def shared(*a: Any) -> Any:
        ex = real(*a)
        ex.urls["api"] = {k: base for k in ex.urls["api"]}
        return ex

    monkeypatch.setattr(ccxt_provider, "_shared_exchange", shared)
    for m in (yfinance.base, yfinance.scrapers.history):
        monkeypatch.setattr(m, "_BASE_URL_", base)
    # cookie and crumb come from Yahoo hosts by name: never ask for them in a test
    monkeypatch.setattr(yfinance.data.YfData, "_get_cookie_and_crumb", lambda self, timeout=30: (None, "basic"))
    yfinance.data.YfData.cache_get.cache_clear()
    yield base
    yfinance.data.YfData.cache_get.cache_clear()


@pytest.mark.timeout(120)
def test_live_without_venues_fails_over_fast_and_says_so_per_provider(
        tmp_path: Path, dead_venues: str, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "trading.yaml"
    cfg.write_text(LIVE_CONFIG)
    started = time.monotonic()
    rc = main(["--config", str(cfg), "ingest", "live"])
    elapsed = time.monotonic() - started
    out, err = capsys.readouterr()
    assert rc == 0
    assert "Traceback" not in err
    assert err.strip().splitlines() == [
        "trading: live: ccxt failed for coinbase BTC/USD 1h (cannot reach 127.0.0.1: connection refused); "
        "used the sample data instead",
        "trading: live: yfinance failed for yahoo ^GSPC, ^VIX 1d (cannot reach 127.0.0.1: could not connect); "
        "used the sample data instead",
    ]
    assert [line.split(":")[0] for line in out.strip().splitlines()] == [
        "coinbase BTC/USD 1h from sample", "yahoo ^GSPC 1d from sample", "yahoo ^VIX 1d from sample"]
    assert elapsed < 30, elapsed  # was 40-48 s of retries against a dead network


@pytest.mark.timeout(120)
def test_live_no_fallback_is_exit_2_with_one_line(tmp_path: Path, dead_venues: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "trading.yaml"
    cfg.write_text(LIVE_CONFIG)
    started = time.monotonic()
    rc = main(["--config", str(cfg), "ingest", "live", "--no-fallback", "--universe", "equities"])
    assert rc == 2
    assert time.monotonic() - started < 30
    assert _one_error_line(capsys) == (
        "trading: live: yfinance failed for yahoo ^GSPC 1d (cannot reach 127.0.0.1: could not connect); "
        "not falling back to the sample data (--no-fallback)")
    rc = main(["--config", str(cfg), "ingest", "live", "--no-fallback", "--universe", "crypto"])
    assert rc == 2
    assert _one_error_line(capsys) == (
        "trading: live: ccxt failed for coinbase BTC/USD 1h (cannot reach 127.0.0.1: connection refused); "
        "not falling back to the sample data (--no-fallback)")


def test_unreachable_host_is_not_retried_but_other_network_errors_still_are() -> None:
    import ccxt

    sleeps: list[float] = []
    policy = RetryPolicy(deadline_s=120, max_retries=5, sleep=sleeps.append, rng=random.Random(1))
    refused = ccxt.NetworkError("coinbase GET http://127.0.0.1:9/v2/currencies")
    refused.__cause__ = ConnectionRefusedError(111, "Connection refused")

    def fail() -> None:
        raise refused

    with pytest.raises(ProviderUnreachable) as e:
        policy.run(fail, is_transient=lambda _e: True, is_unreachable=unreachable_reason, describe="ccxt coinbase")
    assert sleeps == []
    assert e.value.reason == "cannot reach 127.0.0.1: connection refused"
    assert str(e.value) == "ccxt coinbase: cannot reach 127.0.0.1: connection refused"
    assert unreachable_reason(ccxt.RequestTimeout("coinbase GET https://api.coinbase.com read timed out")) is None

    def timeout() -> None:
        raise ccxt.RequestTimeout("read timed out")

    with pytest.raises(TransientProviderError, match="still failing after 5 retries"):
        policy.run(timeout, is_transient=lambda _e: True, is_unreachable=unreachable_reason, describe="x")
    assert len(sleeps) == 5


def test_a_provider_found_unreachable_is_not_asked_again_for_the_next_symbol(dead_venues: str,
                                                                             tmp_path: Path) -> None:
    from trading_core.market_data.providers import FailoverProvider, SampleProvider
    from trading_core.market_data.providers.sample import DEFAULT_SAMPLE_DIR
    from trading_core.market_data.providers.yfinance_provider import YfinanceProvider

    yf = YfinanceProvider(YfinanceConfig(), cache_dir=tmp_path)
    p = FailoverProvider([yf, SampleProvider(DEFAULT_SAMPLE_DIR)])
    start, end = datetime(2018, 1, 1, tzinfo=UTC), datetime(2018, 2, 1, tzinfo=UTC)
    for symbol in ("^GSPC", "^VIX"):
        assert p.fetch_ohlcv("yahoo", symbol, "1d", start, end).height > 0
        assert p.last_source == "sample"
    assert yf.requests == 1 and yf.retries == 0
    assert [(f.provider, f.symbol, f.served_by) for f in p.fallbacks] == [
        ("yfinance", "^GSPC", "sample"), ("yfinance", "^VIX", "sample")]
    assert p.fallbacks[0].reason == "cannot reach 127.0.0.1: could not connect"


def test_ccxt_connect_timeout_is_bounded_separately_from_the_read_timeout(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import requests

    from trading_core.market_data.providers.base import CONNECT_TIMEOUT_S
    from trading_core.market_data.providers.ccxt_provider import ConnectBoundedSession, _shared_exchange

    ex = _shared_exchange.__wrapped__("coinbase", False, CcxtConfig().timeout_ms, None, None)
    assert isinstance(ex.session, ConnectBoundedSession)
    seen: dict[str, Any] = {}

    def record(self: Any, method: str, url: str, *a: Any, **kw: Any) -> None:
        seen.update(kw)

    monkeypatch.setattr(requests.Session, "request", record)
    ex.session.request("GET", "http://127.0.0.1:1/", timeout=15.0)
    assert seen["timeout"] == (CONNECT_TIMEOUT_S, 15.0)
