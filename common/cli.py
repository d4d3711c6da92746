"""What every entry point shares: ``--config`` plus ``key=value`` overrides, and plain errors."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from common import config as config_io
from common.errors import UserError
from common.schema import Config

OVERRIDE = re.compile(r"[A-Za-z_][\w.]*=.*", re.DOTALL)


def description(doc: str) -> str:
    """The first paragraph of a module docstring, as one line (``--help`` shows it whole)."""
    return " ".join(doc.strip().split("\n\n")[0].split())


def parser_with_config(doc: str, default_config: str, list_overrides: bool = True) -> argparse.ArgumentParser:
    """A parser whose description is the docstring's first paragraph and whose epilog is the rest
    (usage examples). ``list_overrides``: show ``key=value`` as a positional argument (off for a
    tool with positional arguments of its own; :func:`parse` finds the overrides either way)."""
    rest = doc.strip().split("\n\n", 1)[1:]
    parser = argparse.ArgumentParser(description=description(doc), epilog=rest[0] if rest else None,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=default_config,
                        help=f"experiment YAML (default {default_config}); key=value arguments anywhere override "
                             "its keys, e.g. encoder.precision=bf16")
    if list_overrides:
        parser.add_argument("overrides", nargs="*", metavar="key=value",
                            help="override config keys, e.g. encoder.precision=bf16 cache.dir=cache/other; "
                                 "anywhere on the command line")
    return parser


def parse(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """Parse options with ``key=value`` overrides allowed anywhere, even right after an option
    that takes several values (``--splits test encoder.size=tiny``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    overrides = [arg for arg in argv if OVERRIDE.fullmatch(arg)]
    args = parser.parse_args([arg for arg in argv if not OVERRIDE.fullmatch(arg)])
    args.overrides = overrides
    return args


TOOLKIT = Path(__file__).resolve().parents[1]


def config_path(path) -> Path:
    """A config file as given, or, when no such file is here, the toolkit's own of that name
    (``configs/localize.yaml`` works from any directory)."""
    path = Path(path)
    if not path.exists() and not path.is_absolute() and (TOOLKIT / path).is_file():
        return TOOLKIT / path
    return path


def load_config(args: argparse.Namespace, extra_overrides=()) -> Config:
    return config_io.load(Config, config_path(args.config), list(args.overrides) + list(extra_overrides))


def run(main) -> None:
    """Run ``main()``; a user's mistake prints one message instead of a traceback, and so does
    Ctrl-C (exit status 130; what was finished is kept, and every entry point resumes when run again)."""
    try:
        main()
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("\ninterrupted: what was finished is kept; run the same command again to continue", file=sys.stderr)
        sys.exit(130)
