"""Issue 21's hostile inputs, many of each class, through the CLI's ``main(argv)`` in process:
config bytes, nesting and aliases, duplicate keys, file kinds and sizes, rule depth and literals,
argument ranges, non-finite values. Every one must end with exit 2, a short message on stderr
(one line, or a config's header plus one line per problem), no traceback, and the warehouse's
bars exactly as they were."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from trading_core.cli import main
from trading_core.engine import cuda_available
from trading_core.warehouse import Warehouse

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backtest"))
from bt_helpers import build_warehouse  # noqa: E402

STRATEGY = "name: x\nentry: close > 1\nexit: close < 1\n"
LAUGHS = ('a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
          + "".join(f"{n}: &{n} [{','.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True)))
BT = ["backtest", "--symbol", "^GSPC", "--venue", "yahoo", "--timeframe", "1d", "--no-save", "--no-risk"]
MA = [*BT, "--strategy", "ma_crossover"]
DATES = ["--start", "2017-01-01", "--end", "2018-12-31"]
ING = ["--symbol", "BTC/USD", "--venue", "coinbase", "--timeframe", "1h"]
CSV_HEAD = "ts,open,high,low,close,volume\n"
PAPER = ["paper", "start", "--strategy", "ma_crossover", "--symbol", "^GSPC", "--venue", "yahoo", "--timeframe", "1d",
         *DATES, "--foreground"]


def _files(d: Path) -> dict[str, Path]:
    """Every hostile file the cases below name, written once."""
    out: dict[str, Path] = {}

    def w(name: str, data: bytes | str) -> None:
        p = d / name
        p.write_bytes(data if isinstance(data, bytes) else data.encode())
        out[name] = p

    # ---- config files: bytes, nesting, aliases, duplicates, non-finite, dates, paths, shape
    w("latin1.yaml", b"warehouse:\n  lock_deadline_s: 5 # caf\xe9\n")
    w("utf16.yaml", "warehouse: {}\n".encode("utf-16"))
    w("nul.yaml", b"warehouse:\n  lock_\x00deadline_s: 5\n")
    w("deep_flow.yaml", "[" * 10_000)
    w("deep_map.yaml", "{a: " * 5_000)
    w("deep_block.yaml", "".join(f"{' ' * i}k:\n" for i in range(300)) + "v")
    w("laughs.yaml", LAUGHS)
    w("alias_engine.yaml", "x: &big [1, 2, 3]\nengine: *big\n")
    w("merge_key.yaml", "base: &b {lock_deadline_s: 5}\nwarehouse:\n  <<: *b\n")
    w("dup_top.yaml", "warehouse:\n  lock_deadline_s: 5\nwarehouse:\n  lock_deadline_s: 6\n")
    w("dup_nested.yaml", "warehouse:\n  lock_deadline_s: 5\n  lock_deadline_s: 6\n")
    w("deadline_1e400.yaml", "warehouse:\n  lock_deadline_s: 1e400\n")
    w("deadline_inf.yaml", "warehouse:\n  lock_deadline_s: .inf\n")
    w("deadline_nan.yaml", "warehouse:\n  lock_deadline_s: .nan\n")
    w("deadline_neg_inf.yaml", "warehouse:\n  lock_deadline_s: -.inf\n")
    w("deadline_huge_int.yaml", "warehouse:\n  lock_deadline_s: 1" + "0" * 400 + "\n")
    w("deadline_negative.yaml", "warehouse:\n  lock_deadline_s: -5\n")
    w("date_feb30.yaml", "market_data:\n  universes:\n    - start: 2018-02-30\n")
    w("date_month13.yaml", "market_data:\n  universes:\n    - start: 2018-13-01\n")
    w("nul_path.yaml", 'warehouse:\n  path: "data/a\\0b.duckdb"\n')
    w("unknown_key.yaml", "warehouse:\n  lock_deadline_sec: 5\n")
    w("top_list.yaml", "- 1\n- 2\n")
    w("top_scalar.yaml", "just text\n")
    w("syntax.yaml", "warehouse:\n\t- lock: [\n")
    w("big.yaml", "a: 1\n" + "#" * (2 * 1024 * 1024) + "\n")
    w("neg_fee.yaml", "venues:\n  coinbase:\n    fees: {maker_bps: -5, taker_bps: -10}\n")
    # ---- strategy rule files: depth, literals, forbidden syntax
    for name, expr in {
        "minus": "-" * 1_000 + "close > 1", "not": "not " * 1_000 + "close > 1",
        "plus": "+" * 1_000 + "close > 1", "parens": "(" * 1_000 + "close" + ")" * 1_000 + " > 1",
        "huge_int": "close > 1" + "0" * 400, "div_zero": "close > 1 / 0", "mod_zero": "close > 5 % 0",
        "prev_inf": "prev(close, inf) > 1", "prev_half": "prev(close, 0.5) > 1",
        "big_float": "close > 1e400", "dunder": "close.__class__ > 1", "import": "__import__('os') > 1",
        "lambda": "(lambda: 1)() > 1", "power": "close ** 10 ** 10 > 1", "string": "close > 'abc'",
        "attr_chain": ".".join(["close"] * 500) + " > 1", "sma_huge": "sma(close, 10**12) > 1",
    }.items():
        w(f"rule_{name}.yaml", f"name: x\nentry: >-\n  {expr}\nexit: close < 1\n")
    w("rule_laughs.yaml", LAUGHS.replace("a: &a", "name: &a"))
    w("rule_latin1.yaml", STRATEGY.encode() + b"# caf\xe9\n")
    w("rule_dup.yaml", STRATEGY + "entry: close > 2\n")
    w("rule_stop_inf.yaml", STRATEGY + "stop_loss_pct: .inf\n")
    w("risk_inf.yaml", "risk:\n  breakers: {max_drawdown: .inf}\n")
    # ---- bar files: kinds, sizes, content
    w("binary.csv", b"\x00\x01\x02" * 100)
    w("zeros.parquet", b"\x00" * 4096)
    w("deep.json", "[" * 100_000)
    w("dict.json", '{"ts": 1}')
    w("scalar.json", "42")
    w("bad.xlsx", b"PK\x03\x04")
    w("empty.csv", "")
    w("header_only.csv", CSV_HEAD)
    w("semicolon.csv", "ts;open;high;low;close;volume\n2019-01-01T00:00:00Z;1;1;1;1;1\n")
    w("no_ts.csv", "open,high,low,close,volume\n1,1,1,1,1\n")
    w("epoch_s.csv", CSV_HEAD + "1546300800,1,1,1,1,1\n1546304400,1,1,1,1,1\n")
    w("naive_ts.csv", CSV_HEAD + "2019-01-01 00:00:00,1,1,1,1,1\n")
    w("dup_header.csv", "ts,open,high,low,close,volume,open\n2019-01-01T00:00:00Z,1,1,1,1,1,2\n")
    w("rule_long_name.yaml", "name: " + "n" * 10_000 + "\nentry: close > 1\nexit: close < 1\n")
    sparse = d / "sparse.csv"
    with open(sparse, "wb") as fh:
        fh.truncate(3 * 1024 * 1024)
    out["sparse.csv"] = sparse
    fifo = d / "fifo.csv"
    os.mkfifo(fifo)
    out["fifo.csv"] = fifo
    fifo_yaml = d / "fifo.yaml"
    os.mkfifo(fifo_yaml)
    out["fifo.yaml"] = fifo_yaml
    return out


def _cases() -> list[tuple[str, Callable[[dict[str, Path], Path], list[str]], str]]:
    """(id, argv builder from the files and the data dir, a word the message must hold)."""
    cases: list[tuple[str, Callable[[dict[str, Path], Path], list[str]], str]] = []
    for name, word in [
        ("latin1.yaml", "not UTF-8"), ("utf16.yaml", "UTF-8"), ("nul.yaml", "nul.yaml"),
        ("deep_flow.yaml", "nested deeper"), ("deep_map.yaml", "nested deeper"), ("deep_block.yaml", "nested deeper"),
        ("laughs.yaml", "not allowed"), ("alias_engine.yaml", "not allowed"), ("merge_key.yaml", "not allowed"),
        ("dup_top.yaml", "given twice"), ("dup_nested.yaml", "given twice"),
        ("deadline_1e400.yaml", "non-finite"), ("deadline_inf.yaml", "non-finite"), ("deadline_nan.yaml", "non-finite"),
        ("deadline_neg_inf.yaml", "non-finite"), ("deadline_huge_int.yaml", "lock_deadline_s"),
        ("deadline_negative.yaml", "lock_deadline_s"), ("date_feb30.yaml", "invalid date"),
        ("date_month13.yaml", "2018-13-01"), ("nul_path.yaml", "NUL"), ("unknown_key.yaml", "lock_deadline_sec"),
        ("top_list.yaml", "top_list.yaml"), ("top_scalar.yaml", "top_scalar.yaml"), ("syntax.yaml", "syntax.yaml"),
        ("big.yaml", "limit"), ("neg_fee.yaml", "venues"), ("fifo.yaml", "FIFO"),
    ]:
        cases.append((f"config-validate-{name}", lambda f, _d, n=name: ["config", "validate", str(f[n])], word))
    for name, word in [("deadline_inf.yaml", "non-finite"), ("laughs.yaml", "not allowed"),
                       ("dup_top.yaml", "given twice"), ("nul_path.yaml", "NUL")]:
        cases.append((f"config-json-{name}", lambda f, _d, n=name: ["config", "validate", str(f[n]), "--json"], word))
        cases.append((f"global-config-{name}",
                      lambda f, _d, n=name: ["--config", str(f[n]), *MA, *DATES], word))
    cases += [
        ("config-dev-zero", lambda _f, _d: ["config", "validate", "/dev/zero"], "character device"),
        ("config-directory", lambda _f, d: ["config", "validate", str(d)], "directory"),
        ("config-missing", lambda _f, d: ["config", "validate", str(d / "nope.yaml")], "nope.yaml"),
    ]
    for name, word in [
        ("minus", "nested"), ("not", "longer than"), ("plus", "nested"), ("parens", "longer than"),
        ("huge_int", "too large"),
        ("div_zero", "zero"), ("mod_zero", "zero"), ("prev_inf", "prev"), ("prev_half", "prev"),
        ("big_float", "rule_big_float"), ("dunder", "rule_dunder"), ("import", "rule_import"),
        ("lambda", "rule_lambda"), ("power", "rule_power"), ("string", "rule_string"),
        ("attr_chain", "rule_attr_chain"), ("sma_huge", "rule_sma_huge"), ("laughs", "not allowed"),
        ("latin1", "not UTF-8"), ("dup", "given twice"), ("stop_inf", "non-finite"),
    ]:
        cases.append((f"strategy-file-{name}",
                      lambda f, _d, n=name: [*BT, "--strategy-file", str(f[f"rule_{n}.yaml"]), *DATES], word))
    cases.append(("risk-config-inf", lambda f, _d: [*BT[:-1], "--strategy", "ma_crossover", *DATES, "--risk-config", str(f["risk_inf.yaml"])],
                  "non-finite"))
    for i, (flags, word) in enumerate([
        (["--start", "0001-01-01", "--end", "2018-12-31"], "--start"),
        (["--start", "2000-01-01", "--end", "9999-12-31"], "--end"),
        (["--start", "2018-02-30", "--end", "2018-12-31"], "--start"),
        (["--start", "2018-12-31", "--end", "2017-01-01"], "--start"),
        (["--start", "yesterday", "--end", "2018-12-31"], "--start"),
        ([*DATES, "--cash", "1e308"], "--cash"), ([*DATES, "--cash", "nan"], "--cash"),
        ([*DATES, "--cash", "inf"], "--cash"), ([*DATES, "--cash", "-1"], "--cash"),
        ([*DATES, "--cash", "1e400"], "--cash"), ([*DATES, "--fee-bps", "nan"], "--fee-bps"),
        ([*DATES, "--fee-bps", "-3"], "--fee-bps"), ([*DATES, "--size", "inf"], "--size"),
        ([*DATES, "--param", "fast=1" + "0" * 40], "fast"), ([*DATES, "--param", "fast=-5"], "fast"),
        ([*DATES, "--param", "fast=nan"], "fast"), ([*DATES, "--param", "bogus=1"], "bogus"),
        ([*DATES, "--param", "fast=1e400"], "fast"), ([*DATES, "--param", "nonsense"], "nonsense"),
        ([*DATES, "--param", "grid=" + ",".join(f"{i}:{i + 100}" for i in range(1, 3001))], "grid"),
        ([*DATES, "--rebalance-bars", "-1"], "--rebalance-bars"),
        ([*DATES, "--warmup-bars", "1" + "0" * 30], "--warmup-bars"),
        ([*DATES, "--slippage", "fixed:inf"], "--slippage"), ([*DATES, "--slippage", "sqrt:nan"], "--slippage"),
        ([*DATES, "--timeframe", "7x"], "timeframe"),
    ]):
        cases.append((f"backtest-{i}-{' '.join(flags[-2:])[:40]}", lambda _f, _d, fl=flags: [*MA, *fl], word))
    for symbol in ["'; DROP TABLE market.bars; --", "BTC/USD\x00", "../../etc/passwd", "A" * 200]:
        cases.append((f"backtest-symbol-{symbol[:12]!r}",
                      lambda _f, _d, s=symbol: [*MA[:2], s, *MA[3:], *DATES], "symbol"))
    if not cuda_available():
        cases.append(("backtest-device-cuda", lambda _f, _d: [*MA, *DATES, "--device", "cuda"], "cuda"))
    for name, word in [
        ("binary.csv", "binary"), ("zeros.parquet", "Parquet"), ("deep.json", "JSON"), ("dict.json", "JSON"),
        ("scalar.json", "JSON"), ("bad.xlsx", "unsupported"), ("empty.csv", "rejected"),
        ("header_only.csv", "rejected"), ("semicolon.csv", "rejected"), ("no_ts.csv", "rejected"),
        ("epoch_s.csv", "rejected"), ("naive_ts.csv", "rejected"), ("sparse.csv", "limit"), ("fifo.csv", "FIFO"),
    ]:
        cases.append((f"ingest-{name}", lambda f, _d, n=name: ["ingest", "file", str(f[n]), *ING], word))
    cases += [
        ("ingest-dev-zero", lambda _f, _d: ["ingest", "file", "/dev/zero", *ING], "character device"),
        ("ingest-directory", lambda _f, d: ["ingest", "file", str(d), *ING], "directory"),
        ("ingest-missing", lambda _f, d: ["ingest", "file", str(d / "nope.csv"), *ING], "no such file"),
        ("regimes-at-feb30", lambda _f, _d: ["regimes", "--symbol", "^GSPC", "--at", "2008-02-30"], "2008-02-30"),
        ("regimes-at-year1", lambda _f, _d: ["regimes", "--symbol", "^GSPC", "--at", "0001-01-01"], "regime"),
        ("regimes-top-huge", lambda _f, _d: ["regimes", "--symbol", "^GSPC", "--top", "1" + "0" * 30], "regime"),
        # a CSV header naming a column twice: the reader kept one copy silently
        ("ingest-dup_header.csv", lambda f, _d: ["ingest", "file", str(f["dup_header.csv"]), *ING], "twice"),
        # a rule file's name of 10,000 characters ran and filled the table
        ("strategy-file-long-name", lambda f, _d: [*BT, "--strategy-file", str(f["rule_long_name.yaml"]), *DATES],
         "1-64"),
        # a strategy file that is a directory, a device or a FIFO: said "no such file"
        ("strategy-file-directory", lambda _f, d: [*BT, "--strategy-file", str(d), *DATES], "directory"),
        ("strategy-file-dev-zero", lambda _f, _d: [*BT, "--strategy-file", "/dev/zero", *DATES], "character device"),
        ("strategy-file-fifo", lambda f, _d: [*BT, "--strategy-file", str(f["fifo.yaml"]), *DATES], "FIFO"),
        # cash so small every trade rounds to nothing (subnormal floats)
        ("backtest-cash-subnormal", lambda _f, _d: [*MA, *DATES, "--cash", "1e-320"], "--cash"),
        ("backtest-cash-cent", lambda _f, _d: [*MA, *DATES, "--cash", "0.01"], "--cash"),
        # stress windows: tracebacks (year 1, an unknown timeframe) or an unknown strategy run as "no data"
        ("stress-start-year1", lambda _f, _d: ["stress", "--start", "0001-01-01", "--end", "2018-12-31", "--symbol",
                                               "^GSPC", "--venue", "yahoo", "--no-save", "--no-figures"], "--start"),
        ("stress-end-year9999", lambda _f, _d: ["stress", "--start", "2018-01-01", "--end", "9999-12-31", "--symbol",
                                                "^GSPC", "--venue", "yahoo", "--no-save", "--no-figures"], "--end"),
        ("stress-timeframe", lambda _f, _d: ["stress", "--start", "2018-01-01", "--end", "2018-12-31", "--symbol",
                                             "^GSPC", "--venue", "yahoo", "--timeframe", "9q", "--no-save"],
         "timeframe"),
        ("stress-strategy", lambda _f, _d: ["stress", "--strategy", "nope", "--no-save", "--no-figures"],
         "unknown strategy"),
        # paper start: a bad session name printed pydantic's four-line error
        ("paper-start-name-path", lambda _f, _d: [*PAPER, "--name", "../../x"], "--name"),
        ("paper-start-name-long", lambda _f, _d: [*PAPER, "--name", "x" * 5000], "--name"),
        # report --out: a directory or device (the atomic rename would replace /dev/null itself), control chars
        ("report-out-directory", lambda _f, d: ["report", "0" * 32, "--out", str(d)], "directory"),
        ("report-out-dev-null", lambda _f, _d: ["report", "0" * 32, "--out", "/dev/null"], "character device"),
        ("report-out-control-char", lambda _f, d: ["report", "0" * 32, "--out", str(d / "a\x01.html")], "control"),
        # an argument of thousands of characters was echoed whole into the one line
        ("backtest-long-strategy", lambda _f, _d: [*BT, "--strategy", "s" * 5000, *DATES], "5000 characters"),
        ("backtest-long-param-key", lambda _f, _d: [*MA, *DATES, "--param", "k" * 5000 + "=1"], "5000 characters"),
        ("stress-long-crisis", lambda _f, _d: ["stress", "--crisis", "c" * 5000, "--no-save"], "5000 characters"),
        ("report-long-id", lambda _f, d: ["report", "r" * 5000, "--out", str(d / "r.html")], "5000 characters"),
    ]
    return cases


CASES = _cases()


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory, sp500: pl.DataFrame) -> tuple[dict[str, Path], Path, Path]:
    root = tmp_path_factory.mktemp("hostile")
    files = root / "files"
    files.mkdir()
    wh_path = root / "warehouse.duckdb"
    build_warehouse(wh_path, sp500)
    return _files(files), files, wh_path


def _with_deadline(fn: Callable[[], int], limit_s: float) -> int:
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["rc"] = fn()
        except SystemExit as e:  # argparse
            box["rc"] = e.code
        except BaseException as e:  # noqa: BLE001 - reported as the failure
            box["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(limit_s)
    if t.is_alive():
        pytest.fail(f"no answer within {limit_s} s (a hang)")
    if "error" in box:
        raise AssertionError(f"escaped as {type(box['error']).__name__}: {box['error']}")
    return int(box["rc"])  # type: ignore[call-overload]


def test_hostile_corpus_when_built_then_at_least_sixty_inputs_of_every_class() -> None:
    prefixes = ("config-", "global-config-", "strategy-file-", "risk-config-", "backtest-", "ingest-", "regimes-",
                "stress-", "paper-", "report-")
    assert len(CASES) >= 60
    assert len({c[0] for c in CASES}) == len(CASES)
    for p in prefixes:
        assert any(c[0].startswith(p) for c in CASES), p


@pytest.mark.parametrize(("case", "argv_of", "word"), CASES, ids=[c[0] for c in CASES])
def test_cli_when_hostile_input_then_exit_2_one_message_no_traceback_bars_unchanged(
        case: str, argv_of: Callable[[dict[str, Path], Path], list[str]], word: str,
        hostile: tuple[dict[str, Path], Path, Path], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    files, d, wh_path = hostile
    monkeypatch.setenv("TRADING_WAREHOUSE", str(wh_path))
    monkeypatch.setenv("TRADING_MAX_BAR_FILE_MB", "1")  # the 3 MiB sparse file is over it
    before = Warehouse(wh_path).digest()
    rc = _with_deadline(lambda: main(argv_of(files, d)), limit_s=30)
    _out, err = capsys.readouterr()
    assert rc == 2, err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines, "nothing said on stderr"
    if " problem(s):" in lines[0]:  # a config error: a header, then one line per problem
        n = int(lines[0].split(" has ")[1].split(" ")[0])
        assert len(lines) == 1 + n, err
    elif lines[-1].startswith("trading") and ": error: " in lines[-1]:  # argparse: usage, then one error line
        lines = lines[-1:]
    else:
        assert len(lines) == 1, err
    assert word.lower() in err.lower(), err
    assert all(len(ln) <= 600 for ln in lines), err
    assert Warehouse(wh_path).digest() == before


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00Z", "1899-12-31T23:00:00Z"])
def test_ingest_file_when_bar_before_1900_then_quarantined_and_not_stored(
        stamp: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        sp500: pl.DataFrame) -> None:
    # Arrange: a bar in year 1 was stored, outside every range a backtest can ask for
    wh_path = tmp_path / "warehouse.duckdb"
    build_warehouse(wh_path, sp500)
    monkeypatch.setenv("TRADING_WAREHOUSE", str(wh_path))
    f = tmp_path / "ancient.csv"
    f.write_text(CSV_HEAD + f"{stamp},1,1,1,1,1\n2019-01-01T00:00:00Z,1,1,1,1,1\n")
    before = Warehouse(wh_path).query("select count(*) as n from market.bars where ts < '1900-01-01'")["n"][0]

    # Act
    rc = main(["ingest", "file", str(f), *ING])

    # Assert
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "ts.unparseable=1" in out and "quarantined 1" in out, out
    after = Warehouse(wh_path).query("select count(*) as n from market.bars where ts < '1900-01-01'")["n"][0]
    assert before == after == 0
