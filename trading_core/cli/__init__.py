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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if os.environ.get("TRADING_LOG_FORMAT"):  # opt-in: structured (json) or text logs on stderr
        from ..logging_setup import configure_logging

        configure_logging()
    try:
        return int(args.handler(args) or 0)
    except ConfigError as e:
        print(f"trading: config {e.source} has {len(e.problems)} problem(s):", file=sys.stderr)
        for p in e.problems:
            print(f"  {p}", file=sys.stderr)
        return 2
    except TradingError as e:
        print(f"trading: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
