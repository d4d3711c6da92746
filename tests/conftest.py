"""Shared fixtures. ``../shared`` (real annotations, golden outputs) is optional for a user's
clone: tests needing it skip with the reason, unless OVAVEL_REQUIRE_SHARED=1 (CI) makes that
a failure."""

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _shared_dir() -> Path:
    return Path(os.environ.get("OVAVEL_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def shared() -> Path:
    path = _shared_dir()
    if not (path / "golden").is_dir() or not (path / "ovavebench").is_dir():
        message = f"shared data not found at {path} (set OVAVEL_SHARED to the folder holding golden/ and ovavebench/)"
        if os.environ.get("OVAVEL_REQUIRE_SHARED") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def golden_decoding(shared) -> dict:
    return json.loads((shared / "golden" / "reference_decoding_metrics.json").read_text())


@pytest.fixture(scope="session")
def real_index(shared):
    from data.annotations import AnnotationIndex

    bench = shared / "ovavebench"
    return AnnotationIndex.load(bench / "ovave_dataset_meta.csv", bench / "released_ovavel_dataset_anno.json")
