"""Prepared videos (``{root}/{split}/audio|video/...``) decoded into encoder inputs by worker
processes that end with their parent, and how many such workers a machine affords."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import torch
from torch.utils.data import Dataset

from common.errors import UserError
from common.processes import die_with_parent
from data.annotations import VideoSet
from data.preprocess import NUM_SEGMENTS, MediaError


def media_paths(media_root, split: str, category: str, vid: str) -> tuple[Path, Path]:
    """``{root}/{split}/audio/{class}/{vid}.wav`` and ``{root}/{split}/video/{class}/{vid}/``."""
    root = Path(media_root) / split
    return root / "audio" / category / f"{vid}.wav", root / "video" / category / vid


class MediaDataset(Dataset):
    """Videos of one split, decoded into encoder inputs (the frames only when ``frames``); a bad
    video becomes a failure record."""

    def __init__(self, videos: VideoSet, media_root, positions, decode_audio, decode_frames=None):
        self.videos = videos
        self.media_root = media_root
        self.positions = list(positions)
        self.decode_audio = decode_audio
        self.decode_frames = decode_frames

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, i):
        position = self.positions[i]
        wav, frames = media_paths(self.media_root, self.videos.split, self.videos.categories[position],
                                  self.videos.vid_names[position])
        try:
            return (position, self.decode_audio(wav),
                    self.decode_frames(frames) if self.decode_frames is not None else None, "")
        except MediaError as err:
            return position, None, None, str(err)


def collate_media(samples):
    good = [s for s in samples if not s[3]]
    return {
        "positions": [s[0] for s in good],
        "audio": torch.stack([s[1] for s in good]) if good else None,
        "frames": torch.stack([s[2] for s in good]) if good and good[0][2] is not None else None,
        "failures": [(s[0], s[3]) for s in samples if s[3]],
    }


def decoding_worker(_):
    """``worker_init_fn`` of the decoding workers."""
    die_with_parent()
    torch.set_num_threads(1)  # workers decode; the main process owns the cores' math


RESERVED_CORES = 2  # for the process that feeds the GPU (and its data-loader threads)
BYTES_PER_VIDEO = 4 * (NUM_SEGMENTS * 128 * 204 + NUM_SEGMENTS * 3 * 224 * 224)  # float32 clips + frames
PREFETCH_FACTOR = 2  # DataLoader's default: batches waiting per worker


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. a container's or a job's share)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def num_workers(configured: int | None) -> int:
    """``extract.num_workers``, or by default the usable cores but a couple, shared among the
    torchrun ranks of this node (decoding takes 55-175 ms per video and core, so a GPU needs
    many workers)."""
    if configured is not None:
        return configured
    ranks_here = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(1, (usable_cores() - RESERVED_CORES) // ranks_here)


def shared_memory_free() -> int | None:
    """Free bytes in /dev/shm, through which worker processes hand over their batches (None: no such folder)."""
    return shutil.disk_usage("/dev/shm").free if os.path.isdir("/dev/shm") else None


def check_shared_memory(workers: int, batch_size: int) -> None:
    if workers == 0:
        return
    needed = workers * PREFETCH_FACTOR * batch_size * BYTES_PER_VIDEO
    free = shared_memory_free()
    if free is not None and free < needed:
        raise UserError(
            f"/dev/shm has {free / 2 ** 20:.0f} MB free, but {workers} decoding workers with extract.batch_size="
            f"{batch_size} hand over about {needed / 2 ** 20:.0f} MB of batches through it. Give the container "
            f"more shared memory (docker run --shm-size={max(1, math.ceil(2 * needed / 2 ** 30))}g), or lower "
            "extract.num_workers or extract.batch_size (num_workers: 0 decodes in this process).")
