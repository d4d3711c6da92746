"""Fill the feature cache: decode media in worker processes, encode batches of segments,
write durable chunks, merge each split atomically.

Safe to kill at any moment: finished chunks are complete files (written then renamed), a
re-run skips them, and a split's final arrays appear with one directory rename. Under
torchrun each process takes every ``world_size``-th unfinished chunk, so any number of
GPUs and nodes (sharing the cache folder) produce the same cache as one process.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import functools
import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from common.distributed import Process
from common.errors import UserError
from common.locking import FolderLock
from common.runinfo import code_version
from common.schema import Config
from data import audio_draws as audio_draws_lib
from data import companions as companions_lib
from data.annotations import AnnotationIndex, VideoSet
from data.feature_cache import (FORMAT_VERSION, MODALITIES, CacheError, FeatureCache, atomic_write,
                                atomic_write_json, checkpoint_identity, refresh_hint, writing)
from data.loading import MediaDataset, check_shared_memory, collate_media, decoding_worker, num_workers
from data.preprocess import NUM_SEGMENTS, MediaError
from models.families import family
from models.segment_encoder import resolve_device


def wanted_provenance(config: Config, remembered_models: dict | None = None) -> dict:
    """What this run's features must have been made with (a model file that is not here is
    None: a cache made elsewhere is then trusted for it)."""
    backbone = family(config.encoder.family)
    return {
        "format_version": FORMAT_VERSION,
        "encoder": backbone.identity(config),
        "models": backbone.models(config, remembered_models),
        "preprocessing": backbone.preprocessing(),
        "dtype": config.cache.dtype,
    }


def generator_identity(config: Config) -> dict:
    """What a phase generator must have been trained for: the family and its phase stream."""
    backbone = family(config.encoder.family)
    return {"family": config.encoder.family, "phase": backbone.phase_settings()}


def wanted_companions(config: Config, settings=None) -> dict:
    """The provenance the companion streams of ``settings`` (default ``complex.*``) must have, checked
    before any work: the family has a phase stream and the generator file is one for it."""
    from models.phase_gan import check_generator, read_generator_file

    settings = settings or config.complex
    backbone = family(config.encoder.family)
    if backbone.PHASE_INPUT is None:
        raise UserError(f"complex.streams: 4 needs a phase stream, which the {config.encoder.family} family does not "
                        "define (the imagebind family does); use complex.streams: 2 with this family")
    if settings.generator is None:
        raise UserError("complex.generator is not set: 4 streams need the phase generator that train_phase_gan.py "
                        "writes (bash run_complex_fusion.sh --phase-gan trains it)")
    state = read_generator_file(settings.generator)
    check_generator(state, settings.generator, generator_identity(config), backbone.PHASE_INPUT, backbone.AUDIO_INPUT)
    return companions_lib.wanted_provenance(settings.ihsv_negative, backbone.phase_settings(),
                                            checkpoint_identity(settings.generator))


def build_encoder(config: Config, device: torch.device):
    """The configured family's encoder on ``device`` (see models/families)."""
    return family(config.encoder.family).build(config, device)


@dataclass(frozen=True)
class Job:
    """One pass over a split's videos that fills named ``[N, 10, D]`` arrays of one cache
    folder: the eval-mode ``audio`` and ``vision`` of a split, or stochastic audio draws."""

    folder: str  # under the cache root; also names the job's chunk folder
    videos: VideoSet
    outputs: dict  # array name (written as <name>.npy) -> its width
    frames: bool  # whether the frames must be decoded
    encode: Callable  # (batch from collate_media, vid_names) -> {output: [B, 10, D] numpy}
    label: str  # for the progress bar
    provenance: dict | None = None  # written as the folder's provenance.json
    work: str = ""  # chunk folder under .work/ (default: ``folder``); chunks hold exactly ``outputs``
    decode: dict | None = None  # {"audio": wav -> inputs, "frames": folder -> inputs} instead of the family's

    @property
    def work_name(self) -> str:
        return self.work or self.folder


