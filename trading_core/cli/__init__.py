"""The ``trading`` command. Each capability registers its subcommands from its own module.

Expected failures (``TradingError``) print one line to stderr and exit 2; ``--json`` output goes
to stdout only, so it can be piped.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from ..errors import ConfigError, TradingError

# Modules that define ``register(subparsers)``; a missing one is skipped so the CLI never breaks
# because an optional capability is absent.
_COMMAND_MODULES = ("config_cmd", "ingest", "backtest", "up")


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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
