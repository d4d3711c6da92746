"""Per-video segment embeddings of any video file, beside the benchmark's feature cache: asking
the same videos about other words encodes nothing but the new names.

Many processes share one store (command-line runs, the web app, torchrun ranks): a video is
encoded by the one process holding its claim (``flock`` on ``.claims/<key>``, released by the
kernel when that process ends in any way), read by all, and appears whole (its folder by one
rename). While it is encoded, each window of segments is kept as a durable part, so a killed or
interrupted encoding resumes where it stopped. A read-only store serves what it holds.

Layout under ``<cache.dir>/videos/``::

    <key>/video.json        format, path, duration, status, reason, audio_track, audio_gaps, widths,
                            starts [T] (whole seconds on the file's clock), segments = T
    <key>/audio.f32         raw float32 [T, D_audio]
    <key>/vision.f32        raw float32 [T, D_vision]
    .parts/<key>/           the windows of an unfinished encoding (part_<first segment>.npz)
    .claims/<key>           the claim of the process encoding it

``<key>`` is the file's sha256, with ``-track<n>`` when ``video.audio_track`` names a track.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.errors import UserError
from common.files import atomic_write, atomic_write_json, writing
from common.locking import lock_file
from data.feature_cache import MODALITIES, FeatureCache

STORE_DIR = "videos"
FORMAT = 3  # 3: sound placed by its timestamps, the default audio track, display aspect; older entries are encoded again
MESSAGES = {"what": "the embedding store", "way_out": "choose another cache.dir"}


class StoreError(UserError):
    """The embedding store cannot be written."""


@dataclass
class StoredVideo:
    meta: dict
    audio: np.ndarray  # [T, D_audio] (memory-mapped)
    vision: np.ndarray  # [T, D_vision]

    @property
    def starts(self) -> list[int]:
        return self.meta["starts"]


class EmbeddingStore:
    def __init__(self, cache: FeatureCache):
        self.root = cache.root / STORE_DIR
        self._checked: dict[str, tuple] = {}  # key -> the arrays' (size, mtime) when last found finite

    def folder(self, key: str) -> Path:
        return self.root / key

    def get(self, key: str) -> StoredVideo | None:
        """The video's embeddings, when they are all there and finite; a damaged entry (truncated,
        not finite, unreadable) or one of an earlier format counts as absent."""
        folder = self.folder(key)
        try:
            meta = json.loads((folder / "video.json").read_text())
        except (OSError, ValueError):
            return None
        if meta.get("format") != FORMAT:
            return None
        arrays, stats = [], []
        for modality in MODALITIES:
            path = folder / f"{modality}.f32"
            shape = (meta["segments"], meta["widths"][modality])
            if not path.is_file() or path.stat().st_size != 4 * shape[0] * shape[1]:
                return None
            stats.append((path.stat().st_size, path.stat().st_mtime_ns))
            arrays.append(np.memmap(path, dtype=np.float32, mode="r", shape=shape) if shape[0]
                          else np.zeros(shape, np.float32))
        if self._checked.get(key) != tuple(stats):  # read whole only when new or changed: re-queries stay quick
            if not all(np.isfinite(array).all() for array in arrays):
                return None
            self._checked[key] = tuple(stats)
        return StoredVideo(meta, *arrays)

    def claim(self, key: str, wait: bool = False) -> "Claim | None":
        """The right to encode ``key``: None when another process holds it (``wait``: block until
        it is free). A store that cannot be written raises :class:`StoreError`."""
        claims = self.root / ".claims"
        try:
            claims.mkdir(parents=True, exist_ok=True)
            fd = lock_file(claims / key, wait)
        except OSError as err:
            reason = "it is read-only" if err.errno in (errno.EROFS, errno.EACCES, errno.EPERM) else err.strerror
            raise StoreError(f"cannot encode into the embedding store at {self.root}: {reason}; it serves only the "
                             "videos it holds. Point cache.dir at a writable folder to encode new ones.") from None
        return None if fd is None else Claim(self, key, fd)


class Claim:
    """Held while one process encodes one video: its parts so far, more parts, the final entry."""

    def __init__(self, store: EmbeddingStore, key: str, fd: int):
        self.store, self.key, self._fd = store, key, fd
        self.parts = store.root / ".parts" / key
        for stale in store.root.glob(f".{key}.*"):  # staging left by a killed process: ours to remove now
            shutil.rmtree(stale, ignore_errors=True)

    def _part_paths(self) -> list[Path]:
        return sorted(self.parts.glob("part_*.npz")) if self.parts.is_dir() else []

    def kept_segments(self) -> int:
        """Segments an interrupted encoding kept: the next part starts there."""
        count = 0
        for path in self._part_paths():
            try:
                with np.load(path) as part:
                    count += len(part["starts"])
            except (OSError, ValueError, KeyError):  # a damaged part and those after it are encoded again
                for later in self._part_paths()[self._part_paths().index(path):]:
                    later.unlink(missing_ok=True)
                break
        return count

    def add(self, audio: np.ndarray, vision: np.ndarray, starts: list[int], first: int) -> None:
        """Keep one window (segments ``first`` on) durably."""
        with writing(self.parts, **MESSAGES, error=StoreError):
            self.parts.mkdir(parents=True, exist_ok=True)
        atomic_write(self.parts / f"part_{first:08d}.npz",
                     lambda f: np.savez(f, audio=np.asarray(audio, np.float32), vision=np.asarray(vision, np.float32),
                                        starts=np.asarray(starts, np.int64)), **MESSAGES, error=StoreError)

    def finish(self, meta: dict, widths: dict) -> None:
        """The parts become the video's entry, which appears whole."""
        final = self.store.folder(self.key)
        staging = final.with_name(f".{self.key}.{os.getpid()}")
        with writing(staging, **MESSAGES, error=StoreError):
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
            starts = []
            handles = {m: open(staging / f"{m}.f32", "wb") for m in MODALITIES}
            try:
                for path in self._part_paths():
                    with np.load(path) as part:
                        starts += part["starts"].tolist()
                        for m in MODALITIES:
                            handles[m].write(np.ascontiguousarray(part[m], np.float32).tobytes())
                for handle in handles.values():
                    handle.flush()
                    os.fsync(handle.fileno())
            finally:
                for handle in handles.values():
                    handle.close()
            atomic_write_json(staging / "video.json", {**meta, "format": FORMAT, "segments": len(starts),
                                                       "starts": starts, "widths": dict(widths)})
            shutil.rmtree(final, ignore_errors=True)
            os.rename(staging, final)
        shutil.rmtree(self.parts, ignore_errors=True)

    def abandon(self) -> None:
        """The video cannot be used: drop what was kept of it."""
        shutil.rmtree(self.parts, ignore_errors=True)

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
