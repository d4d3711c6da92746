"""The feature cache: per-segment ImageBind embeddings of every video, written once, then
memory-mapped by every evaluation and training epoch.

Layout (plain ``.npy`` / ``.npz`` / CSV / JSON; readable with numpy alone)::

    <cache.dir>/
      provenance.json          what made the features: encoder family, sizes, widths, precision,
                               model file identities, per-modality preprocessing, dtype
                               (compared on every use)
      text/<modality>/<template id>.npz
                               template (str), names [K] (str), embeddings [K, D]: the class
                               names as scored against the audio or the frames, one file per
                               text template (id = sha1 of it, 12 hex)
      <split>/                 train, val, test: each appears complete, by one rename
        videos.csv             vid_name per row of the arrays below
        audio.npy              [N, 10, D_audio] audio embedding of each 1 s segment
        vision.npy             [N, 10, D_vision] frame embedding of each segment
        excluded.csv           vid_name,reason: videos left out (only with skip_bad_media)
      train_audio_draws/       stochastic audio draws of the train split (data/audio_draws.py)
      .work/<job>/chunk_*.npz  finished chunks of an extraction in progress
      .lock                    held by the one extraction job writing the cache (common/locking.py)

Rows are the ImageBind outputs as the official model returns them: vision unit-norm, audio
unit-norm x 20, text unit-norm x its logit scale; cosine similarity normalises them again.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common import files
from common.config import differences
from common.errors import UserError
from common.locking import lock_file
from common.schema import RANDOM_CHECKPOINT
from data.annotations import NUM_SEGMENTS

MODALITIES = ("audio", "vision")  # the segment arrays of a split, in this order
FORMAT_VERSION = 2  # 2: per-modality text and widths, model identities per file, per-modality preprocessing
PROVENANCE_FILE = "provenance.json"
TEXT_DIR = "text"
WORK_DIR = ".work"
DRAWS_SUFFIX = "_audio_draws"  # <split>_audio_draws/: the split's stochastic audio draws (data/audio_draws.py)
# Keys of provenance.json that must equal the run's; the rest is informational.
COMPARED_KEYS = ("format_version", "encoder", "models", "preprocessing", "dtype")


class CacheError(UserError):
    """The cache is missing, incomplete, unwritable or was made differently."""


def refresh_hint(split: str) -> str:
    return (f"re-extract it with `python tools/extract_features.py --config <your config> --splits {split} "
            "--refresh`")


# --- writing, safely ---------------------------------------------------------------------

CACHE_MESSAGES = {"what": "the feature cache", "error": CacheError,
                  "way_out": "choose another cache.dir; a re-run resumes where this one stopped"}


def writing(path: Path):
    """OS errors while writing the cache become one :class:`CacheError` with the way out."""
    return files.writing(path, **CACHE_MESSAGES)


def atomic_write(path: Path, write) -> None:
    files.atomic_write(path, write, **CACHE_MESSAGES)


def atomic_write_json(path: Path, data) -> None:
    files.atomic_write_json(path, data, **CACHE_MESSAGES)


# --- provenance --------------------------------------------------------------------------

def file_sha256(path: Path, block: int = 1 << 24) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def checkpoint_identity(checkpoint: str, remembered: dict | None = None) -> dict:
    """``{"size_bytes", "sha256"}`` of a checkpoint file (``{"random_init": true}`` for random
    weights). The hash takes ~15 s for ImageBind-Huge, so a hash remembered in a cache's
    provenance is reused while the file's size and modification time are unchanged."""
    if checkpoint == RANDOM_CHECKPOINT:
        return {"random_init": True}
    stat = Path(checkpoint).stat()
    if remembered and remembered.get("size_bytes") == stat.st_size and remembered.get("mtime_ns") == stat.st_mtime_ns:
        sha = remembered["sha256"]
    else:
        sha = file_sha256(Path(checkpoint))
    return {"size_bytes": stat.st_size, "sha256": sha, "mtime_ns": stat.st_mtime_ns,
            "file_name": Path(checkpoint).name}


def _comparable(provenance: dict) -> dict:
    picked = {key: provenance.get(key) for key in COMPARED_KEYS}
    picked["models"] = {name: None if file is None else {k: v for k, v in file.items()
                                                         if k not in ("mtime_ns", "file_name")}
                        for name, file in (picked["models"] or {}).items()}
    return picked


def provenance_differences(cached: dict, wanted: dict) -> list[str]:
    """What differs (``key: cache value -> this run's value``); a model file of None in
    ``wanted`` (the file is not here) is not compared."""
    cached, wanted = _comparable(cached), _comparable(wanted)
    for name, file in wanted["models"].items():
        if file is None and name in cached["models"]:
            cached["models"][name] = None
    return differences(cached, wanted)


