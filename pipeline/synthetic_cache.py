"""A feature cache written straight from class directions, without media or encoder: training
and evaluation tested, and timed at the real size, with no weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from data import audio_draws
from data.annotations import NUM_SEGMENTS
from data.feature_cache import MODALITIES, FeatureCache, atomic_write_json
from models.families import family
from pipeline.extraction import wanted_provenance


def make_synthetic_cache(config, index, separation: float = 0.5, seed: int = 0, splits=("train", "val", "test")):
    """Write a feature cache (the documented layout) for ``index`` without media or encoder:
    each class, ``other`` included, has a random unit direction; a segment's audio and frame
    embeddings are unit-scale noise plus ``separation`` times its class's direction, and the
    class-name embeddings are the directions. Used to test training and to time it at the
    real size."""
    rng = np.random.default_rng(seed)
    widths = family(config.encoder.family).widths(config)
    vocabulary = index.all_vocabulary
    directions = {}
    for modality in MODALITIES:  # each modality's own embedding space
        unit = rng.standard_normal((len(vocabulary), widths[modality])).astype(np.float32)
        directions[modality] = unit / np.linalg.norm(unit, axis=1, keepdims=True)
    cache = FeatureCache(config.cache.dir)
    cache.root.mkdir(parents=True, exist_ok=True)
    atomic_write_json(cache.provenance_path, wanted_provenance(config))
    for modality in MODALITIES:
        cache.write_text(list(vocabulary.names), directions[modality], config.encoder.template(modality), modality,
                         config.cache.dtype)
    for split in splits:
        videos = index.videos(split, vocabulary=vocabulary)
        folder = cache.split_dir(split)
        folder.mkdir(parents=True, exist_ok=True)
        classes = videos.segment_classes
        for modality in MODALITIES:
            dim = widths[modality]
            array = np.lib.format.open_memmap(folder / f"{modality}.npy", mode="w+", dtype=config.cache.dtype,
                                              shape=(len(videos), NUM_SEGMENTS, dim))
            for start in range(0, len(videos), 4096):
                block = classes[start:start + 4096]
                noise = rng.standard_normal((len(block), NUM_SEGMENTS, dim), dtype=np.float32) / np.sqrt(dim)
                array[start:start + len(block)] = noise + separation * directions[modality][block]
            array.flush()
        (folder / "videos.csv").write_text("vid_name\n" + "\n".join(videos.vid_names) + "\n")
        if split == "train" and config.train.audio_draws:
            _write_draws(cache, folder, config, rng)
    return cache


def _write_draws(cache, split_folder: Path, config, rng: np.random.Generator) -> None:
    """Audio draws (data/audio_draws.py) as the eval-mode audio plus a little noise per draw."""
    folder = cache.root / audio_draws.folder_name("train")
    folder.mkdir(parents=True, exist_ok=True)
    audio = np.load(split_folder / "audio.npy", mmap_mode="r")
    for k in range(config.train.audio_draws):
        array = np.lib.format.open_memmap(folder / f"{audio_draws.draw_name(k)}.npy", mode="w+",
                                          dtype=config.cache.dtype, shape=audio.shape)
        for start in range(0, len(audio), 4096):
            block = np.asarray(audio[start:start + 4096], dtype=np.float32)
            array[start:start + len(block)] = block + 0.2 * rng.standard_normal(block.shape, dtype=np.float32) / \
                np.sqrt(block.shape[-1])
        array.flush()
    (folder / "videos.csv").write_text((split_folder / "videos.csv").read_text())
    (folder / "provenance.json").write_text(json.dumps(audio_draws.wanted_provenance(config.train.audio_drop_path)))
