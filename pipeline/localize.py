"""Localize events in any video with any words, through the benchmark's own path: a video
becomes consecutive 1 s segments (data/video_segments.py, the rule of the benchmark's
preparation), each prepared and encoded by the configured family as in extraction, the class
names plus ``other`` go through the family's text towers, and the benchmark's decoding
strategies label every second (models/strategies): the training-free rule (``v0`` / ``v01``),
CueRator's rule, or with a checkpoint a fine-tuning model's temporal layers and the ``v1``
scoring, or a CueRator policy's per-video parameters.

The decoders, temporal layers and policies were made for 10-segment clips (the training-free
rule gives a clip one class; the temporal layers and the policy saw ten segments), so a longer
video is decoded in consecutive 10 s windows (the last one shorter): a 10 s video is exactly one
benchmark clip.

Confidence of a segment labelled c: sqrt(p_audio(c) * p_frame(c)), where p is the softmax over
the classes (``other`` included) of 100 x the cosine similarities (CLIP's logit scale) of the
segment's audio and frame embeddings (after the temporal layers, with a checkpoint). An event is
a maximal run of consecutive seconds with one label other than ``other``; its score is the mean
confidence. With a checkpoint, a second whose every fused score is <= 0 (no evidence for any class)
is ``other`` here; the benchmark keeps the published rule (class 0).

Segment embeddings are kept per video file (``<cache.dir>/videos/<sha256 of the file>/``), so
asking the same videos about other words encodes only the new class names, and any number of
processes share the store (data/embedding_store.py: each video encoded once, by the process that
claims it; a killed encoding resumes). Files with the same bytes are encoded once and reported
under each name; a path given twice is one input. One Localizer answers
any number of queries, each with its own words and its own decoding (models/strategies). Videos
are streamed by data/video_windows.py, kept by data/embedding_store.py, and written out by
pipeline/localize_outputs.py.
"""

from __future__ import annotations

import csv
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from stat import S_ISREG

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from common.distributed import Process
from common.errors import UserError
from data.annotations import OTHER
from data.embedding_store import EmbeddingStore, StoredVideo
from data.feature_cache import CacheError, FeatureCache, file_sha256
from data.loading import decoding_worker, num_workers
from data.raw_videos import VIDEO_SUFFIXES
from data.companions import STREAMS as COMPANION_STREAMS
from data.video_windows import WINDOW, Window, Windows, worker_context
from models import strategies
from models.families import family
from models.segment_encoder import resolve_device
from models.similarity import cosine
from models.strategies import Decoder
from models.temporal import check_fits
from pipeline.evaluate import class_texts
from pipeline.extraction import generator_identity, missing_text, prepare_cache, write_missing_text

LABEL_BATCH = 256  # windows labelled per model call: bounds memory for hours of video
LOGIT_SCALE = 100.0  # temperature of the confidence softmax (CLIP's logit scale)
SCORE_DIGITS = 4  # an event's score as written; the threshold compares that value


class UsageError(UserError):
    """A mistake in how the localizer was called (exit status 2)."""


class CompanionInputs:
    """A stand-in family for the decoding windows that prepares the companion streams' inputs: the
    family's phase input of the sound, and its frame input of each picture's iHSV companion."""

    def __init__(self, family_name: str, negative: str):
        self.family_name, self.negative = family_name, negative

    def audio_window(self, samples):
        return family(self.family_name).phase_window(samples)

    def frame_window(self, images):
        from models.complex_fusion import ihsv_pictures

        return family(self.family_name).frame_window(ihsv_pictures(images, self.negative))


class NotAFile(Exception):
    """A path that names no regular file."""


def same_name(name: str) -> str:
    """Names that differ only in case or spacing are the same class."""
    return " ".join(name.split()).casefold()


