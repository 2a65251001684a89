"""``trading backtest``: an argument out of range is ONE line on stderr, exit 2, no traceback, and
refused before any heavy work -- dates, strategy windows, grid size, money and the device -- in
process, on a temporary warehouse of real ^GSPC bars."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import polars as pl
import pytest

import trading_core.backtest  # noqa: F401 - imported up front, as the command has it
from trading_core.backtest.runner import MAX_PORTFOLIO_BARS, MAX_PORTFOLIOS, check_work
from trading_core.cli import main
from trading_core.engine import cuda_available, resolve_device
from trading_core.errors import InvalidInput
from trading_core.strategies import get_strategy
from trading_core.strategies.base import MAX_WINDOW
from trading_core.strategies.registry import STRATEGIES

# the backtest tests' warehouse helper (real bars written through the warehouse writer)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backtest"))
from bt_helpers import build_warehouse  # noqa: E402

BASE = ["backtest", "--symbol", "^GSPC", "--venue", "yahoo", "--timeframe", "1d", "--no-save", "--no-risk"]
DATES = ["--start", "2017-01-01", "--end", "2018-12-31"]
BUY_HOLD = [*BASE, "--strategy", "buy_and_hold"]


@pytest.fixture(scope="module")
def warehouse_path(tmp_path_factory: pytest.TempPathFactory, sp500: pl.DataFrame) -> Path:
    path = tmp_path_factory.mktemp("ranges") / "warehouse.duckdb"
    build_warehouse(path, sp500)
    return path


@pytest.fixture(autouse=True)
def use_warehouse(warehouse_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRADING_WAREHOUSE", str(warehouse_path))
    return warehouse_path


def _refused(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run the command; assert exit 2, nothing on stdout, exactly one stderr line; return it."""
    rc = main(list(args))
    out, err = capsys.readouterr()
    assert rc == 2, err
    assert out == ""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("trading: ")
    return lines[0]


@pytest.mark.parametrize(("flags", "flag"), [
    (["--start", "0001-01-01", "--end", "2018-12-31"], "--start"),
    (["--start", "2000-01-01", "--end", "9999-12-31"], "--end"),
    (["--start", "0001-01-01T00:00+05:00", "--end", "2018-12-31"], "--start"),
    (["--start", "2000-01-01", "--end", "9999-12-31T23:59:59"], "--end"),
])
def test_backtest_when_date_outside_supported_range_then_one_line_naming_flag(
    capsys: pytest.CaptureFixture[str], flags: list[str], flag: str,
) -> None:
    # Act
    line = _refused(capsys, *BUY_HOLD, *flags)

    # Assert
    assert line.startswith(f"trading: {flag} ")
    assert "outside the supported date range 1900-01-01 .. 2262-04-10" in line