@dataclass
class _Chunk:
    """Rows of one chunk as they arrive; saved when every video is accounted for."""

    size: int
    outputs: dict  # name -> width
    positions: list = field(default_factory=list)
    rows: dict = field(default_factory=dict)  # output -> list of [1, 10, D]
    bad: list = field(default_factory=list)

    def complete(self) -> bool:
        return len(self.positions) + len(self.bad) == self.size

    def add(self, position: int, arrays: dict, i: int) -> None:
        self.positions.append(position)
        for name in self.outputs:
            self.rows.setdefault(name, []).append(arrays[name][i:i + 1])

    def save(self, path: Path, dtype: str) -> None:
        arrays = {name: (np.concatenate(self.rows[name]) if self.rows.get(name)
                         else np.zeros((0, NUM_SEGMENTS, width))).astype(dtype)
                  for name, width in self.outputs.items()}
        bad_positions = np.array([p for p, _ in self.bad], dtype=np.int64)
        bad_reasons = np.array([r for _, r in self.bad], dtype=str)
        atomic_write(path, lambda f: np.savez(f, positions=np.array(self.positions, dtype=np.int64),
                                              bad_positions=bad_positions, bad_reasons=bad_reasons, **arrays))


def _chunk_positions(index: int, size: int, total: int) -> range:
    """Positions (in the split's video list) of chunk ``index``."""
    return range(index * size, min(total, (index + 1) * size))


def _chunk_path(work: Path, index: int) -> Path:
    return work / f"chunk_{index:06d}.npz"


def _unfinished_chunks(config: Config, job: Job, cache: FeatureCache) -> list[int]:
    work = cache.work_dir(job.work_name)
    num_chunks = math.ceil(len(job.videos) / config.extract.chunk_size)
    return [c for c in range(num_chunks) if not _chunk_path(work, c).is_file()]


def _extract_chunks(config: Config, job: Job, cache: FeatureCache, encoder, process: Process,
                    unfinished: list[int]) -> None:
    videos = job.videos
    work = cache.work_dir(job.work_name)
    with writing(work):
        work.mkdir(parents=True, exist_ok=True)
    size = config.extract.chunk_size
    mine = unfinished[process.rank::process.world_size]
    positions, batches = [], []
    step = config.extract.batch_size
    for c in mine:  # batches never cross a chunk: the same videos meet whichever rank runs them
        chunk = _chunk_positions(c, size, len(videos))
        start = len(positions)
        batches += [list(range(start + i, start + min(i + step, len(chunk)))) for i in range(0, len(chunk), step)]
        positions += chunk
    if not positions:
        return
    workers = num_workers(config.extract.num_workers)
    check_shared_memory(workers, config.extract.batch_size)
    backbone = family(config.encoder.family)
    decode = job.decode or {"audio": backbone.decode_audio, "frames": backbone.decode_frames}
    dataset = MediaDataset(videos, config.data.media_root, positions, decode["audio"],
                           decode["frames"] if job.frames else None)
    loader = DataLoader(dataset, batch_sampler=batches,
                        num_workers=workers, collate_fn=collate_media,
                        pin_memory=encoder.device.type == "cuda", worker_init_fn=decoding_worker)
    chunks: dict[int, _Chunk] = {}
    label = job.label + (f" [rank {process.rank}/{process.world_size}]" if process.world_size > 1 else "")
    with tqdm(total=len(positions), unit="video", desc=f"extract {label}", dynamic_ncols=True) as bar:
        for items in loader:
            for position, reason in items["failures"]:
                if not config.extract.skip_bad_media:
                    vid = str(videos.vid_names[position])
                    raise MediaError(f"{reason}\n(video {vid!r} of the {videos.split} split; "
                                     "fix or replace the file and re-run, or set extract.skip_bad_media: true to "
                                     "leave bad videos out and count them)")
                _chunk_for(chunks, position, size, job).bad.append((position, reason))
            if items["positions"]:
                names = [str(videos.vid_names[p]) for p in items["positions"]]
                arrays = job.encode(items, names)
                _check_finite(arrays, names, config)
                for i, position in enumerate(items["positions"]):
                    _chunk_for(chunks, position, size, job).add(position, arrays, i)
            for index in [i for i, chunk in chunks.items() if chunk.complete()]:
                chunks.pop(index).save(_chunk_path(work, index), config.cache.dtype)
            bar.update(len(items["positions"]) + len(items["failures"]))


