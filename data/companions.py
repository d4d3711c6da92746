"""The companion streams of 4-stream complex-valued fusion, kept beside a split in the feature
cache: each segment's frame as its iHSV image, and its audio's instantaneous frequency translated
by the phase generator (train_phase_gan.py) into the audio encoder's input, both through the
same frozen encoders as the split's own arrays.

Layout, beside the split's folder::

    <cache.dir>/<split>_companions/
      provenance.json     the iHSV mapping, the phase input's settings, the generator file's identity
      videos.csv          the rows' videos (the split's, in its order)
      excluded.csv        videos left out (as the split's)
      ihsv.npy            [N, 10, D_vision] the iHSV images' embeddings
      phase.npy           [N, 10, D_audio] the translated phase's embeddings

A folder made with another mapping or generator is an error naming it, never mixed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from data.feature_cache import CacheError, FeatureCache, open_array, read_vid_names, refresh_hint
from data.preprocess import MediaError, frame_paths

FORMAT = 1
STREAMS = ("ihsv", "phase")
SUFFIX = "_companions"


def folder_name(split: str) -> str:
    return f"{split}{SUFFIX}"


def wanted_provenance(negative: str, phase_settings: dict, generator: dict) -> dict:
    return {"format": FORMAT, "ihsv": {"triplet": "(V, S sin H, S) read as HSV", "negative": negative},
            "phase": {**phase_settings, "generator": generator}}


def provenance_of(cache: FeatureCache, split: str) -> dict | None:
    path = cache.root / folder_name(split) / "provenance.json"
    return json.loads(path.read_text()) if path.is_file() else None


def check(cache: FeatureCache, split: str, wanted: dict) -> bool:
    """Whether the split's companions are there; made otherwise is an error naming the folder."""
    made = provenance_of(cache, split)
    if made is None:
        return False
    if made != wanted:
        changed = [key for key in sorted(set(made) | set(wanted)) if made.get(key) != wanted.get(key)]
        raise CacheError(f"{cache.root / folder_name(split)} holds companion streams made with another "
                         f"{' and '.join(changed)} (another iHSV mapping or phase generator); delete the folder to "
                         "extract them again with this config's")
    return all((cache.root / folder_name(split) / f"{name}.npy").is_file() for name in STREAMS)


class Companions:
    """A split's companion streams, memory-mapped."""

    def __init__(self, cache: FeatureCache, split: str, wanted: dict):
        if not check(cache, split, wanted):
            raise CacheError(f"the feature cache at {cache.root} lacks the companion streams of the {split} split; "
                             "extract them with `python tools/extract_features.py --config <a 4-stream config> "
                             f"--splits {split}`")
        self.folder = cache.root / folder_name(split)
        self.split = split
        self.vid_names = read_vid_names(self.folder / "videos.csv")
        self.arrays = {name: open_array(self.folder / f"{name}.npy", split) for name in STREAMS}
        if any(len(array) != len(self.vid_names) for array in self.arrays.values()):
            raise CacheError(f"{self.folder}: videos.csv and the arrays disagree; {refresh_hint(split)}")

    def rows(self, vid_names) -> np.ndarray:
        lookup = {name: i for i, name in enumerate(self.vid_names.tolist())}
        missing = [str(name) for name in vid_names if name not in lookup]
        if missing:
            raise CacheError(f"{self.folder} lacks {len(missing)} of the videos asked for (e.g. {missing[0]!r}); "
                             "delete the folder to extract the companions again")
        return np.array([lookup[name] for name in vid_names], dtype=np.int64)

    def gather(self, rows) -> dict[str, np.ndarray]:
        """Both streams of the given rows as float32 ``[n, 10, D]``, checked finite."""
        out = {}
        for name, array in self.arrays.items():
            block = np.asarray(array[rows], dtype=np.float32)
            if not np.isfinite(block).all():
                raise CacheError(f"{self.folder / name}.npy holds NaN or infinite values; delete the folder to "
                                 "extract the companions again")
            out[name] = block
        return out


def read_pictures(folder) -> list[Image.Image]:
    """A prepared video's frames as RGB pictures, in order."""
    pictures = []
    for path in frame_paths(folder):
        try:
            with Image.open(path) as image:
                pictures.append(image.convert("RGB"))
        except (UnidentifiedImageError, OSError, ValueError) as err:
            raise MediaError(f"cannot read image {path}: {err}") from None
    return pictures


def companion_folder(cache: FeatureCache, split: str) -> Path:
    return cache.root / folder_name(split)