def test_backtest_request_when_date_outside_range_then_validation_error() -> None:
    from datetime import UTC, datetime

    from pydantic import ValidationError

    from trading_core.backtest import BacktestRequest

    # Act / Assert: the model refuses it too, for callers that do not come through the CLI
    with pytest.raises(ValidationError, match="outside the supported range"):
        BacktestRequest(strategy="buy_and_hold", symbol="^GSPC", venue="yahoo", timeframe="1d",
                        start=datetime(1, 1, 1, tzinfo=UTC), end=datetime(2018, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize(("params", "name"), [
    ([f"fast={10**30}"], "fast"),
    ([f"slow={MAX_WINDOW + 1}"], "slow"),
    ([f"grid=10:{10**30}"], "grid"),
])
def test_backtest_when_window_param_huge_then_one_line_naming_param(
    capsys: pytest.CaptureFixture[str], params: list[str], name: str,
) -> None:
    # Act
    line = _refused(capsys, *BASE, *DATES, "--strategy", "ma_crossover",
                    *[x for p in params for x in ("--param", p)])

    # Assert
    assert f"param {name!r}=" in line
    assert f"beyond the limit of {MAX_WINDOW} bars" in line


def test_every_registered_integer_param_is_bounded() -> None:
    """Each strategy's every integer parameter refuses 10**30 by name, in one line (no overflow)."""
    checked = 0
    for name, cls in STRATEGIES.items():
        for field, info in cls.Params.model_fields.items():
            if info.annotation is not int:
                continue
            with pytest.raises(InvalidInput) as e:
                get_strategy(name, {field: str(10**30)})
            assert f"param {field!r}=" in str(e.value) and "\n" not in str(e.value)
            checked += 1
    assert checked >= 15


def test_backtest_when_window_longer_than_bars_then_runs_without_trades(capsys: pytest.CaptureFixture[str]) -> None:
    # Act: 99_999-bar windows on ~500 bars: no signal ever, not a crash
    rc = main([*BASE, *DATES, "--strategy", "ma_crossover", "--param", "fast=99998", "--param", "slow=99999",
               "--param", "kind=ema", "--json"])
    out, err = capsys.readouterr()

    # Assert
    assert rc == 0, err
    assert json.loads(out)["metrics"]["trades"] == 0


def test_backtest_when_grid_too_large_then_refused_at_once_with_the_numbers(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Arrange: 59 x 100 = 5900 fast:slow pairs; "at once" = before any bar is read or signal computed
    grid = ",".join(f"{f}:{s}" for f in range(1, 60) for s in range(100, 200))
    import trading_core.backtest.runner as runner
    from trading_core.strategies.ma_crossover import MaCrossover

    def heavy(*a: object, **k: object) -> None:
        raise AssertionError("heavy work started before the grid was refused")

    monkeypatch.setattr(MaCrossover, "signals", heavy)
    monkeypatch.setattr(runner, "run_backtest", heavy)

    # Act
    line = _refused(capsys, *BASE, *DATES, "--strategy", "ma_crossover", "--param", f"grid={grid}")

    # Assert
    assert "strategy ma_crossover: 5900 variant(s) x 1 symbol(s) = 5900 portfolios" in line
    assert f"limit of {MAX_PORTFOLIOS}" in line


def test_check_work_when_portfolio_bars_over_limit_then_numbers_in_message() -> None:
    # Act / Assert
    check_work("macd", MAX_PORTFOLIOS, 1, MAX_PORTFOLIO_BARS // MAX_PORTFOLIOS)
    with pytest.raises(InvalidInput, match=r"1000 variant\(s\) x 1 symbol\(s\) = 1000 portfolios x 100000 bars "
                                           r"= 1e\+08 portfolio-bars"):
        check_work("macd", 1000, 1, 100_000)


@pytest.mark.parametrize(("flags", "flag"), [
    (["--cash", "1e308"], "--cash"),
    (["--cash", "inf"], "--cash"),
    (["--sizing", "fixed", "--size", "1e300"], "--size"),
    (["--fee-bps", "1e308"], "--fee-bps"),
    (["--rebalance-bars", "1e300"], "--rebalance-bars"),
    (["--slippage", "fixed:100000000000"], "--slippage"),
])
def test_backtest_when_money_flag_huge_then_one_line_naming_flag(
    capsys: pytest.CaptureFixture[str], flags: list[str], flag: str,
) -> None:
    # Act
    line = _refused(capsys, *BUY_HOLD, *DATES, *flags)

    # Assert
    assert line.startswith(f"trading: {flag}")


@pytest.mark.skipif(cuda_available(), reason="a usable CUDA GPU is present")
def test_backtest_when_device_cuda_without_gpu_then_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    # Act
    line = _refused(capsys, *BUY_HOLD, *DATES, "--device", "cuda")

    # Assert
    assert line.startswith("trading: device cuda requested but no usable CUDA GPU: ")
    with pytest.raises(InvalidInput, match="device cuda requested but no usable CUDA GPU"):
        resolve_device("cuda")


@pytest.mark.skipif(cuda_available(), reason="a usable CUDA GPU is present")
def test_backtest_when_device_auto_without_gpu_then_runs_on_cpu_and_says_so(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Act
    rc = main([*BUY_HOLD, *DATES, "--device", "auto", "--json"])
    out, err = capsys.readouterr()

    # Assert
    assert rc == 0, err
    assert json.loads(out)["device"] == "cpu"