def _check_finite(arrays: dict, vid_names: list, config: Config) -> None:
    """Never cache a NaN: name the videos whose embeddings are not finite."""
    finite = np.logical_and.reduce([np.isfinite(a).all(axis=(1, 2)) for a in arrays.values()])
    if not finite.all():
        bad = [name for name, ok in zip(vid_names, finite) if not ok]
        hint = (" fp16 overflows easily; use encoder.precision: bf16 (same speed, fp32's range)"
                if config.encoder.precision == "fp16" else " check the media and the checkpoint")
        raise CacheError(f"the encoder produced NaN or infinite embeddings for {len(bad)} video(s) "
                         f"({', '.join(repr(b) for b in bad[:5])}) under encoder.precision={config.encoder.precision}; "
                         f"nothing was written for them.{hint}")


def _chunk_for(chunks: dict, position: int, size: int, job: Job) -> _Chunk:
    index = position // size
    if index not in chunks:
        chunks[index] = _Chunk(len(_chunk_positions(index, size, len(job.videos))), job.outputs)
    return chunks[index]


def _merge(job: Job, cache: FeatureCache, dtype: str) -> tuple[int, int]:
    """Chunks -> the job's final arrays, in video-list order. A new folder appears by one
    rename; arrays added to an existing folder (more audio draws) each appear by one rename."""
    videos = job.videos
    work = cache.work_dir(job.work_name)
    paths = sorted(work.glob("chunk_*.npz"))
    kept, bad = [], []
    for path in paths:
        with np.load(path) as chunk:
            kept.append(chunk["positions"])
            bad.extend(zip(chunk["bad_positions"].tolist(), chunk["bad_reasons"].tolist()))
    covered = sum(len(k) for k in kept) + len(bad)
    if covered != len(videos):
        raise CacheError(f"extraction of {job.folder} is incomplete ({covered} of {len(videos)} videos in "
                         f"{work}); re-run the extraction to finish it")
    total = covered - len(bad)
    final = cache.root / job.folder
    staging = cache.root / f".{job.folder}.merging"
    try:
        with writing(staging):
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
            _write_arrays(staging, paths, job.outputs, total, dtype)
            if job.provenance is not None:
                (staging / "provenance.json").write_text(json.dumps(job.provenance, indent=2, sort_keys=True) + "\n")
            order = np.concatenate(kept) if kept else np.zeros(0, np.int64)
            with open(staging / "videos.csv", "w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["vid_name"])
                writer.writerows([videos.vid_names[p]] for p in order)
            if bad:
                with open(staging / "excluded.csv", "w", newline="") as handle:
                    writer = csv.writer(handle)
                    writer.writerow(["vid_name", "reason"])
                    writer.writerows([videos.vid_names[p], reason] for p, reason in sorted(bad))
            for name in os.listdir(staging):
                with open(staging / name, "rb") as handle:
                    os.fsync(handle.fileno())
            _install(staging, final, job.outputs)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # a failed merge leaves only the chunks: a re-run merges again
    cache.remove_work(job.work_name)
    for stale in cache.work_dir(job.folder).parent.glob(f"{job.folder}.*"):  # chunks of an abandoned set of draws
        cache.remove_work(stale.name)
    return total, len(bad)


def _install(staging: Path, final: Path, outputs) -> None:
    if not final.exists():
        os.rename(staging, final)
        return
    for name in ("videos.csv", "excluded.csv"):  # the same videos, or the arrays would not line up
        if _read_or_empty(staging / name) != _read_or_empty(final / name):
            raise CacheError(f"{final} was extracted from other videos ({name} differs); delete the folder to "
                             "extract it again")
    for output in outputs:
        os.replace(staging / f"{output}.npy", final / f"{output}.npy")


def _read_or_empty(path: Path) -> bytes:
    return path.read_bytes() if path.exists() else b""


def _write_arrays(folder: Path, chunk_paths: list, outputs: dict, rows: int, dtype: str) -> None:
    """``<output>.npy`` (``[rows, 10, width]``) from the chunks, in chunk order. The space is
    allocated first and rows are written with plain writes, not a memory map: a full disk is an
    OSError that becomes one message, never a SIGBUS."""
    dtype = np.dtype(dtype)
    handles = {name: open(folder / f"{name}.npy", "wb") for name in outputs}
    try:
        for name, handle in handles.items():
            shape = (rows, NUM_SEGMENTS, outputs[name])
            header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
            np.lib.format.write_array_header_1_0(handle, header)
            handle.flush()
            _allocate(handle, handle.tell() + math.prod(shape) * dtype.itemsize)
        for path in chunk_paths:
            with np.load(path) as chunk:
                for name, handle in handles.items():
                    handle.write(np.ascontiguousarray(chunk[name], dtype=dtype).tobytes())
    finally:
        for handle in handles.values():
            handle.close()


def _allocate(handle, size: int) -> None:
    try:
        os.posix_fallocate(handle.fileno(), 0, size)
    except OSError as err:
        if err.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):  # file systems without it
            raise


