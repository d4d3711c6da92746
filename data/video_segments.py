"""A video file as consecutive 1-second segments on one clock, streamed: what a player shows.

Picture and sound are read on the container's clock. Second ``k`` covers ``[zero + k, zero + k + 1)``
where ``zero`` is the earliest start of the picture or the sound, so reported times count from
there (a file whose streams both start at 5 s of the container's clock starts at 0; one whose
sound starts 3 s after its picture has its first segment at 3). A segment is a second in which
both picture and sound exist; its frame is the one on screen at its midpoint, turned as the
file's display matrix says (a phone's portrait clip stays portrait), and its audio is that same
second resampled to 16 kHz mono 16-bit. The benchmark's preparation (data/raw_videos.py) takes
the first ten seconds of picture, with the sound of those seconds (silence where there is none);
the localizer takes every segment, never holding a whole video.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import av
import numpy as np
from av.sidedata.sidedata import Type as SideDataType
from PIL import Image

SAMPLE_RATE = 16000
MIDPOINT = 0.5
EPSILON = 1e-6  # frame times are rationals turned into floats
# A stream that starts or ends this close to a second's edge covers that second (codec delays,
# priming samples, a last frame a few milliseconds short).
TOLERANCE = 0.05
# The display matrix's rotation/flip part (a, b, c, d; row vectors: x' = a x + c y, y' = b x + d y,
# y pointing down) -> the PIL transpose a player applies.
_ORIENTATIONS = {
    (1, 0, 0, 1): None,
    (-1, 0, 0, 1): Image.Transpose.FLIP_LEFT_RIGHT,
    (1, 0, 0, -1): Image.Transpose.FLIP_TOP_BOTTOM,
    (-1, 0, 0, -1): Image.Transpose.ROTATE_180,
    (0, 1, -1, 0): Image.Transpose.ROTATE_270,  # 90 degrees clockwise (PyAV's rotation -90)
    (0, -1, 1, 0): Image.Transpose.ROTATE_90,  # 90 degrees counter-clockwise
    (0, 1, 1, 0): Image.Transpose.TRANSPOSE,
    (0, -1, -1, 0): Image.Transpose.TRANSVERSE,
}


def display_transpose(frame) -> Image.Transpose | None:
    """How a player turns ``frame``: the rotation and mirroring of its display matrix (None when
    it has none, or one that only scales or shears)."""
    for item in frame.side_data:
        if item.type == SideDataType.DISPLAYMATRIX:
            matrix = np.frombuffer(bytes(item), dtype=np.int32)
            key = tuple(int(np.sign(v)) if abs(v) > 2 ** 15 else 0 for v in matrix[[0, 1, 3, 4]])
            return _ORIENTATIONS.get(key)
    return None


def display_image(frame) -> Image.Image:
    """The frame as a player shows it."""
    image = frame.to_image()
    transpose = display_transpose(frame)
    return image if transpose is None else image.transpose(transpose)


def _duration(frame, stream) -> float:
    return float(frame.duration * frame.time_base) if frame.duration else 1 / float(stream.average_rate or 25)


def _packet_end(container, stream, end: float) -> tuple[float, Exception | None]:
    """The end of ``stream``'s remaining packets on the container's clock (read, not decoded), at
    least ``end``; a read error stops there."""
    try:
        for packet in container.demux(stream):
            if packet.pts is not None:
                end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base))
    except (av.FFmpegError, OSError, ValueError) as err:
        return end, err
    return end, None


@dataclass
class Segment:
    index: int  # whole seconds from the clock's zero: the segment covers [index, index + 1)
    frame: av.VideoFrame  # on screen at index + 0.5
    samples: np.ndarray  # [16000] int16

    def image(self) -> Image.Image:
        return display_image(self.frame)


class _Stream:
    """One stream of the file, decoded ahead as far as asked; a decoding error ends it early
    (kept in ``error``). Subclasses keep what they decode (``_take``) and know their ``end``."""

    def __init__(self, container, stream):
        self.container, self.stream = container, stream
        self._frames = container.decode(stream)
        self.start: float | None = None
        self.done = False
        self.error: Exception | None = None
        self.drained_end = 0.0
        self.read_until(float("-inf"))

    @property
    def end(self) -> float:
        raise NotImplementedError

    def _take(self, frame) -> None:
        """Keep a decoded frame (None: the stream ended)."""
        raise NotImplementedError

    def read_until(self, until: float) -> None:
        """Decode until the stream is known to reach ``until`` (or ends)."""
        while not self.done and (self.start is None or self.end < until):
            try:
                frame = next(self._frames, None)
            except (av.FFmpegError, OSError, ValueError) as err:
                frame, self.error = None, err
            self.done = frame is None
            self._take(frame)

    def covers(self, low: float, high: float) -> bool:
        self.read_until(high)
        return self.start is not None and self.start <= low + TOLERANCE and self.end >= high - TOLERANCE

    def ended_before(self, high: float) -> bool:
        self.read_until(high)
        return self.done and self.end < high - TOLERANCE

    def drain(self) -> None:
        """Learn where the stream ends without decoding the rest of it."""
        if not self.done:
            self.drained_end, error = _packet_end(self.container, self.stream, self.end)
            self.error, self.done = self.error or error, True


class _Pictures(_Stream):
    """The picture's frames with their times; frames before the one on screen are dropped."""

    def __init__(self, container):
        self.window: deque = deque()  # (time, frame), oldest first
        self.last_end = 0.0
        super().__init__(container, container.streams.video[0])

    @property
    def end(self) -> float:
        return max(self.drained_end, self.last_end)

    def _take(self, frame) -> None:
        if frame is not None and frame.time is not None:
            self.start = frame.time if self.start is None else self.start
            self.window.append((frame.time, frame))
            self.last_end = max(self.last_end, frame.time + _duration(frame, self.stream))

    def at(self, moment: float) -> av.VideoFrame:
        """The frame on screen at ``moment``; frames before it are dropped (times only increase)."""
        while len(self.window) > 1 and self.window[1][0] <= moment + EPSILON:
            self.window.popleft()
        return self.window[0][1]


