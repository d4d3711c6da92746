"""Where the benchmarks find OV-AVEBench's annotation files when none are given: the config's
default location, else ``$OVAVEL_SHARED/ovavebench``, else ``../shared/ovavebench`` beside
the checkout (where the tests find them too)."""

from __future__ import annotations

import os
from pathlib import Path

from common.errors import UserError
from common.schema import DataConfig

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