def _check_free_space(root: Path, videos: int, widths: int, dtype: str) -> None:
    """``widths``: the summed widths of the arrays per video. Chunks and the merged arrays
    coexist for a moment: twice the final size."""
    needed = 2 * videos * NUM_SEGMENTS * widths * np.dtype(dtype).itemsize
    free = shutil.disk_usage(root).free
    if free < needed:
        raise CacheError(f"not enough disk space for the feature cache at {root}: about {needed / 1e9:.1f} GB "
                         f"needed, {free / 1e9:.1f} GB free. Free space or choose another cache.dir.")


def prepare_cache(config: Config, cache: FeatureCache) -> None:
    """Check an existing cache against this run, or give a new one its provenance."""
    remembered = cache.provenance().get("models") if cache.exists() else None
    wanted = wanted_provenance(config, remembered)
    if cache.exists():
        cache.check(wanted)
        present = {name: file for name, file in wanted["models"].items() if file is not None}
        if any((remembered or {}).get(name) != file for name, file in present.items()):
            # remember the hashes for the files as they are now (size and mtime); a read-only
            # cache is still read, its hashes computed again next time
            with contextlib.suppress(UserError):
                atomic_write_json(cache.provenance_path,
                                  {**cache.provenance(), "models": {**(remembered or {}), **present}})
        return
    with writing(cache.root):
        if cache.root.exists() and not cache.root.is_dir():
            raise CacheError(f"cache.dir {cache.root} is a file, not a folder")
        cache.root.mkdir(parents=True, exist_ok=True)
    atomic_write_json(cache.provenance_path, {**wanted, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                              "code_version": code_version(), "torch": torch.__version__})


def cache_lock(cache: FeatureCache) -> FolderLock:
    """One extraction job per cache folder (the ranks of one torchrun job count as one)."""
    with writing(cache.root):
        if cache.root.exists() and not cache.root.is_dir():
            raise CacheError(f"cache.dir {cache.root} is a file, not a folder")
        return FolderLock(cache.root, "feature extraction", "point cache.dir at another folder").acquire()


def claim_cache(config: Config, cache: FeatureCache, process: Process, refresh) -> FolderLock | None:
    """Rank 0 takes the cache's lock, checks or writes its provenance and drops the splits to
    re-extract; every rank learns whether that worked, so all stop together on a failure."""
    lock, failure = None, None
    if process.is_main:
        try:
            lock = cache_lock(cache)
            prepare_cache(config, cache)
            for split in refresh:
                cache.remove_split(split)
        except UserError as err:
            failure = err
            if lock is not None:
                lock.release()
    message = process.share(None if failure is None else str(failure))
    if failure is not None:
        raise failure
    if message is not None:
        raise CacheError(message)
    return lock


def can_extract(config: Config, splits) -> list[str]:
    """Why extraction is impossible here (empty when it is possible)."""
    reasons = list(family(config.encoder.family).missing_weights(config))
    for split in splits:
        if not (Path(config.data.media_root) / split).is_dir():
            reasons.append(f"no media for the {split} split under {Path(config.data.media_root) / split} "
                           "(see ovave_dataset_preprocessed/README.md for the layout)")
    return reasons


def extract(config: Config, splits, process: Process | None = None,
            index: AnnotationIndex | None = None, refresh=(), audio_draws: int = 0,
            companions: bool = False) -> FeatureCache:
    """Make sure the cache holds ``splits``, both vocabularies' text and, when ``audio_draws``,
    that many stochastic audio draws of the train split, and with ``companions`` the splits'
    companion streams of ``complex.*``; extract what is missing. ``refresh``: splits to drop from
    the cache and extract again (e.g. after fixing media)."""
    process = process or Process()
    index = index or AnnotationIndex.load(config.data.meta_csv, config.data.label_json)
    cache = FeatureCache(config.cache.dir)
    lock = claim_cache(config, cache, process, refresh)
    try:
        return _extract_missing(config, splits, process, index, cache, audio_draws, companions)
    finally:
        if lock is not None:
            lock.release()


