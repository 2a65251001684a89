"""Every YAML file the platform reads goes through ``trading_core.yaml_io``: hostile or broken
input (non-UTF-8, deep nesting, billion laughs, duplicate keys, FIFO, /dev/zero, oversize,
non-finite numbers, impossible dates) is one ``InvalidInput`` line naming the file and line, and
``trading config validate`` / ``trading backtest --strategy-file`` print that one line and exit 2."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from trading_core import yaml_io
from trading_core.cli import main
from trading_core.errors import InvalidInput
from trading_core.risk.config import load_risk_config_file
from trading_core.strategies.yaml_builder import YamlStrategyError, load_yaml_strategy, parse_yaml_strategy
from trading_core.yaml_io import (
    MAX_YAML_BYTES,
    MAX_YAML_DEPTH,
    YamlInputError,
    load_yaml_file,
    load_yaml_text,
)

STRATEGY = "name: x\nentry: close > 1\nexit: close < 1\n"
LAUGHS = ('a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
          + "".join(f"{n}: &{n} [{','.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True)))


def _promptly(fn: Callable[[], Any], fifo: Path | None = None, limit_s: float = 5.0) -> Any:
    """``fn()`` in a thread; fail (after unblocking a reader stuck on ``fifo``) past ``limit_s``."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed back to the test
            box["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(limit_s)
    if t.is_alive():
        if fifo is not None:
            with contextlib.suppress(OSError):
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail(f"did not return within {limit_s} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


# ############# Each class of bad input: (file body, expected words) ############# #


def _bad_files(tmp_path: Path, prefix: str = "") -> dict[str, tuple[Path, tuple[str, ...]]]:
    """One file per input class; ``prefix`` is valid YAML put in front where the class allows."""
    d = tmp_path / "bad"
    d.mkdir(exist_ok=True)

    def w(name: str, data: bytes | str) -> Path:
        p = d / name
        p.write_bytes(data if isinstance(data, bytes) else data.encode())
        return p

    fifo = d / "fifo.yaml"
    os.mkfifo(fifo)
    return {
        "non_utf8": (w("latin1.yaml", prefix.encode() + b"note: caf\xe9\n"), ("not UTF-8", "0xe9", "offset")),
        "deep": (w("deep.yaml", "[" * 10_000), (f"nested deeper than {MAX_YAML_DEPTH} levels", "line 1")),
        "aliases": (w("laughs.yaml", LAUGHS), ("not allowed", "line 1")),
        "duplicate": (w("dup.yaml", prefix + "warehouse:\n  lock_deadline_s: 5\nwarehouse:\n  lock_deadline_s: 6\n"),
                      ("'warehouse' given twice",)),
        "fifo": (fifo, ("FIFO", "not a regular file")),
        "dev_zero": (Path("/dev/zero"), ("character device", "not a regular file")),
        "oversize": (w("big.yaml", "a: 1\n" + "#" * (MAX_YAML_BYTES + 10) + "\n"),
                     ("bytes, above the", f"{MAX_YAML_BYTES}-byte limit")),
        "non_finite": (w("inf.yaml", prefix + "warehouse:\n  lock_deadline_s: 1e400\n"),
                       ("warehouse.lock_deadline_s", "non-finite number '1e400'")),
        "bad_date": (w("date.yaml", prefix + "market_data:\n  universes:\n    - start: 2018-02-30\n"),
                     ("invalid date '2018-02-30'", "day is out of range")),
    }


CLASSES = ("non_utf8", "deep", "aliases", "duplicate", "fifo", "dev_zero", "oversize", "non_finite", "bad_date")


@pytest.mark.parametrize("case", CLASSES)
def test_yaml_io_when_bad_input_then_one_invalid_input_line_naming_the_file(case: str, tmp_path: Path) -> None:
    path, words = _bad_files(tmp_path)[case]
    t0 = time.perf_counter()
    with pytest.raises(YamlInputError) as e:
        _promptly(lambda: load_yaml_file(path), fifo=path if case == "fifo" else None)
    assert time.perf_counter() - t0 < 1.0
    msg = str(e.value)
    assert isinstance(e.value, InvalidInput)
    assert msg.startswith(str(path)) and "\n" not in msg
    for word in words:
        assert word in msg, msg


def test_yaml_io_when_non_utf8_then_line_column_and_offset() -> None:
    with pytest.raises(YamlInputError) as e:
        yaml_io.decode_yaml_bytes(b"a: 1\nb: caf\xe9\n", "f.yaml")
    assert str(e.value) == "f.yaml, line 2, column 7: not UTF-8 text (byte 0xe9 at offset 11)"


def test_yaml_io_when_deeply_nested_then_refused_without_recursion_error() -> None:
    for text in ("[" * 10_000, "{a: " * 10_000, "".join(f"{' ' * i}k:\n" for i in range(200)) + "v"):
        with pytest.raises(YamlInputError, match=f"nested deeper than {MAX_YAML_DEPTH}"):
            load_yaml_text(text, "deep.yaml")
    data, _ = load_yaml_text("[" * MAX_YAML_DEPTH + "]" * MAX_YAML_DEPTH, "ok.yaml")
    assert isinstance(data, list)


def test_yaml_io_when_billion_laughs_then_refused_in_under_a_second() -> None:
    assert len(LAUGHS) < 600
    t0 = time.perf_counter()
    with pytest.raises(YamlInputError, match=r"laughs.yaml, line 1, column 4: YAML anchors \(&a\) are not allowed"):
        load_yaml_text(LAUGHS, "laughs.yaml")
    assert time.perf_counter() - t0 < 1.0
    with pytest.raises(YamlInputError, match=r"line 2, column 4: YAML aliases \(\*a\) are not allowed"):
        load_yaml_text("a: 1\nb: *a\n", "alias.yaml")


def test_yaml_io_when_duplicate_key_then_both_lines_named() -> None:
    with pytest.raises(YamlInputError) as e:
        load_yaml_text("a:\n  x: 1\n  y: 2\n  x: 3\n", "dup.yaml")
    assert str(e.value) == "dup.yaml, line 4, column 3: key 'x' in a given twice (lines 2 and 4)"


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan", ".NaN", "1e400", "-1.5e+999", "1.0e+400"])
def test_yaml_io_when_non_finite_number_then_key_path_and_line(value: str) -> None:
    with pytest.raises(YamlInputError) as e:
        load_yaml_text(f"risk:\n  limits:\n    - {{cap: {value}}}\n", "n.yaml")
    assert str(e.value).startswith("n.yaml, line 3, column ")
    assert f"risk.limits[0].cap: non-finite number {value!r} is not allowed" in str(e.value)


def test_yaml_io_when_numbers_finite_or_quoted_then_kept() -> None:
    data, node = load_yaml_text("a: 1e3\nb: 1.5\nc: '1e400'\nd: inf\ne: 2018-02-28\n", "ok.yaml")
    assert data["a"] == "1e3" and data["b"] == 1.5 and data["c"] == "1e400" and data["d"] == "inf"
    assert node is not None and node.value[1][1].start_mark.line == 1  # positions kept


def test_yaml_io_when_impossible_date_then_one_clear_line() -> None:
    with pytest.raises(YamlInputError) as e:
        load_yaml_text("start: 2018-02-30\n", "d.yaml")
    assert str(e.value) == "d.yaml, line 1, column 8: start: invalid date '2018-02-30' (day is out of range for month)"


def test_yaml_io_when_fifo_then_refused_before_opening(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    with pytest.raises(YamlInputError, match="is a FIFO, not a regular file"):
        _promptly(lambda: yaml_io.read_yaml_bytes(fifo), fifo=fifo)


def test_yaml_io_when_oversize_then_size_and_limit_named(tmp_path: Path) -> None:
    p = tmp_path / "big.yaml"
    p.write_bytes(b"a: 1\n" + b"#" * 100)
    with pytest.raises(YamlInputError, match=r"file is 105 bytes, above the 50-byte limit"):
        yaml_io.read_yaml_bytes(p, max_bytes=50)


# ############# Through the real entry points ############# #


def _one_line(capsys: pytest.CaptureFixture[str], rc: int) -> str:
    out, err = capsys.readouterr()
    assert rc == 2, (out, err)
    assert "Traceback" not in err and out == ""
    lines = err.strip("\n").splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("case", CLASSES)
def test_config_validate_when_bad_yaml_then_one_line_and_exit_2(
        case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, words = _bad_files(tmp_path)[case]
    line = _one_line(capsys, _promptly(lambda: main(["config", "validate", str(path)]),
                                       fifo=path if case == "fifo" else None))
    assert line.startswith(f"trading: {path}")
    for word in words:
        assert word in line, line
    line = _one_line(capsys, _promptly(lambda: main(["config", "validate", str(path), "--json"]),
                                       fifo=path if case == "fifo" else None))
    assert words[0] in line


@pytest.mark.parametrize("case", CLASSES)
def test_load_yaml_strategy_when_bad_yaml_then_yaml_strategy_error(case: str, tmp_path: Path) -> None:
    path, words = _bad_files(tmp_path, prefix=STRATEGY)[case]
    with pytest.raises(YamlStrategyError) as e:
        _promptly(lambda: load_yaml_strategy(path), fifo=path if case == "fifo" else None)
    assert str(e.value).startswith(str(path)) and "\n" not in str(e.value)
    if case != "duplicate":  # the strategy has no 'warehouse' key, but the loader refuses it first
        for word in words:
            assert word in str(e.value), str(e.value)


def test_parse_yaml_strategy_keeps_its_error_style() -> None:
    with pytest.raises(YamlStrategyError) as e:
        parse_yaml_strategy(STRATEGY + "stop_loss_pct: .inf\n", "s.yaml")
    assert e.value.line == 4 and e.value.column == 16
    assert str(e.value) == "s.yaml, line 4, column 16: stop_loss_pct: non-finite number '.inf' is not allowed"


@pytest.mark.parametrize("case", ["non_utf8", "deep", "aliases", "duplicate", "oversize", "non_finite", "bad_date"])
def test_backtest_strategy_file_when_bad_yaml_then_one_line_and_exit_2(
        case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADING_WAREHOUSE", str(tmp_path / "none.duckdb"))  # never reached
    path, words = _bad_files(tmp_path, prefix=STRATEGY)[case]
    argv = ["backtest", "--strategy-file", str(path), "--symbol", "^GSPC", "--venue", "yahoo", "--timeframe",
            "1d", "--start", "2000-01-01", "--end", "2018-12-31", "--no-save"]
    line = _one_line(capsys, _promptly(lambda: main(argv), limit_s=60))
    assert str(path) in line
    assert words[0] in line or case == "duplicate", line


@pytest.mark.parametrize("case", CLASSES)
def test_load_risk_config_file_when_bad_yaml_then_one_invalid_input_line(case: str, tmp_path: Path) -> None:
    path, words = _bad_files(tmp_path, prefix="risk: {}\n" if case != "duplicate" else "")[case]
    with pytest.raises(InvalidInput) as e:
        _promptly(lambda: load_risk_config_file(path), fifo=path if case == "fifo" else None)
    assert str(e.value).startswith(str(path)) and "\n" not in str(e.value)
    assert words[0] in str(e.value)


def test_load_risk_config_file_when_valid_then_risk_config(tmp_path: Path) -> None:
    p = tmp_path / "risk.yaml"
    p.write_text("risk:\n  breakers: {enabled: false}\n")
    assert load_risk_config_file(p).breakers.enabled is False


@pytest.mark.parametrize("case", ["non_utf8", "deep", "aliases", "oversize", "non_finite", "bad_date"])
def test_backtest_risk_config_when_bad_yaml_then_one_line_and_exit_2(
        case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADING_WAREHOUSE", str(tmp_path / "none.duckdb"))  # never reached
    path, words = _bad_files(tmp_path, prefix="risk: {}\n")[case]
    argv = ["backtest", "--strategy", "ma_crossover", "--symbol", "^GSPC", "--venue", "yahoo", "--timeframe",
            "1d", "--start", "2000-01-01", "--end", "2018-12-31", "--no-save", "--risk-config", str(path)]
    line = _one_line(capsys, _promptly(lambda: main(argv), limit_s=60))
    assert str(path) in line and words[0] in line, line