def class_list(names) -> list[str]:
    """The user's class names, checked: none empty, no duplicate (ignoring case and spacing),
    ``other`` reserved."""
    names = [str(name).strip() for name in names]
    if not names:
        raise UsageError("no class names given: pass --classes \"dog barking,car horn\", --classes-file or "
                         "--benchmark-classes")
    for name in names:
        if not name:
            raise UsageError(f"an empty class name in {names!r}")
        if same_name(name) == OTHER:
            spelled = "" if name == OTHER else f" (given as {name!r})"
            raise UsageError(f"{OTHER!r} is the background class; it is always added, leave it out{spelled}")
    spellings: dict[str, list[str]] = {}
    for name in names:
        spellings.setdefault(same_name(name), []).append(name)
    duplicates = [" = ".join(repr(s) for s in dict.fromkeys(group)) for group in spellings.values() if len(group) > 1]
    if duplicates:
        raise UsageError(f"duplicate class name(s): {', '.join(duplicates)} (case and spacing do not count)")
    return names


def parse_class_text(text: str) -> list[str]:
    """Class names from comma- or line-separated text, the command line's and the web app's alike:
    a name holding a comma is quoted (``"hello, world", dog``); empty pieces (a trailing comma) are
    dropped."""
    rows = csv.reader((text or "").splitlines(), skipinitialspace=True)
    return [piece.strip() for row in rows for piece in row if piece.strip()]


def find_videos(paths) -> list[Path]:
    """Files as given, folders searched recursively for video files, in a stable order; a file
    reached twice is one input. No video at all is a usage error."""
    found, seen = [], set()
    for path in map(Path, paths):
        if path.is_dir():
            candidates = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
        elif path.exists():
            candidates = [path]
        else:
            raise UsageError(f"no such file or folder: {path}")
        for candidate in candidates:
            if candidate.resolve() not in seen:
                seen.add(candidate.resolve())
                found.append(candidate)
    if not found:
        raise UsageError(f"no video in {', '.join(str(p) for p in paths)} (looked for "
                         f"{', '.join(VIDEO_SUFFIXES)})")
    return found


@dataclass
class VideoResult:
    path: str
    status: str = "ok"  # ok, partial (localized, but the file stops short), or why it was not localized
    reason: str = ""
    duration: float = 0.0
    encoded: bool = False
    starts: list = field(default_factory=list)  # each segment's start, in seconds on the file's clock
    labels: list = field(default_factory=list)  # class name per segment
    confidence: list = field(default_factory=list)  # per segment, in [0, 1]
    events: list = field(default_factory=list)  # {"class", "start", "end", "score"}
    audio_track: dict | None = None  # which audio track was read (data/video_segments.describe_track)
    audio_gaps: list = field(default_factory=list)  # [start, end] seconds where the file has no sound (silence)
    # Per segment and class (``other`` last): the softmax of 100 x cosine, audio and frame.
    audio_probability: np.ndarray | None = None
    frame_probability: np.ndarray | None = None

    @property
    def localized(self) -> bool:
        return self.status in ("ok", "partial")

    def class_confidence(self, k: int) -> np.ndarray:
        """sqrt(p_audio * p_frame) of class column ``k`` at every segment."""
        return np.sqrt(self.audio_probability[:, k] * self.frame_probability[:, k])

    def record(self) -> dict:
        return {"path": self.path, "status": self.status, "reason": self.reason, "duration": self.duration,
                "segments": len(self.labels), "encoded": self.encoded, "audio_track": self.audio_track,
                "audio_gaps": self.audio_gaps, "events": self.events}


def events_of(labels: list[str], confidence: list[float], threshold: float, starts: list[int] | None = None
              ) -> list[dict]:
    """Maximal runs of consecutive seconds with one label other than ``other``, scoring at least
    ``threshold`` (their mean confidence)."""
    starts = list(range(len(labels))) if starts is None else starts
    events, first = [], 0
    for t in range(1, len(labels) + 1):
        if t == len(labels) or labels[t] != labels[first] or starts[t] != starts[t - 1] + 1:
            if labels[first] != OTHER:
                score = round(float(np.mean(confidence[first:t])), SCORE_DIGITS)  # compared as shown
                if score >= threshold:
                    events.append({"class": labels[first], "start": float(starts[first]),
                                   "end": float(starts[t - 1] + 1), "score": score})
            first = t
    return events


