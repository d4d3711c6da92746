"""What every entry point shares: ``--config`` plus ``key=value`` overrides, and plain errors."""

from __future__ import annotations

import argparse
import sys

from common import config as config_io
from common.errors import UserError
from common.schema import Config


def parser_with_config(description: str, default_config: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", default=default_config, help=f"experiment YAML (default {default_config})")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="override config keys, e.g. encoder.precision=bf16 cache.dir=cache/other")
    return parser


def load_config(args: argparse.Namespace, extra_overrides=()) -> Config:
    return config_io.load(Config, args.config, list(args.overrides) + list(extra_overrides))


def run(main) -> None:
    """Run ``main()``; a user's mistake prints one message instead of a traceback."""
    try:
        main()
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
