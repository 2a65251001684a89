"""The first hour: config paths, NUL bytes, venues validated at load, exposure warnings, the
sentiment key over plain http, and what a backtest over unstored bars says."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from trading_core.backtest.request import BacktestRequest
from trading_core.backtest.runner import run_backtest
from trading_core.cli import main
from trading_core.config import PROJECT_ROOT, ServicesConfig, load_config
from trading_core.errors import ConfigError, InvalidInput
from trading_core.strategies import ExternalIndexSentiment
from trading_core.warehouse.bars import SeriesRange

UNIVERSE = (
    "market_data:\n"
    "  universes:\n"
    "    - {name: eq, asset_class: equity, venue: yahoo, timeframe: 1d, symbols: ['^GSPC'], start: 2000-01-01}\n"
)


def _cfg(tmp_path: Path, extra: str = "") -> Path:
    p = tmp_path / "elsewhere" / "my.yaml"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(UNIVERSE + extra)
    return p


def _one_line_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> list[str]:
    rc = main(argv)
    out, err = capsys.readouterr()
    assert rc == 2, (out, err)
    assert "Traceback" not in err
    lines = err.splitlines()
    assert lines[0].startswith("trading: ")
    return lines[1:]


# ---- 3. one rule for paths: relative to the project root ----------------------------------------


def test_config_outside_config_dir_when_relative_paths_then_anchored_at_project_root(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRADING_DATA_DIR")
    monkeypatch.delenv("TRADING_CACHE_DIR")
    cfg = load_config(_cfg(tmp_path, "warehouse: {path: data/custom.duckdb}\n"))
    assert cfg.data_dir == PROJECT_ROOT / "data"
    assert cfg.warehouse.path == PROJECT_ROOT / "data" / "custom.duckdb"  # not beside my.yaml
    assert cfg.market_data.cache_dir == PROJECT_ROOT / ".cache" / "market_data"
    default = load_config(_cfg(tmp_path))
    assert default.warehouse.path == PROJECT_ROOT / "data" / "warehouse.duckdb"


def test_relative_environment_override_when_set_then_anchored_at_project_root(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRADING_WAREHOUSE", "data/other.duckdb")
    assert load_config(_cfg(tmp_path)).warehouse.path == PROJECT_ROOT / "data" / "other.duckdb"


def test_config_validate_when_ok_then_prints_resolved_warehouse_and_the_rule(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TRADING_WAREHOUSE", str(tmp_path / "w.duckdb"))
    assert main(["config", "validate", str(_cfg(tmp_path))]) == 0
    out, err = capsys.readouterr()
    assert f"warehouse: {tmp_path / 'w.duckdb'} (not created yet)" in out
    assert f"relative to the project root {PROJECT_ROOT}" in out
    assert err == ""


@pytest.mark.parametrize("field", ["data_dir", "warehouse.path", "warehouse.serving_dir",
                                   "market_data.cache_dir", "market_data.sample_dir"])
def test_path_when_nul_byte_then_refused_naming_the_field(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], field: str) -> None:
    section, _, key = field.rpartition(".")
    p = tmp_path / "nul.yaml"
    value = '"data/wh\\0.duckdb"'
    if section == "market_data":
        p.write_text(UNIVERSE + f"  {key}: {value}\n")
    elif section:
        p.write_text(UNIVERSE + f"{section}:\n  {key}: {value}\n")
    else:
        p.write_text(UNIVERSE + f"{key}: {value}\n")
    problems = _one_line_exit_2(capsys, ["config", "validate", str(p)])
    assert len(problems) == 1
    assert problems[0].strip().startswith(f"{field} (line ") and "NUL byte" in problems[0]


# ---- 4. venues validated at load ----------------------------------------------------------------

BAD_VENUES = (
    "venues:\n"
    "  yahoo:\n"
    "    fees:\n"
    "      tiers: [{maker_bps: 1, taker_bps: -3}]\n"
    "    tick_size: -0.01\n"
    "    colour: red\n"
)


def test_venues_when_negative_fee_then_config_validate_lists_one_line_per_problem(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    problems = [x.strip() for x in _one_line_exit_2(capsys, ["config", "validate", str(_cfg(tmp_path, BAD_VENUES))])]
    assert len(problems) == 3
    assert problems[0].startswith("venues.yahoo.fees.tiers[0].taker_bps (line 7): ")
    assert "greater than or equal to 0" in problems[0]
    assert problems[1].startswith("venues.yahoo.tick_size (line 8): ")
    assert problems[2].startswith("venues.yahoo.colour (line 9): ")


def test_venues_when_bad_then_backtest_stops_at_config_load_with_one_line_per_problem(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    problems = _one_line_exit_2(capsys, [
        "--config", str(_cfg(tmp_path, BAD_VENUES)), "backtest", "--strategy", "buy_and_hold",
        "--symbol", "^GSPC", "--venue", "yahoo", "--timeframe", "1d", "--start", "2005-01-01",
        "--end", "2006-01-01"])
    assert len(problems) == 3 and all(p.strip().startswith("venues.yahoo.") for p in problems)


def test_venues_when_valid_then_loaded() -> None:
    cfg = load_config(PROJECT_ROOT / "config" / "trading.yaml")
    assert isinstance(cfg.venues, dict)


def test_venues_when_valid_then_validate_passes(tmp_path: Path) -> None:
    good = "venues:\n  yahoo:\n    fees: {tiers: [{maker_bps: -1, taker_bps: 2}]}\n    lot_size: 1\n"
    assert load_config(_cfg(tmp_path, good)).venues["yahoo"]["lot_size"] == 1


# ---- 5. exposure and clear-text keys ------------------------------------------------------------


@pytest.mark.parametrize(("host", "warned"), [
    ("127.0.0.1", False), ("localhost", False), ("::1", False), ("127.0.0.2", False),
    ("0.0.0.0", True), ("::", True), ("192.168.1.5", True), ("127.evil.example", True),
])
def test_services_host_exposure_warning(host: str, warned: bool) -> None:
    w = ServicesConfig(host=host).exposure_warning()
    assert (w is not None) == warned
    if host == "0.0.0.0":
        assert w is not None and "EVERY network interface" in w


def test_config_validate_when_host_all_interfaces_then_ok_with_warning_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "validate", str(_cfg(tmp_path, "services: {host: 0.0.0.0}\n"))]) == 0
    out, err = capsys.readouterr()
    assert ": OK (" in out
    assert err.count("\n") == 1 and err.startswith("trading: warning: services.host is 0.0.0.0")


def test_up_when_host_all_interfaces_then_warns_where_it_prints_urls(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import trading_core.cli.up as up

    class _Done:  # a service that exited at once; its pid is no process (never our own group)
        pid, returncode = 2**22 + 4321, 0

        def __init__(self, *a: object, **k: object) -> None: ...

        def poll(self) -> int:
            return 0

    monkeypatch.setattr(up.subprocess, "Popen", _Done)
    monkeypatch.setattr(up, "_stop", lambda procs, services: [])
    monkeypatch.setattr(up.signal, "signal", lambda *a: None)
    monkeypatch.setattr(up, "start_warmup", lambda *a, **k: _Done(), raising=False)  # no background compile
    monkeypatch.setattr(up, "stop_background", lambda *a, **k: None, raising=False)
    monkeypatch.setattr(up, "_answers", lambda *a, **k: False)  # no port in use here
    # every service "exited at once", so up reports it and stops: exit 1
    assert main(["--config", str(_cfg(tmp_path, "services: {host: 0.0.0.0}\n")), "up", "--no-load"]) == 1
    out, err = capsys.readouterr()
    assert re.search(r"Dagster +http://0\.0\.0\.0:3000", out)
    assert "trading: warning: services.host is 0.0.0.0" in err and "EVERY network interface" in err


def test_external_sentiment_when_key_over_plain_http_then_refused_in_one_line(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SENTIMENT_KEY", "s3cret")
    for url in ("http://sentiment.example.com/index?token=x", "http://127.evil.example/i",
                "HTTP://user:pw@10.0.0.1:8080/i"):
        with pytest.raises(InvalidInput) as e:
            ExternalIndexSentiment(url, api_key_env="TEST_SENTIMENT_KEY")
        msg = str(e.value)
        assert "\n" not in msg and "https://" in msg and "clear text" in msg
        assert "s3cret" not in msg and "pw" not in msg and "token" not in msg


def test_external_sentiment_when_key_set_after_construction_then_refused_before_sending(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_SENTIMENT_KEY", raising=False)
    p = ExternalIndexSentiment("http://sentiment.example.com/i", api_key_env="TEST_SENTIMENT_KEY")
    monkeypatch.setenv("TEST_SENTIMENT_KEY", "s3cret")
    with pytest.raises(InvalidInput, match="clear text"):  # raised before any socket is opened
        p.series(datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC))


@pytest.mark.parametrize("url", ["https://sentiment.example.com/i", "http://127.0.0.1:9/i",
                                 "http://localhost:9/i", "http://[::1]:9/i"])
def test_external_sentiment_when_https_or_loopback_then_key_allowed(
        monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("TEST_SENTIMENT_KEY", "s3cret")
    assert ExternalIndexSentiment(url, api_key_env="TEST_SENTIMENT_KEY").url == url


def test_external_sentiment_when_plain_http_without_key_then_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_SENTIMENT_KEY", raising=False)
    assert ExternalIndexSentiment("http://sentiment.example.com/i", api_key_env="TEST_SENTIMENT_KEY")


# ---- 2. what a backtest over unstored bars says -------------------------------------------------


def _d(y: int, m: int, d: int, h: int = 0) -> datetime:
    return datetime(y, m, d, h, tzinfo=UTC)


class _Stored:
    """A bar source that holds the listed series but returns no bars for the request."""

    path = Path("/tmp/wh.duckdb")

    def __init__(self, series: list[SeriesRange]) -> None:
        self._series = series

    def read_bars(self, *a: object, **k: object) -> pl.DataFrame:
        return pl.DataFrame({"ts": []})

    def series(self) -> list[SeriesRange]:
        return self._series


STORED = [
    SeriesRange("coinbase", "BTC/USD", "1h", _d(2017, 7, 1, 11), _d(2019, 10, 17, 9), 20111),
    SeriesRange("yahoo", "^GSPC", "1d", _d(1999, 1, 4), _d(2018, 12, 31), 5031),
    SeriesRange("yahoo", "^IXIC", "1d", _d(1999, 1, 4), _d(2018, 12, 31), 5031),
    SeriesRange("yahoo", "^VIX", "1d", _d(1990, 1, 2), _d(2024, 6, 20), 8700),
]


def _refusal(symbol: str = "^GSPC", venue: str = "yahoo", timeframe: str = "1d",
             start: datetime = _d(2005, 1, 1), end: datetime = _d(2019, 1, 1),
             stored: list[SeriesRange] = STORED) -> str:
    req = BacktestRequest(strategy="buy_and_hold", symbol=symbol, venue=venue, timeframe=timeframe,
                          start=start, end=end)
    with pytest.raises(InvalidInput) as e:
        run_backtest(req, _Stored(stored))  # type: ignore[arg-type]
    msg = str(e.value)
    assert "\n" not in msg and "ingest them first" in msg
    return msg


@pytest.mark.parametrize(("kw", "asked"), [
    ({"symbol": "GSPC"}, "GSPC on yahoo"),           # the missing ^
    ({"symbol": "^GSCP"}, "^GSCP on yahoo"),         # misspelt
    ({"venue": "coinbase"}, "^GSPC on coinbase"),    # wrong venue
    ({"timeframe": "1h"}, "1h bar(s) of ^GSPC"),     # wrong timeframe
])
def test_unstored_series_then_names_the_nearest_stored_series_with_first_and_last_bar(
        kw: dict[str, str], asked: str) -> None:
    msg = _refusal(**kw)  # type: ignore[arg-type]
    assert asked in msg
    assert "from 2005-01-01 to 2018-12-31 (inclusive)" in msg  # the --end day, not the exclusive end
    assert "nearest stored: ^GSPC yahoo 1d 1999-01-04 .. 2018-12-31" in msg


def test_range_outside_the_stored_series_then_shows_its_first_and_last_bar() -> None:
    msg = _refusal(start=_d(2020, 1, 1), end=_d(2022, 1, 1))
    assert "0 1d bar(s) of ^GSPC on yahoo from 2020-01-01 to 2021-12-31 (inclusive)" in msg
    assert "stored: 5031 bars from 1999-01-04 to 2018-12-31" in msg


def test_intraday_request_then_times_and_exclusive_end_spelled_out() -> None:
    msg = _refusal(symbol="BTC/USD", venue="coinbase", timeframe="1h", start=_d(2020, 1, 1),
                   end=_d(2020, 2, 1, 12))
    assert "to before 2020-02-01 12:00 UTC" in msg
    assert "from 2017-07-01 11:00 to 2019-10-17 09:00" in msg


def test_nothing_named_alike_then_lists_what_is_stored() -> None:
    msg = _refusal(symbol="AAPL")
    assert "no stored series is named like it; stored: ^GSPC yahoo 1d" in msg


def test_empty_warehouse_then_says_so_with_its_path() -> None:
    msg = _refusal(stored=[])
    assert "the warehouse in /tmp/wh.duckdb holds no bars" in msg and "trading ingest sample" in msg


def test_config_error_still_reported_for_other_sections_alongside_venues(tmp_path: Path) -> None:
    p = _cfg(tmp_path, BAD_VENUES + "services: {dagster_port: 0}\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert any(x.startswith("services.dagster_port") for x in e.value.problems)
    assert sum(x.startswith("venues.") for x in e.value.problems) == 3
