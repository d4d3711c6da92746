"""Where the benchmarks find OV-AVEBench's annotation files when none are given: the config's
default location, else ``$OVAVEL_SHARED/ovavebench``, else ``../shared/ovavebench`` beside
the checkout (where the tests find them too); and the config of a real-size benchmark whose
cache is synthetic."""

from __future__ import annotations

import os
from pathlib import Path

from common import config as config_io
from common.errors import UserError
from common.schema import Config, DataConfig

REPO = Path(__file__).resolve().parents[1]
META_NAME = "ovave_dataset_meta.csv"
LABEL_NAME = "released_ovavel_dataset_anno.json"


def candidates() -> list[tuple[Path, Path]]:
    defaults = DataConfig()
    shared = Path(os.environ.get("OVAVEL_SHARED", REPO.parent / "shared")) / "ovavebench"
    return [(Path(defaults.meta_csv), Path(defaults.label_json)), (shared / META_NAME, shared / LABEL_NAME)]


def find_annotations(meta_csv: str | None, label_json: str | None) -> tuple[Path, Path]:
    """The files given, or the first pair of :func:`candidates` that exists."""
    if meta_csv and label_json:
        return Path(meta_csv), Path(label_json)
    for meta, label in candidates():
        if meta.is_file() and label.is_file():
            return Path(meta_csv or meta), Path(label_json or label)
    looked = ", ".join(str(meta.parent) for meta, _ in candidates())
    raise UserError(f"OV-AVEBench annotation files not found (looked in {looked}); pass --meta-csv and "
                    "--label-json, or set OVAVEL_SHARED to the folder holding ovavebench/")


def add_arguments(parser) -> None:
    parser.add_argument("--meta-csv", help="default: found as tools/annotation_files.py says")
    parser.add_argument("--label-json")


def parse_arguments(parser, argv):
    """The parser's arguments with ``--meta-csv`` and ``--label-json`` added, found when not given."""
    add_arguments(parser)
    args = parser.parse_args(argv)
    args.meta_csv, args.label_json = find_annotations(args.meta_csv, args.label_json)
    return args


def synthetic_cache_config(config_file: str, meta_csv, label_json, work, *overrides: str) -> Config:
    """A toolkit config on the real annotations whose cache lives in ``work``, for
    ``make_synthetic_cache`` to fill: its encoder checkpoint is never read."""
    return config_io.load(Config, REPO / "configs" / config_file, [
        f"data.meta_csv={meta_csv}", f"data.label_json={label_json}", f"cache.dir={Path(work) / 'cache'}",
        f"encoder.checkpoint={Path(work) / 'no_checkpoint_needed.pth'}", *overrides])