def _extract_missing(config: Config, splits, process: Process, index: AnnotationIndex,
                     cache: FeatureCache, audio_draws: int, companions: bool) -> FeatureCache:
    names = list(index.all_vocabulary.names)
    todo = [split for split in splits if not cache.has_split(split)]
    need_text = missing_text(config, cache, names)
    draws = draws_to_extract(config, cache, splits, audio_draws)
    lacking_companions = companions_to_extract(config, cache, splits) if companions else []
    process.barrier()  # every rank has looked before any rank writes: they all decide alike
    if not todo and not need_text and not draws and not lacking_companions:
        return cache
    reasons = can_extract(config, todo + (["train"] if draws else []) + lacking_companions)
    if reasons:
        raise CacheError("cannot extract features: " + "; ".join(reasons))
    encoder = build_encoder(config, resolve_device(config.device, process.local_rank))
    if process.is_main:
        write_missing_text(config, cache, encoder, names)
    for split in todo:
        _run_job(config, split_job(index.videos(split), encoder), cache, encoder, process)
    if draws:
        _run_job(config, draws_job(index.videos("train"), encoder, draws, config.train.audio_drop_path),
                 cache, encoder, process)
    for split in lacking_companions:
        _run_job(config, companions_job(config, index.videos(split), encoder), cache, encoder, process)
    return cache


def companions_to_extract(config: Config, cache: FeatureCache, splits) -> list[str]:
    """The splits whose companion streams of ``complex.*`` the cache lacks (made otherwise: an error)."""
    wanted = wanted_companions(config)
    return [split for split in splits if not companions_lib.check(cache, split, wanted)]


def companions_job(config: Config, videos: VideoSet, encoder) -> Job:
    """A split's companion streams: its frames' iHSV images through the vision encoder, its audio's
    instantaneous frequency through the phase generator and the audio encoder."""
    from models.complex_fusion import ihsv_frames
    from models.phase_gan import from_mel_domain, load_generator, to_if_domain

    backbone = family(config.encoder.family)
    generator = load_generator(config.complex.generator, encoder.device, generator_identity(config),
                               backbone.PHASE_INPUT, backbone.AUDIO_INPUT)
    decode = {"audio": backbone.decode_phase,
              "frames": functools.partial(ihsv_frames, frame_window=backbone.frame_window,
                                          negative=config.complex.ihsv_negative)}

    def encode(items, names):
        instantaneous = items["audio"].to(encoder.device).flatten(0, 1)
        with torch.inference_mode():
            translated = from_mel_domain(generator(to_if_domain(instantaneous))).unflatten(0, items["audio"].shape[:2])
        phase, ihsv = encoder.segments(translated, items["frames"])
        return {"ihsv": ihsv.numpy(), "phase": phase.numpy()}

    outputs = {"ihsv": encoder.widths["vision"], "phase": encoder.widths["audio"]}
    return Job(companions_lib.folder_name(videos.split), videos, outputs, True, encode,
               f"{videos.split} companions", wanted_companions(config), decode=decode)


def write_missing_text(config: Config, cache: FeatureCache, encoder, names) -> None:
    """Encode and cache the names' text embeddings each modality lacks; a family with one text
    tower for both modalities (``SHARED_TEXT``) encodes a name once per template."""
    encoded: dict = {}
    shared = family(config.encoder.family).SHARED_TEXT
    for modality in MODALITIES:
        template = config.encoder.template(modality)
        missing = cache.missing_text(names, template, modality)
        if not missing:
            continue
        key = template if shared else (template, modality)
        if not set(missing) <= set(encoded.get(key, {})):
            encoded.setdefault(key, {}).update(zip(missing, encoder.class_names(missing, template, modality).numpy()))
        cache.write_text(missing, np.stack([encoded[key][name] for name in missing]), template, modality,
                         config.cache.dtype)


def missing_text(config: Config, cache: FeatureCache, names) -> list[str]:
    """The names (in order) whose text embedding some modality lacks under its template."""
    lacking = set().union(*(cache.missing_text(names, config.encoder.template(m), m) for m in MODALITIES))
    return [name for name in names if name in lacking]


