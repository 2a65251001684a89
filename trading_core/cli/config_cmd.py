"""``trading config validate``: check the configuration and print every problem with its place."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config", help="configuration commands")
    csub = p.add_subparsers(dest="config_command", required=True, metavar="SUBCOMMAND")
    v = csub.add_parser("validate", help="validate the config file and list every problem")
    v.add_argument("path", nargs="?", help="file to validate (default: the active config)")
    v.add_argument("--json", action="store_true", help="print the resolved config as JSON")
    v.set_defaults(handler=_validate)


def _validate(args: argparse.Namespace) -> int:
    import sys

    from ..config import PROJECT_ROOT, config_path, load_config  # pydantic/YAML: only when run

    path = args.path or args.config or config_path()
    cfg = load_config(path)
    if args.json:
        print(json.dumps(cfg.model_dump(mode="json"), indent=2))
    else:
        print(f"{path}: OK ({len(cfg.market_data.universes)} universes, mode={cfg.market_data.mode})")
        print(f"  relative paths are relative to the project root {PROJECT_ROOT}")
        print(f"  warehouse: {cfg.warehouse.path}{'' if cfg.warehouse.path.exists() else ' (not created yet)'}")
        print(f"  data_dir:  {cfg.data_dir}")
    warning = cfg.services.exposure_warning()
    if warning:
        print(f"trading: {warning}", file=sys.stderr)
    return 0
