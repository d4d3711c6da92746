"""A video file streamed as windows of consecutive 1 s segments (data/video_segments.py), each
prepared for a family's encoder in a decoding worker: memory does not grow with the duration."""

from __future__ import annotations

import multiprocessing
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from data.annotations import NUM_SEGMENTS
from data.video_segments import NoSuchTrack, VideoSeconds

WINDOW = NUM_SEGMENTS  # seconds decoded together: one benchmark clip
PARTIAL_GAP = 1.0  # seconds of declared length that may not decode before a file counts as cut


@dataclass
class Window:
    """Consecutive segments of one video, prepared for the encoder (or why the video failed).
    The last window of a video carries its duration and status: ``ok``, or ``partial`` when the
    decodable content stops well short of what the container declares (its segments still count)."""

    video: int
    audio: torch.Tensor | None
    frames: torch.Tensor | None
    last: bool
    status: str = "ok"
    reason: str = ""
    duration: float = 0.0
    starts: list = field(default_factory=list)  # each segment's start, in whole seconds on the file's clock
    first: int = 0  # how many segments of the video come before this window
    track: dict | None = None  # the last window: which audio track was read (data/video_segments.describe_track)
    gaps: list = field(default_factory=list)  # the last window: where the sound was missing (silence), seconds


def video_windows(video: int, path: Path, backbone, skip: int = 0, track: int | None = None) -> Iterator[Window]:
    """Yield the video's windows of ``WINDOW`` segments, prepared by ``backbone.audio_window`` and
    ``backbone.frame_window`` (a family's), from segment ``skip`` on (a multiple of ``WINDOW``:
    those before were kept by an interrupted run; they are decoded, not prepared), the sound from
    audio track ``track`` (None: the default one); a video that cannot be used yields one Window
    saying why (not_a_video, no_picture, no_audio, too_short, undecodable)."""
    try:
        pictures, sounds = av.open(str(path)), av.open(str(path))
    except (av.FFmpegError, OSError, ValueError) as err:
        yield Window(video, None, None, True, "not_a_video", f"{path} is not a video PyAV can open: "
                                                             f"{type(err).__name__}: {err}")
        return
    try:
        with pictures, sounds:
            if not pictures.streams.video:
                yield Window(video, None, None, True, "no_picture", "no video stream")
                return
            if not sounds.streams.audio:
                yield Window(video, None, None, True, "no_audio", "no audio track")
                return
            try:
                seconds = VideoSeconds(pictures, sounds, track=track)
            except NoSuchTrack as err:
                yield Window(video, None, None, True, "no_audio", str(err))
                return
            segments, count = [], 0
            for segment in seconds:
                count += 1
                if count <= skip:
                    continue
                segments.append(segment)
                if len(segments) == WINDOW:
                    yield _window(video, backbone, segments, False, count - WINDOW)
                    segments = []
            if count == 0:
                if seconds.error is not None:
                    raise seconds.error
                yield Window(video, None, None, True, "too_short",
                             "less than one whole second in which both picture and sound exist")
                return
            window = (_window(video, backbone, segments, True, count - len(segments)) if segments
                      else Window(video, None, None, True, first=count))
            window.duration = round(seconds.duration, 3)
            window.status, window.reason = _completeness(seconds)
            window.track, window.gaps = seconds.track, seconds.gaps
            yield window
    except (av.FFmpegError, OSError, ValueError, IndexError) as err:
        yield Window(video, None, None, True, "undecodable", f"decoding {path} failed: {type(err).__name__}: {err}")


def _completeness(seconds: VideoSeconds) -> tuple[str, str]:
    """``partial``, with the declared and decoded lengths, when the picture and sound stop well
    short of what the container declares (a cut or damaged file)."""
    declared = seconds.declared
    if declared is not None and seconds.end < declared - PARTIAL_GAP:
        error = f"; {type(seconds.error).__name__}: {seconds.error}" if seconds.error is not None else ""
        return "partial", (f"the container declares {declared:.1f} s but picture and sound stop at "
                           f"{seconds.end:.1f} s (a cut or damaged file); the decodable seconds were localized{error}")
    return "ok", ""


def _window(video: int, backbone, segments, last: bool, first: int) -> Window:
    waveform = np.concatenate([s.samples for s in segments]).astype(np.float32) / 32768  # as a 16-bit WAV reads back
    images = [s.image() for s in segments]
    return Window(video, backbone.audio_window(waveform), backbone.frame_window(images), last,
                  starts=[s.index for s in segments], first=first)


def worker_context():
    """How decoding workers start: from a clean server process (``forkserver``), never as a fork of
    a parent that holds FFmpeg objects, whose scaler, filter and codec threads do not exist in the
    child (freeing such an object there waits on them forever). The server is started, and waited
    for, with Ctrl-C ignored, which it and its workers inherit: the process that started them
    handles Ctrl-C and ends them (one pressed during those first seconds is not seen)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["data.video_windows"])
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            probe = context.Process(target=_ready)
            probe.start()
            probe.join()
        finally:
            signal.signal(signal.SIGINT, previous)
    return context


def _ready() -> None:
    """What the probe process runs: nothing (it shows the server is ready)."""


class Windows(IterableDataset):
    """The videos to encode (``(video, path, segments to skip)``), each decoded window by window
    by one worker process. Each worker beats before every window (``beats``: the video it is on
    and when, shared with the parent), so a worker that stops answering can be named."""

    def __init__(self, jobs: list[tuple[int, Path, int]], backbone, track: int | None = None, workers: int = 0):
        self.jobs, self.track = jobs, track
        self.audio_window, self.frame_window = backbone.audio_window, backbone.frame_window  # picklable
        self.beats = multiprocessing.RawArray("d", 2 * max(1, workers))  # per worker: video, monotonic time

    def _beat(self, worker: int, video: int) -> None:
        self.beats[2 * worker], self.beats[2 * worker + 1] = video, time.monotonic()

    def __iter__(self):
        info = get_worker_info()
        worker = 0 if info is None else info.id
        mine = self.jobs if info is None else self.jobs[info.id::info.num_workers]
        for video, path, skip in mine:
            windows = video_windows(video, path, self, skip, self.track)
            while True:
                self._beat(worker, video)
                window = next(windows, None)
                if window is None:
                    break
                yield window
        self._beat(worker, -1)

    def silent(self, seconds: float) -> list[int]:
        """The videos of the workers that have not beaten for ``seconds`` (the loader's wait began
        after their last beat), or else of the one silent longest."""
        now = time.monotonic()
        ages = {int(self.beats[i]): now - self.beats[i + 1] for i in range(0, len(self.beats), 2)
                if self.beats[i] >= 0 and self.beats[i + 1]}
        if not ages:
            return []
        limit = min(seconds, max(ages.values()))
        return [video for video, age in ages.items() if age >= limit]
