"""Localize events in any video with any words, through the benchmark's own path: a video
becomes consecutive 1 s segments (data/video_segments.py, the rule of the benchmark's
preparation), each prepared and encoded by the configured family as in extraction, the class
names plus ``other`` go through the family's text towers, and the benchmark's decoders label
every second: the training-free rule (``v0`` / ``v01``) or, with a fine-tuning checkpoint, its
temporal layers and the ``v1`` scoring.

The decoders and temporal layers were made for 10-segment clips (the training-free rule gives
a clip one class; the temporal layers saw ten segments), so a longer video is decoded in
consecutive 10 s windows (the last one shorter): a 10 s video is exactly one benchmark clip.

Confidence of a segment labelled c: sqrt(p_audio(c) * p_frame(c)), where p is the softmax over
the classes (``other`` included) of 100 x the cosine similarities (CLIP's logit scale) of the
segment's audio and frame embeddings (after the temporal layers, with a checkpoint). An event is
a maximal run of seconds with one label other than ``other``; its score is the mean confidence.

Segment embeddings are kept per video file (``<cache.dir>/videos/<sha256 of the file>/``), so
asking the same videos about other words encodes only the new class names: one Localizer answers
any number of queries, each with its own words and its own decoding (models/strategies). Videos
are streamed by data/video_windows.py, kept by data/embedding_store.py, and written out by
pipeline/localize_outputs.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from common.distributed import Process
from common.errors import UserError
from data.annotations import OTHER
from data.embedding_store import EmbeddingStore
from data.feature_cache import FeatureCache, file_sha256
from data.loading import decoding_worker, num_workers
from data.raw_videos import VIDEO_SUFFIXES
from data.video_windows import WINDOW, Windows
from models import strategies
from models.families import family
from models.segment_encoder import resolve_device
from models.similarity import cosine
from models.strategies import Decoder
from pipeline.evaluate import class_texts
from pipeline.extraction import claim_cache, missing_text, write_missing_text

LABEL_BATCH = 256  # windows labelled per model call: bounds memory for hours of video
LOGIT_SCALE = 100.0  # temperature of the confidence softmax (CLIP's logit scale)


class UsageError(UserError):
    """A mistake in how the localizer was called (exit status 2)."""


def class_list(names) -> list[str]:
    """The user's class names, checked: none empty, no duplicate, ``other`` reserved."""
    names = [str(name).strip() for name in names]
    if not names:
        raise UsageError("no class names given: pass --classes \"dog barking,car horn\", --classes-file or "
                         "--benchmark-classes")
    for name in names:
        if not name:
            raise UsageError(f"an empty class name in {names!r}")
        if name == OTHER:
            raise UsageError(f"{OTHER!r} is the background class; it is always added, leave it out")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise UsageError(f"duplicate class name(s): {', '.join(repr(d) for d in duplicates)}")
    return names


def find_videos(paths) -> list[Path]:
    """Files as given, folders searched recursively for video files, in a stable order."""
    found = []
    for path in map(Path, paths):
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
        elif path.exists():
            found.append(path)
        else:
            raise UsageError(f"no such file or folder: {path}")
    return found


@dataclass
class VideoResult:
    path: str
    status: str = "ok"
    reason: str = ""
    duration: float = 0.0
    encoded: bool = False
    labels: list = field(default_factory=list)  # class name per second
    confidence: list = field(default_factory=list)  # per second, in [0, 1]
    events: list = field(default_factory=list)  # {"class", "start", "end", "score"}
    # Per second and class (``other`` last): the softmax of 100 x cosine, audio and frame.
    audio_probability: np.ndarray | None = None
    frame_probability: np.ndarray | None = None

    def class_confidence(self, k: int) -> np.ndarray:
        """sqrt(p_audio * p_frame) of class column ``k`` at every second."""
        return np.sqrt(self.audio_probability[:, k] * self.frame_probability[:, k])

    def record(self) -> dict:
        return {"path": self.path, "status": self.status, "reason": self.reason, "duration": self.duration,
                "segments": len(self.labels), "encoded": self.encoded, "events": self.events}


