"""Every ``trading ...`` command in README.md's code blocks works as written on a fresh clone.

The commands are extracted from the README itself (so an edited example is tested as edited):
backslash continuations joined, ``# comments`` dropped, ``[--flag]`` optional parts tried both
without and with the flag. The fast tests parse every command with the real parser and check the
README writes them copy-pasteably (``.venv/bin/trading``). The slow test runs each in-process
through ``trading_core.cli.main`` against a temporary data directory loaded once with
``trading ingest sample``, asserting exit 0 -- except ``ingest live`` (network) and ``up``
(starts Dagster), which are parsed only.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from trading_core.backtest.runner import parse_universe
from trading_core.cli import build_parser, main
from trading_core.config import PROJECT_ROOT, load_config
from trading_core.market_data.providers.sample import DATASETS

README = PROJECT_ROOT / "README.md"
PREFIX = ".venv/bin/trading"
NOT_RUN = {("ingest", "live"): "fetches from the network", ("up",): "starts the Dagster services",
           ("health",): "probes the running services (exit 1 when they are down)"}


def _code_lines(text: str) -> Iterator[str]:
    """Logical lines of the fenced code blocks (continuations joined)."""
    for block in re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.S | re.M):
        logical = ""
        for raw in block.splitlines():
            line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
            if line.endswith("\\"):
                logical += line[:-1] + " "
                continue
            logical += line
            if logical.strip():
                yield " ".join(logical.split())
            logical = ""


def readme_commands(text: str | None = None) -> list[str]:
    """Each ``trading`` command line of the README, as written (optional ``[...]`` parts kept)."""
    text = README.read_text() if text is None else text
    out = []
    for line in _code_lines(text):
        words = line.split(maxsplit=1)
        if words and words[0] in (PREFIX, "trading"):
            out.append(line)
    return out


def variants(command: str) -> list[list[str]]:
    """argv without the program: minimal (optional parts dropped) and full (all of them kept)."""
    body = command.split(maxsplit=1)[1]
    minimal = shlex.split(re.sub(r"\[[^\]]*\]", " ", body))
    full = shlex.split(re.sub(r"\[([^\]]*)\]", r" \1 ", body))
    return [minimal] if minimal == full else [minimal, full]


COMMANDS = readme_commands()


def _id(c: str) -> str:
    return " ".join(c.split()[1:4])


def test_readme_has_the_commands_it_promises() -> None:
    heads = {tuple(variants(c)[0][:2]) for c in COMMANDS}
    assert {("ingest", "sample"), ("ingest", "file"), ("backtest", "--strategy"), ("config", "validate"),
            ("regimes", "--symbol"), ("paper", "start"), ("paper", "status")} <= heads
    assert any("--allocation markowitz" in c for c in COMMANDS)


def test_readme_commands_are_copy_pasteable_after_make_run() -> None:
    """No bare ``trading``: it is not on PATH after ``make run``."""
    bare = [c for c in COMMANDS if not c.startswith(PREFIX + " ")]
    assert bare == [], f"write these as {PREFIX} ...: {bare}"


def test_extractor_joins_continuations_and_drops_comments() -> None:
    text = "```sh\ntrading a --x 1 \\\n    --y 2   # note\n# only a comment\n.venv/bin/trading b [--json]\n```\n"
    cmds = readme_commands(text)
    assert cmds == ["trading a --x 1 --y 2", ".venv/bin/trading b [--json]"]
    assert variants(cmds[1]) == [["b"], ["b", "--json"]]


@pytest.mark.parametrize("command", COMMANDS, ids=_id)
def test_readme_command_parses(command: str) -> None:
    parser = build_parser()
    for argv in variants(command):
        args = parser.parse_args(argv)  # SystemExit(2) here is a README example the CLI refuses
        assert callable(args.handler)


def test_readme_symbols_are_in_the_default_universes_and_the_sample() -> None:
    """What the examples trade is what ``trading ingest sample`` loads with the default config."""
    cfg = load_config(PROJECT_ROOT / "config" / "trading.yaml")
    configured = {(u.venue, s, u.timeframe) for u in cfg.market_data.universes for s in u.symbols}
    for command in COMMANDS:
        argv = variants(command)[0]
        if argv[0] != "backtest":
            continue
        args = build_parser().parse_args(argv)
        syms, venues, tf = parse_universe(args.symbol, args.venue, args.timeframe)  # venue:SYMBOL tokens too
        for sym, venue in zip(syms, venues, strict=True):
            assert (venue, sym) in DATASETS, f"{sym} on {venue} is not in the sample data"
            assert (venue, sym, tf) in configured, \
                f"{sym} ({venue}, {tf}) is not in config/trading.yaml's universes"


# ---- running them ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def loaded_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with the sample loaded once (and ^GSPC's regime labels computed, so the
    ``regimes`` example does not depend on running after ``features update``)."""
    if not any((PROJECT_ROOT / ".cache" / "sample-packages").glob("*.whl")):
        pytest.fail("sample packages missing in .cache/sample-packages: run `make install`")
    data = tmp_path_factory.mktemp("readme-data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRADING_DATA_DIR", str(data))
        mp.delenv("TRADING_WAREHOUSE", raising=False)
        mp.delenv("TRADING_CONFIG", raising=False)
        mp.chdir(PROJECT_ROOT)
        assert main(["ingest", "sample"]) == 0
        if "features" in build_parser()._subparsers._group_actions[0].choices:  # type: ignore[union-attr]
            assert main(["features", "update", "--symbol", "^GSPC"]) == 0
    return data


@pytest.fixture(scope="module")
def bars_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What ``bars.csv`` stands for in the README: real hourly bars in the documented format."""
    from trading_core.market_data.providers.sample import SampleProvider

    df = SampleProvider(PROJECT_ROOT / ".cache" / "sample-packages").fetch_ohlcv(
        "coinbase", "BTC/USD", "1h", *_span())
    p = tmp_path_factory.mktemp("readme-files") / "bars.csv"
    df.head(200).with_columns(pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%S%:z")).write_csv(p)
    return p


def _latest_session(data: Path) -> str:
    """What ``SESSION_ID`` stands for: the session the README's ``paper start`` examples created last."""
    from trading_core.paper.control import SessionStore

    ids = SessionStore(data / "paper").session_ids()
    assert ids, "a README example uses SESSION_ID before any paper start example"
    return ids[-1]


def _span():  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    return datetime(2018, 1, 1, tzinfo=UTC), datetime(2018, 2, 1, tzinfo=UTC)


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS, ids=_id)
def test_readme_command_runs_with_exit_0(
        command: str, loaded_data_dir: Path, bars_csv: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TRADING_DATA_DIR", str(loaded_data_dir))
    monkeypatch.chdir(PROJECT_ROOT)  # the README says: run from the project root
    for argv in variants(command):
        skip = next((why for head, why in NOT_RUN.items() if tuple(argv[:len(head)]) == head), None)
        if skip:
            assert callable(build_parser().parse_args(argv).handler)
            continue
        argv = [str(bars_csv) if a == "bars.csv" else _latest_session(loaded_data_dir) if a == "SESSION_ID" else a
                for a in argv]
        rc = main(argv)
        out, err = capsys.readouterr()
        assert rc == 0, f"{PREFIX} {shlex.join(argv)} -> exit {rc}: {err.strip()[-600:]}"
        assert "Traceback" not in err
