"""A video file as consecutive 1-second segments, streamed: for second t, the frame on screen at
t + 0.5 s (the last frame starting at or before it) and the audio resampled to 16 kHz mono
16-bit. The benchmark's preparation (data/raw_videos.py) takes the first ten of these; a
localizer can take all of them without ever holding a whole video.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

import av
import numpy as np

SAMPLE_RATE = 16000
MIDPOINT = 0.5
EPSILON = 1e-6  # frame times are rationals turned into floats
END_TOLERANCE = 1e-3  # a picture that stops a millisecond short of a second still covers it


def _duration(frame, stream) -> float:
    return float(frame.duration * frame.time_base) if frame.duration else 1 / float(stream.average_rate or 25)


class FramesBySecond:
    """Iterates ``(t, frame)`` for every whole second t the picture covers, the frame being the
    one on screen at t + 0.5 s (a video whose first frame starts later shows that one); stops
    after ``limit`` seconds. Afterwards ``picture_end`` is where the decoded picture ended."""

    def __init__(self, container, limit: int | None = None):
        self.container, self.limit = container, limit
        self.picture_end = 0.0

    def __iter__(self) -> Iterator[tuple[int, av.VideoFrame]]:
        stream = self.container.streams.video[0]
        fixed: deque = deque()  # seconds whose midpoint frame is known, waiting for the picture to cover them
        second, last, emitted = 0, None, 0
        for frame in self.container.decode(stream):
            if frame.time is None:
                continue
            while frame.time > second + MIDPOINT + EPSILON:  # this frame starts after the midpoint
                fixed.append((second, last or frame))
                second += 1
            last = frame
            self.picture_end = frame.time + _duration(frame, stream)
            while fixed and self.picture_end >= fixed[0][0] + 1 - END_TOLERANCE:
                yield fixed.popleft()
                emitted += 1
                if self.limit is not None and emitted >= self.limit:
                    return
        while last is not None and self.picture_end >= second + 1 - END_TOLERANCE:
            fixed.append((second, last))  # the last frame stays on screen to the end
            second += 1
        while fixed and self.picture_end >= fixed[0][0] + 1 - END_TOLERANCE and (
                self.limit is None or emitted < self.limit):
            yield fixed.popleft()
            emitted += 1


def audio_samples(container, limit_samples: int | None = None) -> Iterator[np.ndarray]:
    """The audio track resampled to 16 kHz mono int16, in the pieces the resampler gives; stops
    once ``limit_samples`` have been given."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    given = 0
    for frame in container.decode(container.streams.audio[0]):
        for out in resampler.resample(frame):
            piece = out.to_ndarray().reshape(-1)
            given += piece.size
            yield piece
        if limit_samples is not None and given >= limit_samples:
            return
    for out in resampler.resample(None):
        yield out.to_ndarray().reshape(-1)


def audio_by_second(container) -> Iterator[tuple[int, np.ndarray]]:
    """``(t, [16000] int16)`` for every whole second of audio (a last partial second is dropped)."""
    pending, second = np.zeros(0, np.int16), 0
    for piece in audio_samples(container):
        pending = np.concatenate([pending, piece])
        while pending.size >= SAMPLE_RATE:
            yield second, pending[:SAMPLE_RATE]
            pending, second = pending[SAMPLE_RATE:], second + 1