def events_of(labels: list[str], confidence: list[float], threshold: float) -> list[dict]:
    events, start = [], 0
    for t in range(1, len(labels) + 1):
        if t == len(labels) or labels[t] != labels[start]:
            if labels[start] != OTHER:
                score = float(np.mean(confidence[start:t]))
                if score >= threshold:
                    events.append({"class": labels[start], "start": float(start), "end": float(t),
                                   "score": round(score, 4)})
            start = t
    return events


class Localizer:
    """``Localizer(config, checkpoint=None, strategy="v01", threshold=0.0).localize(paths, names)``;
    ``localize(paths, names, localizer.decoding(...))`` decodes one query another way."""

    def __init__(self, config, checkpoint=None, strategy: str = strategies.DEFAULT, threshold: float = 0.0,
                 process: Process | None = None):
        self.config, self.threshold = config, threshold
        self.process = process or Process()
        self.backbone = family(config.encoder.family)
        self.cache = FeatureCache(config.cache.dir)
        self.store = EmbeddingStore(self.cache)
        self.device = resolve_device(config.device, self.process.local_rank)
        self._encoder = None
        self._decodings: dict = {}
        self._keys: dict = {}
        self.encoded_names: list[str] = []  # names whose text embeddings the last call encoded
        self.default = self.decoding(strategy, checkpoint)

    @property
    def method(self) -> str:
        return self.default.name

    def decoding(self, strategy: str = strategies.DEFAULT, checkpoint=None) -> Decoder:
        """The rule ``strategy`` (models/strategies), or (given ``checkpoint``) the checkpoint's
        model with its strategy's rule; a checkpoint is read once per Localizer."""
        if checkpoint is None:
            return strategies.strategy(strategy, "--strategy", needs="similarities").decoder()
        checkpoint = str(checkpoint)
        if checkpoint not in self._decodings:
            [name] = strategies.names("checkpoint")
            decoder = strategies.strategy(name).decoder(checkpoint, self.device)
            widths = self.backbone.widths(self.config)
            if decoder.widths != widths:
                raise UsageError(f"{checkpoint} was trained on embeddings of widths {decoder.widths}, but "
                                 f"{self.backbone.describe(self.config)} gives {widths}; use a checkpoint trained "
                                 "on this encoder")
            self._decodings[checkpoint] = decoder
        return self._decodings[checkpoint]

    def encoder(self):
        if self._encoder is None:
            self._encoder = self.backbone.build(self.config, self.device)
        return self._encoder

    def texts(self, names: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """The names' text embeddings per modality; only names not cached yet are encoded."""
        self.encoded_names = missing_text(self.config, self.cache, names) if self.process.is_main else []
        if self.encoded_names:
            write_missing_text(self.config, self.cache, self.encoder(), names)
        self.process.barrier()
        return class_texts(self.cache, self.config, names, self.device)

    def key(self, path: Path) -> str:
        """The file's sha256, hashed again only when its size, time or inode changed."""
        stat = path.stat()
        seen = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino)
        if seen not in self._keys:
            self._keys[seen] = file_sha256(path)
        return self._keys[seen]

    def localize(self, paths, class_names, decoding: Decoder | None = None) -> list[VideoResult]:
        """Every video of ``paths`` (files, or folders searched recursively) against the class
        names plus ``other``; one result per video, in order (under torchrun: this rank's share)."""
        names = class_list(class_names) + [OTHER]
        videos = find_videos(paths)
        decoding = decoding or self.default
        lock = claim_cache(self.config, self.cache, self.process, refresh=())
        try:
            text_audio, text_vision = self.texts(names)
            mine = list(range(len(videos)))[self.process.rank::self.process.world_size]
            results = {i: VideoResult(str(videos[i])) for i in mine}
            keys = {i: self.key(videos[i]) for i in mine}
            todo = [(i, videos[i]) for i in mine if self.store.get(keys[i]) is None]
            self._encode(todo, keys, results)
            for i in mine:
                if results[i].status == "ok":
                    self._label(results[i], self.store.get(keys[i]), names, text_audio, text_vision, decoding)
            return [results[i] for i in mine]
        finally:
            if lock is not None:
                lock.release()

    def _encode(self, todo, keys, results) -> None:
        if not todo:
            return
        workers = num_workers(self.config.extract.num_workers)
        loader = DataLoader(Windows(todo, self.backbone), batch_size=None,
                            num_workers=min(workers, len(todo)), worker_init_fn=decoding_worker)
        writers = {}
        encoder = self.encoder()
        with tqdm(total=len(todo), unit="video", desc="videos", dynamic_ncols=True) as bar, \
                tqdm(unit="s", desc="seconds encoded", dynamic_ncols=True) as seconds:
            for window in loader:
                result = results[window.video]
                if window.status != "ok":
                    result.status, result.reason = window.status, window.reason
                    if window.video in writers:
                        writers.pop(window.video).abandon()
                    bar.update(1)
                    continue
                writer = writers.get(window.video)
                if writer is None:
                    writer = writers[window.video] = self.store.writer(keys[window.video])
                if window.audio is not None:
                    audio, vision = encoder.segments(window.audio[None], window.frames[None])
                    writer.add(audio[0].numpy(), vision[0].numpy())
                    seconds.set_description(Path(result.path).name)
                    seconds.update(len(audio[0]))
                if window.last:
                    writers.pop(window.video).finish({"path": result.path, "duration": window.duration,
                                                      "widths": dict(encoder.widths)})
                    result.encoded = True
                    bar.update(1)

    def _label(self, result: VideoResult, stored, names, text_audio, text_vision, decoding: Decoder) -> None:
        meta, audio, vision = stored
        result.duration = meta["duration"]
        full = len(audio) // WINDOW * WINDOW
        parts = [(start, min(start + LABEL_BATCH * WINDOW, full)) for start in range(0, full, LABEL_BATCH * WINDOW)]
        parts += [(full, len(audio))] if full < len(audio) else []
        labels, p_audio, p_frame = [], [], []
        with torch.inference_mode():
            for start, end in parts:  # whole windows batched together, then the shorter last one
                width = min(WINDOW, end - start)
                a = torch.from_numpy(np.array(audio[start:end])).view(-1, width, audio.shape[1]).to(self.device)
                v = torch.from_numpy(np.array(vision[start:end])).view(-1, width, vision.shape[1]).to(self.device)
                if decoding.model is not None:
                    a, v = decoding.model(a, v)
                sim_a, sim_v = cosine(a, text_audio), cosine(v, text_vision)
                decoded = decoding.decode(sim_a.cpu().numpy(), sim_v.cpu().numpy())
                labels.append(decoded.segment_labels.reshape(-1))
                p_audio.append(torch.softmax(LOGIT_SCALE * sim_a, dim=-1).reshape(-1, len(names)).cpu().numpy())
                p_frame.append(torch.softmax(LOGIT_SCALE * sim_v, dim=-1).reshape(-1, len(names)).cpu().numpy())
        chosen = np.concatenate(labels) if labels else np.zeros(0, np.int64)
        result.audio_probability = np.concatenate(p_audio) if p_audio else np.zeros((0, len(names)), np.float32)
        result.frame_probability = np.concatenate(p_frame) if p_frame else np.zeros((0, len(names)), np.float32)
        seconds = np.arange(len(chosen))
        confidence = np.sqrt(result.audio_probability[seconds, chosen] * result.frame_probability[seconds, chosen])
        result.labels = [names[k] for k in chosen.tolist()]
        result.confidence = confidence.tolist()
        result.events = events_of(result.labels, result.confidence, self.threshold)