def draws_to_extract(config: Config, cache: FeatureCache, splits, audio_draws: int) -> list[int]:
    """The train split's audio draws (indices) that a run asking for ``audio_draws`` still needs."""
    if not audio_draws or "train" not in splits:
        return []
    if not family(config.encoder.family).AUDIO_DRAWS:
        raise UserError(f"train.audio_draws: {audio_draws} needs an audio encoder with stochastic depth; the "
                        f"{config.encoder.family} family has none. Set train.audio_draws: 0")
    return audio_draws_lib.missing_draws(cache, "train", audio_draws, config.train.audio_drop_path)


def draws_job(videos: VideoSet, encoder, indices: list[int], rate: float) -> Job:
    """Stochastic audio draws ``indices`` of a split (data/audio_draws.py): audio decoded only."""
    def encode(items, names):
        return {audio_draws_lib.draw_name(k): encoder.audio_draw(items["audio"], encoder.draw_masks(k, names))
                .cpu().numpy() for k in indices}

    outputs = {audio_draws_lib.draw_name(k): encoder.widths["audio"] for k in indices}
    first, last = audio_draws_lib.draw_name(indices[0]), audio_draws_lib.draw_name(indices[-1])
    folder = audio_draws_lib.folder_name(videos.split)
    return Job(folder, videos, outputs, False, encode, f"{videos.split} audio draws {indices[0]}-{indices[-1]}",
               audio_draws_lib.wanted_provenance(rate), work=f"{folder}.{first}-{last}")


def split_job(videos: VideoSet, encoder) -> Job:
    """The eval-mode audio and vision embeddings of a split."""
    def encode(items, names):
        audio, vision = encoder.segments(items["audio"], items["frames"])
        return {"audio": audio.numpy(), "vision": vision.numpy()}

    return Job(videos.split, videos, dict(encoder.widths), True, encode, videos.split)


def _run_job(config: Config, job: Job, cache: FeatureCache, encoder, process: Process) -> None:
    """Extract the job's chunks on every rank, then merge them on rank 0."""
    if process.is_main:
        _check_free_space(cache.root, len(job.videos), sum(job.outputs.values()), config.cache.dtype)
    start = time.perf_counter()
    unfinished = _unfinished_chunks(config, job, cache)
    process.barrier()  # the same list on every rank, taken before anyone adds a chunk
    _extract_chunks(config, job, cache, encoder, process, unfinished)
    process.barrier()
    if process.is_main:
        kept, excluded = _merge(job, cache, config.cache.dtype)
        rate = len(job.videos) / max(time.perf_counter() - start, 1e-9)
        folder = cache.root / job.folder
        note = (f", {excluded} left out (see {folder / 'excluded.csv'}; once they are fixed, "
                f"{refresh_hint(job.videos.split)})" if excluded else "")
        print(f"{job.label}: {kept} videos cached in {folder} ({rate:.1f} videos/s){note}")
    process.barrier()


def ensure_features(config: Config, splits, index: AnnotationIndex, audio_draws: int = 0,
                    companions: bool = False) -> FeatureCache:
    """The cache for ``splits`` (and ``audio_draws`` draws of the train split, and with
    ``companions`` the splits' companion streams of ``complex.*``), extracting first when it lacks
    them and media + checkpoint are here."""
    cache = FeatureCache(config.cache.dir)
    if cache.exists():
        cache.check(wanted_provenance(config, cache.provenance().get("models")))
    missing = [s for s in splits if not cache.has_split(s)]
    draws = draws_to_extract(config, cache, splits, audio_draws)
    lacking_companions = companions_to_extract(config, cache, splits) if companions else []
    if not missing and not draws and not lacking_companions and not missing_text(config, cache,
                                                                                   index.all_vocabulary.names):
        return cache
    lacking = ", ".join(missing + ([f"{len(draws)} audio draws of train"] if draws else [])
                        + [f"the companion streams of {split}" for split in lacking_companions]) or "the text embeddings"
    missing += ["train"] if draws and "train" not in missing else []
    missing += [split for split in lacking_companions if split not in missing]
    reasons = can_extract(config, missing)
    if reasons:
        raise UserError(
            f"the feature cache at {cache.root} lacks {lacking} and they "
            "cannot be extracted here:\n  - " + "\n  - ".join(reasons)
            + f"\nEither place the media under {config.data.media_root} and the weights where encoder.* says, "
            "or point cache.dir at an existing cache.")
    return extract(config, missing, index=index, audio_draws=audio_draws, companions=companions)
