"""Shared fixtures. ``../shared`` (real annotations, golden outputs) is optional for a user's
clone: tests needing it skip with the reason, unless OVAVEL_REQUIRE_SHARED=1 (CI) makes that
a failure."""

import json
import os
from pathlib import Path

import pytest
from hypothesis import settings

REPO = Path(__file__).resolve().parents[1]

# Property tests draw the same examples on every run (a red CI is a bug, never the luck of a
# draw); HYPOTHESIS_PROFILE=explore draws new ones each run, to look for bugs.
settings.register_profile("default", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def _shared_dir() -> Path:
    return Path(os.environ.get("OVAVEL_SHARED", REPO.parent / "shared"))


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` need CUDA: skipped, with the reason, where there is none."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (none visible); run `make gpu-check` on a GPU machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


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


@pytest.fixture(scope="session")
def synthetic_bench(tmp_path_factory):
    """A small synthetic OV-AVEBench (media + annotations) shared by the tests that read it."""
    from data.synthetic import SyntheticSpec, make_synthetic_benchmark

    spec = SyntheticSpec(seen_classes=("dog barking", "playing piano", "church bell ringing"),
                         unseen_classes=("cat purring",), train_per_class=2, val_per_class=1, test_per_class=1)
    return make_synthetic_benchmark(tmp_path_factory.mktemp("synthetic_bench"), spec)


def synthetic_overrides(bench, cache_dir, *extra) -> list[str]:
    """Config overrides for the synthetic benchmark, the tiny random encoder and the CPU."""
    return [f"data.meta_csv={bench['meta_csv']}", f"data.label_json={bench['label_json']}",
            f"data.media_root={bench['media_root']}", "encoder.size=tiny", "encoder.checkpoint=random",
            f"cache.dir={cache_dir}", "extract.num_workers=0", "extract.batch_size=2", "extract.chunk_size=4",
            "device=cpu", *extra]


def synthetic_config(bench, cache_dir, *extra):
    from common import config
    from common.schema import Config

    return config.load(Config, REPO / "configs" / "_base_" / "default.yaml", synthetic_overrides(bench, cache_dir, *extra))


def separable_cache(root: Path, spec, config_file: str, separation: float, *extra: str) -> tuple[list[str], dict]:
    """Annotations without media and a synthetic cache of the small encoder's 24-d features in
    which classes are separable: data a training learns from in seconds. Gives the config
    overrides (``extra`` last) and the annotation paths."""
    from common import config
    from common.schema import Config
    from data.annotations import AnnotationIndex
    from data.synthetic import make_synthetic_benchmark
    from pipeline.synthetic_cache import make_synthetic_cache

    paths = make_synthetic_benchmark(root, spec, write_media=False)
    overrides = [f"data.meta_csv={paths['meta_csv']}", f"data.label_json={paths['label_json']}",
                 f"data.media_root={root}", f"cache.dir={root / 'cache'}", "encoder.size=small",
                 "encoder.checkpoint=random", *extra]
    loaded = config.load(Config, REPO / "configs" / config_file, overrides)
    make_synthetic_cache(loaded, AnnotationIndex.load(paths["meta_csv"], paths["label_json"]), separation=separation)
    return overrides, paths


def interrupt_at_save(monkeypatch, module, file_name: str, nth: int) -> None:
    """``module.save_checkpoint`` raises KeyboardInterrupt at its ``nth`` save of ``file_name``
    (a run killed there: the epoch's history row written, its checkpoint not)."""
    original, saves = module.save_checkpoint, {"count": 0}

    def interrupted(path, payload):
        if Path(path).name == file_name:
            saves["count"] += 1
            if saves["count"] == nth:
                raise KeyboardInterrupt
        return original(path, payload)

    monkeypatch.setattr(module, "save_checkpoint", interrupted)


@pytest.fixture
def stand_in(monkeypatch, tmp_path):
    """The localize config with the stand-in family of tests/stand_in.py (known embeddings)."""
    from stand_in import stand_in_config

    return stand_in_config(monkeypatch, tmp_path)
