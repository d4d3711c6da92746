"""A video file streamed as windows of consecutive 1 s segments (data/video_segments.py), each
prepared for a family's encoder in a decoding worker: memory does not grow with the duration."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from data.annotations import NUM_SEGMENTS
from data.video_segments import FramesBySecond, audio_by_second

WINDOW = NUM_SEGMENTS  # seconds decoded together: one benchmark clip


@dataclass
class Window:
    """Consecutive seconds of one video, prepared for the encoder (or why the video failed)."""

    video: int
    audio: torch.Tensor | None
    frames: torch.Tensor | None
    last: bool
    status: str = "ok"
    reason: str = ""
    duration: float = 0.0


def video_windows(video: int, path: Path, backbone) -> Iterator[Window]:
    """Yield the video's windows of ``WINDOW`` seconds, prepared by ``backbone.audio_window`` and
    ``backbone.frame_window`` (a family's); a video that cannot be used yields one
    Window saying why (not_a_video, no_picture, no_audio, too_short, undecodable)."""
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
            frames = FramesBySecond(pictures)
            seconds = zip(frames, audio_by_second(sounds))
            images, samples, count = [], [], 0
            for (_, frame), (_, audio) in seconds:
                images.append(frame.to_image())
                samples.append(audio)
                count += 1
                if len(images) == WINDOW:
                    yield _window(video, backbone, images, samples, False)
                    images, samples = [], []
            if count == 0:
                yield Window(video, None, None, True, "too_short",
                             "less than one whole second in which both picture and sound exist")
                return
            window = _window(video, backbone, images, samples, True) if images else Window(video, None, None, True)
            window.duration = round(frames.picture_end, 3)
            yield window
    except (av.FFmpegError, OSError, ValueError, IndexError) as err:
        yield Window(video, None, None, True, "undecodable", f"decoding {path} failed: {type(err).__name__}: {err}")


def _window(video: int, backbone, images, samples, last: bool) -> Window:
    waveform = np.concatenate(samples).astype(np.float32) / 32768  # as a 16-bit WAV reads back
    return Window(video, backbone.audio_window(waveform), backbone.frame_window(images), last)


class Windows(IterableDataset):
    """The videos to encode, each decoded window by window by one worker process."""

    def __init__(self, jobs: list[tuple[int, Path]], backbone):
        self.jobs = jobs
        self.audio_window, self.frame_window = backbone.audio_window, backbone.frame_window  # picklable

    def __iter__(self):
        info = get_worker_info()
        mine = self.jobs if info is None else self.jobs[info.id::info.num_workers]
        for video, path in mine:
            yield from video_windows(video, path, self)