# --- reading -----------------------------------------------------------------------------

@contextlib.contextmanager
def text_lock(folder: Path):
    """Held while a text table is read and replaced: writers from several processes (extraction,
    localizers, the web app) wait for each other instead of dropping each other's names."""
    fd = lock_file(folder / ".lock", wait=True)
    try:
        yield
    finally:
        os.close(fd)


@dataclass
class SplitFeatures:
    """One split's embeddings, memory-mapped: nothing is read until rows are asked for."""

    split: str
    vid_names: np.ndarray  # [N]
    audio: np.ndarray  # [N, 10, D] memmap
    vision: np.ndarray  # [N, 10, D] memmap
    excluded: dict[str, str]  # vid_name -> reason

    folder: Path | None = None  # where the arrays live, for messages

    def gather(self, rows) -> tuple[np.ndarray, np.ndarray]:
        """Audio and vision rows as float32 ``[n, 10, D]``; a NaN or infinite value is an error
        naming the file (a damaged or badly written cache is never scored)."""
        out = []
        for name, array in (("audio", self.audio), ("vision", self.vision)):
            block = np.asarray(array[rows], dtype=np.float32)
            if not np.isfinite(block).all():
                bad = np.flatnonzero(~np.isfinite(block).reshape(len(block), -1).all(axis=1))
                where = self.folder / f"{name}.npy" if self.folder else f"{self.split} {name} features"
                raise CacheError(f"{where} holds NaN or infinite values (row {int(np.asarray(rows)[bad[0]])}, "
                                 f"video {str(self.vid_names[np.asarray(rows)[bad[0]]])!r}, and {len(bad) - 1} more "
                                 f"in this block); {refresh_hint(self.split)}")
            out.append(block)
        return out[0], out[1]

    def rows(self, vid_names) -> tuple[np.ndarray, np.ndarray]:
        """Row of each video (-1 where excluded) and the excluded mask; unknown videos are an error."""
        lookup = {name: i for i, name in enumerate(self.vid_names)}
        rows = np.array([lookup.get(name, -1) for name in vid_names], dtype=np.int64)
        excluded = np.array([name in self.excluded for name in vid_names], dtype=bool)
        unknown = np.flatnonzero((rows < 0) & ~excluded)
        if unknown.size:
            raise CacheError(
                f"the {self.split} features lack {unknown.size} of the {len(rows)} videos asked for "
                f"(e.g. {str(vid_names[unknown[0]])!r}): the cache was built from another video list; "
                f"{refresh_hint(self.split)}, or point cache.dir elsewhere.")
        return rows, excluded


def read_vid_names(path: Path) -> np.ndarray:
    """The ``vid_name`` column of a cache folder's videos.csv: one per row of its arrays."""
    with open(path, newline="") as handle:
        return np.array([row["vid_name"] for row in csv.DictReader(handle)], dtype=str)


def open_array(path: Path, split: str) -> np.ndarray:
    """A cached ``[N, 10, D]`` array, memory-mapped; a truncated or foreign file is a clear error."""
    try:
        array = np.load(path, mmap_mode="r")
    except FileNotFoundError:
        raise CacheError(f"{path} is missing; {refresh_hint(split)}") from None
    except (ValueError, OSError, EOFError) as err:
        raise CacheError(f"{path} is damaged or truncated ({err}); {refresh_hint(split)}") from None
    if array.ndim != 3 or array.shape[1] != NUM_SEGMENTS:
        raise CacheError(f"{path} has shape {array.shape}; expected [videos, {NUM_SEGMENTS}, width]. "
                         f"{refresh_hint(split).capitalize()}")
    return array