class Localizer:
    """``Localizer(config, checkpoint=None, strategy=None, threshold=0.0).localize(paths, names)``;
    ``localize(paths, names, localizer.decoding(...))`` decodes one query another way."""

    def __init__(self, config, checkpoint=None, strategy: str | None = None, threshold: float = 0.0,
                 process: Process | None = None):
        if not 0 <= threshold <= 1:  # also NaN
            raise UsageError(f"--threshold {threshold}: an event's score is a confidence in [0, 1]; choose a "
                             "threshold in that range")
        self.config, self.threshold = config, threshold
        self.process = process or Process()
        self.backbone = family(config.encoder.family)
        self.cache = FeatureCache(config.cache.dir)
        self.store = EmbeddingStore(self.cache)
        self.device = resolve_device(config.device, self.process.local_rank)
        self._encoder = None
        self._generators: dict = {}
        self._decodings: dict = {}
        self._keys: dict = {}
        self.encoded_names: list[str] = []  # names whose text embeddings the last call encoded
        self.default = self.decoding(strategy, checkpoint)

    @property
    def method(self) -> str:
        return self.default.name

    def decoding(self, strategy: str | None = None, checkpoint=None) -> Decoder:
        """The strategy ``strategy`` (models/strategies; default v01), with ``checkpoint`` for a
        checkpoint strategy (without ``strategy``: the one that reads the file); a checkpoint is
        read once per Localizer."""
        if checkpoint is None:
            return strategies.strategy(strategy or strategies.DEFAULT, "--strategy",
                                       needs="similarities").decoder(config=self.config)
        key = (strategy, str(checkpoint))
        if key not in self._decodings:
            decoder = strategies.checkpoint_decoder(str(checkpoint), self.device, strategy, "--strategy")
            check_fits(checkpoint, decoder.encoder, decoder.widths, self.config, self.backbone, UsageError)
            if set(decoder.streams) & set(COMPANION_STREAMS):
                self._generator(decoder.settings)  # a phase generator that does not fit: one line, before work
            self._decodings[key] = dataclasses.replace(
                decoder, options={**decoder.options, **decoder.strategy.localizer_options})
        return self._decodings[key]

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
        """The store's key of the file: its sha256 (hashed again only when its size, time or inode
        changed), with the audio track when ``video.audio_track`` names one. A pipe or a device is
        not read (hashing it would wait forever): NotAFile."""
        stat = path.stat()
        if not S_ISREG(stat.st_mode):
            raise NotAFile(f"{path} is not a regular file (a pipe, socket or device); give the video file itself")
        seen = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino)
        if seen not in self._keys:
            self._keys[seen] = file_sha256(path)
        track = self.config.video.audio_track
        return self._keys[seen] if track is None else f"{self._keys[seen]}-track{track}"

    def localize(self, paths, class_names, decoding: Decoder | None = None) -> list[VideoResult]:
        """Every video of ``paths`` (files, or folders searched recursively) against the class
        names plus ``other``; one result per video, in order (under torchrun: this rank's share)."""
        return self.localize_videos(find_videos(paths), class_names, decoding)

    def localize_videos(self, videos: list[Path], class_names, decoding: Decoder | None = None) -> list[VideoResult]:
        """:meth:`localize` on videos listed by :func:`find_videos`; one that cannot be read any more
        is reported (``unreadable``) while the others are localized."""
        names = class_list(class_names) + [OTHER]
        decoding = decoding or self.default
        self._open_cache()
        text_audio, text_vision = self.texts(names)
        mine = list(range(len(videos)))[self.process.rank::self.process.world_size]
        results = {i: VideoResult(str(videos[i])) for i in mine}
        keys = {}
        for i in mine:
            try:
                keys[i] = self.key(videos[i])
            except NotAFile as err:
                results[i].status, results[i].reason = "not_a_video", str(err)
            except OSError as err:  # gone, or made unreadable, since it was listed
                results[i].status = "unreadable"
                results[i].reason = f"{videos[i]} cannot be read: {type(err).__name__}: {err.strerror or err}"
        stored = self._stored(videos, keys, results)
        extra = self._companions(decoding, {key: videos[i] for i, key in keys.items() if key in stored}, stored)
        for i, key in keys.items():
            if key in stored:
                self._label(results[i], stored[key], names, text_audio, text_vision, decoding, extra.get(key, {}))
        return [results[i] for i in mine]

    def _open_cache(self) -> None:
        """Rank 0 checks the cache's provenance (or gives a new cache its own); every rank learns
        whether that worked. No lock: any number of localizers share a cache."""
        failure = None
        if self.process.is_main:
            try:
                prepare_cache(self.config, self.cache)
            except UserError as err:
                failure = err
        message = self.process.share(None if failure is None else str(failure))
        if failure is not None:
            raise failure
        if message is not None:
            raise CacheError(message)

    def _stored(self, videos, keys: dict, results: dict) -> dict[str, StoredVideo]:
        """The stored embeddings of every video, encoding those the store lacks: each content once
        (twins share it), each by the process that claims it; videos another process is encoding
        are waited for."""
        paths = {}
        for i, key in keys.items():
            paths.setdefault(key, videos[i])
        stored, pending = {}, []
        for key in paths:
            entry = self.store.get(key)
            if entry is not None:
                stored[key] = entry
            else:
                pending.append(key)
        failures: dict[str, tuple[str, str]] = {}
        encoded_now = set()
        while pending:
            claims = {}
            try:  # claims are released whatever happens (the web app's process lives on)
                for key in pending:
                    claim = self.store.claim(key)
                    if claim is None:
                        continue
                    entry = self.store.get(key)  # finished by another process meanwhile
                    if entry is not None:
                        stored[key] = entry
                        claim.release()
                    else:
                        claims[key] = claim
                busy = [key for key in pending if key not in stored and key not in claims]
                if busy and not claims:  # every pending video is being encoded elsewhere: wait for one
                    self.store.claim(busy[0], wait=True).release()
                failures.update(self._encode({key: (paths[key], claim) for key, claim in claims.items()}))
            finally:
                for claim in claims.values():
                    claim.release()
            for key in claims:
                entry = self.store.get(key)
                if entry is not None:
                    stored[key] = entry
                    encoded_now.add(key)
            pending = [key for key in pending if key not in stored and key not in failures]
        for i, key in keys.items():
            if key in failures:
                results[i].status, results[i].reason = failures[key]
            results[i].encoded = key in encoded_now
        return stored

    def _encode(self, jobs: dict) -> dict[str, tuple[str, str]]:
        """Encode ``{key: (path, claim)}`` into the store, windows of several videos batched into
        one encoder call; returns why the videos that could not be encoded failed. A decoding worker
        silent for ``video.worker_timeout`` seconds has its video reported ``timed_out``; the
        others are decoded again from what was kept of them."""
        failures: dict[str, tuple[str, str]] = {}
        done: set[str] = set()
        if not jobs:
            return failures
        self.encoder()  # built before the workers start, not while they decode
        with tqdm(total=len(jobs), unit="video", desc="videos", dynamic_ncols=True) as bar, \
                tqdm(unit="s", desc="seconds encoded", dynamic_ncols=True) as seconds:
            while True:
                keys = [key for key in jobs if key not in failures and key not in done]
                if not keys or not self._encode_round(keys, jobs, failures, done, bar, seconds):
                    return failures

    def _encode_round(self, keys: list[str], jobs: dict, failures: dict, done: set, bar, seconds) -> bool:
        """One pass of decoding workers over ``keys``; True when a silent worker cut it short."""
        todo = [(n, jobs[key][0], jobs[key][1].kept_segments()) for n, key in enumerate(keys)]
        workers = min(num_workers(self.config.extract.num_workers), len(todo))
        dataset = Windows(todo, self.backbone, self.config.video.audio_track, workers)
        timeout = self.config.video.worker_timeout
        loader = DataLoader(dataset, batch_size=None, num_workers=workers, worker_init_fn=decoding_worker,
                            timeout=timeout if workers else 0, multiprocessing_context=worker_context() if workers else None)
        batch, finishing = [], []
        limit = self.config.extract.batch_size  # windows per encoder call, as extraction's videos
        windows = iter(loader)
        silent = []
        try:
            for window in windows:
                key = keys[window.video]
                if window.status not in ("ok", "partial"):
                    failures[key] = (window.status, window.reason)
                    jobs[key][1].abandon()
                    bar.update(1)
                    continue
                if window.audio is not None:
                    batch.append(window)
                if window.last:
                    finishing.append(window)
                if len(batch) >= limit:
                    self._encode_batch(batch, keys, jobs, failures, seconds)
                    self._finish(finishing, keys, jobs, failures, done, bar)
                    batch, finishing = [], []
        except RuntimeError as err:
            if "timed out" not in str(err):
                raise
            silent = [keys[video] for video in dataset.silent(timeout)]
        del windows  # ends the workers
        for key in silent:
            failures[key] = ("timed_out", f"decoding {jobs[key][0]} stopped answering for {timeout:g} s "
                                          "(video.worker_timeout); its worker was ended and the other videos went on")
            jobs[key][1].abandon()
            bar.update(1)
        self._encode_batch(batch, keys, jobs, failures, seconds)
        self._finish(finishing, keys, jobs, failures, done, bar)
        return bool(silent)

    def _encode_batch(self, batch: list[Window], keys, jobs, failures, seconds) -> None:
        """One encoder call for the batch's windows (of any lengths), each kept as a part."""
        if not batch:
            return
        audio, vision = self.encoder().segments(torch.cat([w.audio for w in batch])[None],
                                                torch.cat([w.frames for w in batch])[None])
        audio, vision = audio[0].numpy(), vision[0].numpy()
        at = 0
        for window in batch:
            key = keys[window.video]
            part = slice(at, at + len(window.starts))
            at = part.stop
            if key in failures:
                continue
            if not (np.isfinite(audio[part]).all() and np.isfinite(vision[part]).all()):
                hint = (" fp16 overflows easily; use encoder.precision: bf16" if self.config.encoder.precision == "fp16"
                        else " check the media and the checkpoint")
                failures[key] = ("not_finite", f"the encoder produced NaN or infinite embeddings under "
                                               f"encoder.precision={self.config.encoder.precision};{hint}")
                jobs[key][1].abandon()
                continue
            jobs[key][1].add(audio[part], vision[part], window.starts, window.first)
            seconds.update(len(window.starts))

    def _finish(self, finishing: list[Window], keys, jobs, failures, done: set, bar) -> None:
        """Videos whose last window is encoded become store entries."""
        for window in finishing:
            key = keys[window.video]
            if key not in failures:
                jobs[key][1].finish({"path": str(jobs[key][0]), "duration": window.duration, "status": window.status,
                                     "reason": window.reason, "audio_track": window.track,
                                     "audio_gaps": window.gaps}, self.encoder().widths)
            done.add(key)
            bar.update(1)

    def _companions(self, decoding: Decoder, paths: dict, stored: dict) -> dict:
        """The companion streams a fusing decoder reads (``{key: {stream: [T, D]}}``), computed from
        each video again: its frames' iHSV pictures through the vision encoder, its audio's
        instantaneous frequency through the decoder's phase generator and the audio encoder."""
        if not set(decoding.streams) & set(COMPANION_STREAMS) or not paths:
            return {}
        from models.phase_gan import from_mel_domain, to_if_domain

        settings = decoding.settings
        generator = self._generator(settings)
        keys = list(paths)
        jobs = [(n, paths[key], 0) for n, key in enumerate(keys)]
        inputs = CompanionInputs(self.config.encoder.family, settings.ihsv_negative)
        made = {key: {"ihsv": [], "phase": []} for key in keys}
        with torch.inference_mode():
            for window in Windows(jobs, inputs, self.config.video.audio_track):
                if window.audio is None:
                    continue
                translated = from_mel_domain(generator(to_if_domain(window.audio.to(self.device))))
                phase, ihsv = self.encoder().segments(translated[None], window.frames[None])
                made[keys[window.video]]["phase"].append(phase[0].numpy())
                made[keys[window.video]]["ihsv"].append(ihsv[0].numpy())
        out = {}
        for key, parts in made.items():
            arrays = {name: np.concatenate(blocks) for name, blocks in parts.items() if blocks}
            if any(len(array) != len(stored[key].audio) for array in arrays.values()):
                raise UserError(f"{paths[key]} gave {len(arrays.get('ihsv', []))} companion segments for "
                                f"{len(stored[key].audio)} stored ones; the file changed while it was read")
            out[key] = arrays
        return out

    def _generator(self, settings):
        """The phase generator of a 4-stream decoder, read once, checked against the encoder."""
        from models.phase_gan import load_generator

        if settings.generator not in self._generators:
            self._generators[settings.generator] = load_generator(
                settings.generator, self.device, generator_identity(self.config), self.backbone.PHASE_INPUT,
                self.backbone.AUDIO_INPUT)
        return self._generators[settings.generator]

    def _label(self, result: VideoResult, stored: StoredVideo, names, text_audio, text_vision,
               decoding: Decoder, companions: dict | None = None) -> None:
        meta, audio, vision = stored.meta, stored.audio, stored.vision
        result.duration, result.starts = meta["duration"], list(stored.starts)
        result.status, result.reason = meta.get("status", "ok"), meta.get("reason", "")
        result.audio_track, result.audio_gaps = meta.get("audio_track"), [list(g) for g in meta.get("audio_gaps", [])]
        full = len(audio) // WINDOW * WINDOW
        parts = [(start, min(start + LABEL_BATCH * WINDOW, full)) for start in range(0, full, LABEL_BATCH * WINDOW)]
        parts += [(full, len(audio))] if full < len(audio) else []
        labels, p_audio, p_frame = [], [], []
        with torch.inference_mode():
            for start, end in parts:  # whole windows batched together, then the shorter last one
                width = min(WINDOW, end - start)
                a = torch.from_numpy(np.array(audio[start:end])).view(-1, width, audio.shape[1]).to(self.device)
                v = torch.from_numpy(np.array(vision[start:end])).view(-1, width, vision.shape[1]).to(self.device)
                if decoding.fuse is not None:  # confidences below stay those of the frozen embeddings
                    streams = {"audio": a, "vision": v, **{
                        name: torch.from_numpy(array[start:end]).view(-1, width, array.shape[1]).to(self.device)
                        for name, array in (companions or {}).items()}}
                    scores = decoding.fuse(streams, {"audio": text_audio, "vision": text_vision})
                    decoded = decoding.strategy.rule(scores.cpu().numpy())
                    sim_a, sim_v = cosine(a, text_audio), cosine(v, text_vision)
                else:
                    per_video = decoding.per_video(a, v) if decoding.per_video is not None else {}
                    if decoding.transform is not None:
                        a, v = decoding.transform(a, v)
                    sim_a, sim_v = cosine(a, text_audio), cosine(v, text_vision)
                    decoded = decoding.decode(sim_a.cpu().numpy(), sim_v.cpu().numpy(), **per_video)
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
        result.events = events_of(result.labels, result.confidence, self.threshold, result.starts)