class _Sound(_Stream):
    """The sound resampled to 16 kHz mono int16, sample ``i`` at ``start + i / 16000`` on the
    container's clock; older samples are dropped."""

    def __init__(self, container):
        self.resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        self.buffer = np.zeros(0, np.int16)
        self.buffer_at = 0  # sample index of buffer[0]
        super().__init__(container, container.streams.audio[0])

    @property
    def end(self) -> float:
        return max(self.drained_end, (self.start or 0.0) + (self.buffer_at + self.buffer.size) / SAMPLE_RATE)

    def _take(self, frame) -> None:
        if frame is not None and self.start is None:
            self.start = float(frame.time or 0.0)
        pieces = self.resampler.resample(frame)  # None flushes it
        self.buffer = np.concatenate([self.buffer, *(p.to_ndarray().reshape(-1) for p in pieces)])

    def second(self, low: float) -> np.ndarray:
        """The 16000 samples from ``low`` on (silence where there is no sound); earlier ones are dropped."""
        self.read_until(low + 1)
        if self.start is None:
            return np.zeros(SAMPLE_RATE, np.int16)
        first = int(round((low - self.start) * SAMPLE_RATE))
        out = np.zeros(SAMPLE_RATE, np.int16)
        lo, hi = max(first, self.buffer_at), min(first + SAMPLE_RATE, self.buffer_at + self.buffer.size)
        if hi > lo:
            out[lo - first:hi - first] = self.buffer[lo - self.buffer_at:hi - self.buffer_at]
        keep = max(0, first + SAMPLE_RATE - self.buffer_at)
        self.buffer, self.buffer_at = self.buffer[keep:], self.buffer_at + min(keep, self.buffer.size)
        return out


class VideoSeconds:
    """The segments of a file (see the module's docstring). ``pictures`` and ``sounds`` are two
    containers of the same file, read side by side. ``require_sound=False`` keeps every second of
    picture, silent where there is no sound (the benchmark's preparation). Afterwards ``duration``
    (the playing length on the segments' clock), ``declared`` (what the container says, or None)
    and ``error`` (a decoding error that ended a stream early) describe the file."""

    def __init__(self, pictures, sounds, require_sound: bool = True):
        self.pictures, self.sound = _Pictures(pictures), _Sound(sounds)
        self.require_sound = require_sound
        starts = [s for s in (self.pictures.start, self.sound.start) if s is not None]
        self.zero = min(starts) if starts else 0.0
        # What the container declares: its end on the container's clock, or its length from the
        # start (formats differ); read as the end, the shorter of the two.
        self.declared = pictures.duration / av.time_base if pictures.duration else None

    def __iter__(self) -> Iterator[Segment]:
        k = 0
        while True:
            low = self.zero + k
            if self.pictures.ended_before(low + 1) or (self.require_sound and self.sound.ended_before(low + 1)):
                self.pictures.drain()
                self.sound.drain()
                return
            covered = self.pictures.covers(low, low + 1) and (not self.require_sound or
                                                               self.sound.covers(low, low + 1))
            frame = self.pictures.at(low + MIDPOINT) if self.pictures.window else None  # drops older frames
            samples = self.sound.second(low)  # drops older samples
            if covered:
                yield Segment(k, frame, samples)
            k += 1

    @property
    def duration(self) -> float:
        return max(0.0, self.end - self.zero)

    @property
    def end(self) -> float:
        """Where the picture or the sound, the later, ends on the container's clock."""
        return max(self.pictures.end, self.sound.end if self.sound.start is not None else 0.0)

    @property
    def picture_length(self) -> float:
        return max(0.0, self.pictures.end - self.zero)

    @property
    def error(self) -> Exception | None:
        return self.pictures.error or self.sound.error