class FeatureCache:
    def __init__(self, root):
        self.root = Path(root)

    @property
    def provenance_path(self) -> Path:
        return self.root / PROVENANCE_FILE

    def exists(self) -> bool:
        return self.provenance_path.is_file()

    def provenance(self) -> dict:
        try:
            return json.loads(self.provenance_path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise CacheError(f"cannot read {self.provenance_path}: {err}") from None

    def check(self, wanted: dict) -> None:
        """Never mix: the cache's provenance must equal this run's."""
        made = self.provenance()
        if made.get("format_version") != wanted["format_version"]:
            raise CacheError(f"the feature cache at {self.root} has format {made.get('format_version')!r}, written by "
                             f"an earlier version of this toolkit; this one reads format {wanted['format_version']} "
                             "(per-modality text embeddings and widths). Point cache.dir at a new folder to extract "
                             "the features again.")
        changed = provenance_differences(made, wanted)
        if changed:
            raise CacheError(f"the feature cache at {self.root} was made differently from what this run asks for "
                             "(cache -> this run):\n  "
                             + "\n  ".join(changed)
                             + "\nPoint cache.dir at another folder (or delete this one) to extract matching features.")

    def split_dir(self, split: str) -> Path:
        return self.root / split

    def has_split(self, split: str) -> bool:
        return (self.split_dir(split) / "videos.csv").is_file()

    def split(self, split: str) -> SplitFeatures:
        folder = self.split_dir(split)
        if not self.has_split(split):
            raise CacheError(f"the feature cache at {self.root} has no {split} split yet")
        vid_names = read_vid_names(folder / "videos.csv")
        excluded = {}
        if (folder / "excluded.csv").is_file():
            with open(folder / "excluded.csv", newline="") as handle:
                excluded = {row["vid_name"]: row["reason"] for row in csv.DictReader(handle)}
        audio, vision = (open_array(folder / f"{name}.npy", split) for name in ("audio", "vision"))
        if not len(vid_names) == len(audio) == len(vision):  # each modality has its own width
            raise CacheError(f"{folder}: videos.csv ({len(vid_names)} rows), audio.npy {audio.shape} and vision.npy "
                             f"{vision.shape} disagree; {refresh_hint(split)}")
        return SplitFeatures(split, vid_names, audio, vision, excluded, folder)

    def remove_split(self, split: str) -> None:
        """Drop a split's arrays and its audio draws (drawn from the same media). Each folder is
        renamed away first, so a kill never leaves half of one."""
        for folder in (self.split_dir(split), self.root / f"{split}{DRAWS_SUFFIX}"):
            trash = self.root / f".{folder.name}.removing"
            with writing(folder):
                shutil.rmtree(trash, ignore_errors=True)
                if folder.exists():
                    os.rename(folder, trash)
                shutil.rmtree(trash, ignore_errors=True)
            self.remove_work(folder.name)
        for work in self.root.glob(f"{WORK_DIR}/{split}{DRAWS_SUFFIX}.*"):  # draws' chunks, per set of draws
            self.remove_work(work.name)

    def text_path(self, template: str, modality: str) -> Path:
        return self.root / TEXT_DIR / modality / f"{hashlib.sha1(template.encode()).hexdigest()[:12]}.npz"

    def _text_table(self, template: str, modality: str) -> dict[str, np.ndarray]:
        path = self.text_path(template, modality)
        if not path.is_file():
            return {}
        with np.load(path) as data:
            return dict(zip(data["names"].tolist(), data["embeddings"]))

    def missing_text(self, names, template: str, modality: str) -> list[str]:
        table = self._text_table(template, modality)
        return [name for name in names if name not in table]

    def text(self, names, template: str, modality: str) -> np.ndarray:
        """``[K, D]`` float32 embeddings of the class names (in the order given) under
        ``template``, as scored against ``modality`` (audio or vision)."""
        table = self._text_table(template, modality)
        missing = [name for name in names if name not in table]
        if missing:
            raise CacheError(f"the feature cache at {self.root} has no {modality} text embedding for {missing[0]!r} "
                             f"with template {template!r} (and {len(missing) - 1} more class names)")
        matrix = np.stack([table[name] for name in names]).astype(np.float32)
        if not np.isfinite(matrix).all():
            raise CacheError(f"{self.text_path(template, modality)} holds NaN or infinite text embeddings; delete it "
                             "and re-run: the text embeddings are extracted again")
        return matrix

    def write_text(self, names, embeddings: np.ndarray, template: str, modality: str, dtype: str) -> None:
        """Add class-name embeddings for ``template`` and ``modality``, keeping the ones there
        (also those another process adds at the same moment: the table is read and replaced under
        a lock)."""
        path = self.text_path(template, modality)
        with writing(path):
            path.parent.mkdir(parents=True, exist_ok=True)
        with writing(path), text_lock(path.parent):
            table = self._text_table(template, modality)
            table.update(zip(names, embeddings))
            ordered = sorted(table)
            matrix = np.stack([table[name] for name in ordered]).astype(dtype)
            atomic_write(path, lambda f: np.savez(f, template=np.array(template), names=np.array(ordered, dtype=str),
                                                  embeddings=matrix))

    def work_dir(self, split: str) -> Path:
        return self.root / WORK_DIR / split

    def remove_work(self, split: str) -> None:
        shutil.rmtree(self.work_dir(split), ignore_errors=True)
        with contextlib.suppress(OSError):
            self.work_dir(split).parent.rmdir()  # only once no split is in progress
