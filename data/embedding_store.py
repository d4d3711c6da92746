"""Per-video segment embeddings of any video file, beside the benchmark's feature cache: asking
the same videos about other words encodes nothing but the new names."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from common.files import atomic_write_json, writing
from data.feature_cache import MODALITIES, FeatureCache

STORE_DIR = "videos"


class EmbeddingStore:
    """Per-video segment embeddings: ``<cache.dir>/videos/<sha256>/`` holding ``video.json``
    (segments, duration, widths) and ``audio.f32`` / ``vision.f32`` (raw float32 ``[T, D]``).
    A video's folder appears whole, by one rename."""

    def __init__(self, cache: FeatureCache):
        self.root = cache.root / STORE_DIR

    def folder(self, key: str) -> Path:
        return self.root / key

    def get(self, key: str):
        folder = self.folder(key)
        if not (folder / "video.json").is_file():
            return None
        meta = json.loads((folder / "video.json").read_text())
        arrays = [np.memmap(folder / f"{m}.f32", dtype=np.float32, mode="r",
                            shape=(meta["segments"], meta["widths"][m]))
                  if meta["segments"] else np.zeros((0, meta["widths"][m]), np.float32) for m in MODALITIES]
        return meta, arrays[0], arrays[1]

    def writer(self, key: str) -> "StoreWriter":
        return StoreWriter(self.folder(key))


class StoreWriter:
    def __init__(self, final: Path):
        self.final = final
        self.staging = final.with_name(f".{final.name}.{os.getpid()}")
        shutil.rmtree(self.staging, ignore_errors=True)
        with writing(self.staging, "the embedding store", "choose another cache.dir"):
            self.staging.mkdir(parents=True)
            self.handles = {m: open(self.staging / f"{m}.f32", "wb") for m in MODALITIES}
        self.segments = 0

    def add(self, audio: np.ndarray, vision: np.ndarray) -> None:
        with writing(self.staging, "the embedding store", "choose another cache.dir"):
            self.handles["audio"].write(np.ascontiguousarray(audio, np.float32).tobytes())
            self.handles["vision"].write(np.ascontiguousarray(vision, np.float32).tobytes())
        self.segments += len(audio)

    def finish(self, meta: dict) -> None:
        with writing(self.staging, "the embedding store", "choose another cache.dir"):
            for handle in self.handles.values():
                handle.close()
            atomic_write_json(self.staging / "video.json", {**meta, "segments": self.segments})
            shutil.rmtree(self.final, ignore_errors=True)
            os.rename(self.staging, self.final)

    def abandon(self) -> None:
        for handle in self.handles.values():
            handle.close()
        shutil.rmtree(self.staging, ignore_errors=True)
