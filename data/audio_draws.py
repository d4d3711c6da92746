"""Stochastic audio draws: the train split's audio embeddings as the published fine-tuning saw
them. It runs the frozen ImageBind in train mode, so the audio trunk's stochastic depth makes
every epoch's audio features a fresh random draw; evaluation runs in eval mode. Extraction
writes ``train.audio_draws`` such draws next to the eval-mode arrays, and training epoch ``e``
reads draw ``(e - 1) mod N``.

Layout, beside the split's folder::

    <cache.dir>/train_audio_draws/
      provenance.json     drop-path rate, how masks are drawn and seeded
      videos.csv          the rows' videos (the split's, in its order)
      excluded.csv        videos left out (as the split's)
      draw_000.npy ...    [N, 10, D] audio embeddings of draw k

A draw depends only on its index and the video's name, never on batching or on the number of
torchrun processes: draw k of video v uses a generator seeded from sha256("k:v"); every
branch that stochastic depth may drop gets one U[0, 1) number per token, the branch is kept
where the number is below keep = 1 - rate (and scaled by 1 / keep), and the video's ten
segments share these masks (in the published training, the clips encoded together share
them). More draws can be added later; fewer use the first ones.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import torch

from data.feature_cache import DRAWS_SUFFIX, CacheError, FeatureCache, open_array, read_vid_names, refresh_hint
from data.preprocess import NUM_SEGMENTS

FORMAT = 1
SEEDING = ("draw k of video v: torch.Generator seeded with the first 8 bytes (little-endian, shifted right "
           "by one bit) of sha256('k:v'); one U[0,1) number per droppable branch (attention then MLP of "
           "each audio block with a rate above 0, in block order) and token; kept where below keep = 1 - rate, "
           "scaled by 1/keep; shared by the video's 10 segments")


def folder_name(split: str) -> str:
    return f"{split}{DRAWS_SUFFIX}"


def draw_name(k: int) -> str:
    return f"draw_{k:03d}"


def wanted_provenance(rate: float) -> dict:
    return {"format": FORMAT, "audio_drop_path": rate, "seeding": SEEDING}


def draw_seed(k: int, vid_name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{k}:{vid_name}".encode()).digest()[:8], "little") >> 1


def draw_masks(k: int, vid_name: str, keep: torch.Tensor, tokens: int) -> torch.Tensor:
    """``[10, branches, tokens]`` branch multipliers of draw ``k`` of one video."""
    uniform = torch.rand(len(keep), tokens, generator=torch.Generator().manual_seed(draw_seed(k, vid_name)))
    masks = (uniform < keep[:, None]).float() / keep[:, None]
    return masks.expand(NUM_SEGMENTS, -1, -1)


def missing_draws(cache: FeatureCache, split: str, count: int, rate: float) -> list[int]:
    """Indices of the first ``count`` draws not yet in the cache; a folder made with another
    rate or seeding is an error naming it."""
    folder = cache.root / folder_name(split)
    if (folder / "provenance.json").is_file():
        made = json.loads((folder / "provenance.json").read_text())
        if made != wanted_provenance(rate):
            raise CacheError(f"{folder} holds audio draws made with audio_drop_path {made.get('audio_drop_path')!r} "
                             f"(format {made.get('format')!r}); this run asks for {rate!r}. Set "
                             "train.audio_drop_path to match, or delete the folder to draw again")
    return [k for k in range(count) if not (folder / f"{draw_name(k)}.npy").is_file()]


class AudioDraws:
    """The first ``count`` draws of a split, memory-mapped."""

    def __init__(self, cache: FeatureCache, split: str, count: int, rate: float):
        if missing_draws(cache, split, count, rate):
            raise CacheError(f"the feature cache at {cache.root} lacks audio draws of the {split} split; "
                             f"{refresh_hint(split)}")
        self.folder = cache.root / folder_name(split)
        self.split = split
        self.count = count
        self.vid_names = read_vid_names(self.folder / "videos.csv")
        self.arrays = [open_array(self.folder / f"{draw_name(k)}.npy", split) for k in range(count)]
        if any(len(array) != len(self.vid_names) for array in self.arrays):
            raise CacheError(f"{self.folder}: videos.csv and the draw arrays disagree; {refresh_hint(split)}")

    def rows(self, vid_names) -> np.ndarray:
        """Row of each video in the draw arrays; every video must be there."""
        lookup = {name: i for i, name in enumerate(self.vid_names.tolist())}
        missing = [str(name) for name in vid_names if name not in lookup]
        if missing:
            raise CacheError(f"{self.folder} lacks {len(missing)} of the videos trained on (e.g. {missing[0]!r}); "
                             f"{refresh_hint(self.split)}")
        return np.array([lookup[name] for name in vid_names], dtype=np.int64)

    def gather(self, rows, k: int) -> np.ndarray:
        """Draw ``k`` of the given rows as float32 ``[n, 10, D]``, checked finite."""
        block = np.asarray(self.arrays[k][rows], dtype=np.float32)
        if not np.isfinite(block).all():
            raise CacheError(f"{self.folder / draw_name(k)}.npy holds NaN or infinite values; "
                             f"{refresh_hint(self.split)}")
        return block
