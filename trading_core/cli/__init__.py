"""The ``trading`` command. Each capability registers its subcommands from its own module.

Expected failures (``TradingError``) print one line to stderr and exit 2; ``--json`` output goes
to stdout only, so it can be piped.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from ..errors import ConfigError, TradingError

# Modules that define ``register(subparsers)``; a missing one is skipped so the CLI never breaks
# because an optional capability is absent.
_COMMAND_MODULES = ("config_cmd", "ingest", "backtest", "up", "regimes", "features", "paper", "models", "stress",
                    "report", "health")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trading", description="Market-data and paper-trading platform")
    parser.add_argument("--config", help="config file (default: $TRADING_CONFIG or config/trading.yaml)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"{__name__}.{name}":
                continue
            raise
        module.register(sub)
    _accept_config_everywhere(sub)
    return parser


def _accept_config_everywhere(sub: argparse._SubParsersAction) -> None:
    """Let ``--config`` also follow any subcommand (``trading ingest live --config x.yaml``)."""
    for child in sub.choices.values():
        if not any("--config" in a.option_strings for a in child._actions):
            child.add_argument("--config", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        for action in child._actions:
            if isinstance(action, argparse._SubParsersAction):
                _accept_config_everywhere(action)


MAX_ECHO = 80  # an argument longer than this is shown shortened in an error message
MAX_LINE = 600  # and no message line is longer than this


def shorten(msg: str, argv: Sequence[str] = ()) -> str:
    """``msg`` with every over-long command-line argument it quotes cut to its start and length
    (``--strategy 'sss...' (5000 characters)``), and the line itself cut to ``MAX_LINE``: an error
    says what was wrong in one readable line, whatever was typed."""
    parts = {str(x) for x in argv} | {p for x in argv for p in str(x).replace("=", ",").split(",")}  # K=V, a,b
    for a in sorted((p for p in parts if len(p) > MAX_ECHO), key=len, reverse=True):
        msg = msg.replace(a, f"{a[:40]}... ({len(a)} characters)")
    if len(msg) > MAX_LINE:
        msg = f"{msg[:MAX_LINE - 120]} ... {msg[-110:]}"
    return msg


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    given = list(sys.argv[1:] if argv is None else argv)
    if os.environ.get("TRADING_LOG_FORMAT"):  # opt-in: structured (json) or text logs on stderr
        from ..logging_setup import configure_logging

        configure_logging()
    try:
        return int(args.handler(args) or 0)
    except ConfigError as e:
        print(f"trading: config {shorten(e.source, given)} has {len(e.problems)} problem(s):", file=sys.stderr)
        for p in e.problems:
            print(f"  {shorten(p, given)}", file=sys.stderr)
        return 2
    except TradingError as e:
        print(f"trading: {shorten(str(e), given)}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
