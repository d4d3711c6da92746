"""A video file as consecutive 1-second segments on one clock, streamed: what a player shows.

Picture and sound are read on the container's clock. Second ``k`` covers ``[zero + k, zero + k + 1)``
where ``zero`` is the earliest start of the picture or the sound, so reported times count from
there (a file whose streams both start at 5 s of the container's clock starts at 0; one whose
sound starts 3 s after its picture has its first segment at 3). A segment is a second in which
both picture and sound exist; its frame is the one on screen at its midpoint, as a player shows
it (turned as the file's display matrix says, stretched to its display aspect when its pixels are
not square), and its audio is that same second resampled to 16 kHz mono 16-bit.

Sound is placed by its timestamps: where the packets stop and resume (a dropout), the missing
time is silence and is listed in ``gaps``; what follows keeps its own time. The audio track is
the one marked default (what a player plays), else the first, unless the caller names one. When
the clock restarts (recordings joined into one file: the timestamps jump back, or in a stream
format with discontinuities far ahead), both streams continue after what came before, shifted by
one shared offset, as a player plays on.

The benchmark's preparation (data/raw_videos.py) takes the first ten seconds of picture, with
the sound of those seconds (silence where there is none); the localizer takes every segment,
never holding a whole video. Frames are converted on one thread by a scaler of this process's
own: FFmpeg's automatic slice threads cannot survive a fork into a decoding worker.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

import av
import numpy as np
from av.format import Flags as FormatFlags
from av.sidedata.sidedata import Type as SideDataType
from av.stream import Disposition
from av.video.reformatter import VideoReformatter
from PIL import Image

SAMPLE_RATE = 16000
MIDPOINT = 0.5
EPSILON = 1e-6  # frame times are rationals turned into floats
# A stream that starts or ends this close to a second's edge covers that second (codec delays,
# priming samples, a last frame a few milliseconds short).
TOLERANCE = 0.05
AUDIO_JITTER = 0.02  # sound this far from where the previous frame ended is still contiguous
RESTART_BACK = 0.5  # timestamps jumping back this far: the clock restarted (joined recordings)
RESTART_AHEAD = 10.0  # in formats with discontinuities (MPEG-TS, PS), a jump this far ahead too
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


class NoSuchTrack(ValueError):
    """The audio track asked for is not in the file."""


def display_transpose(frame) -> Image.Transpose | None:
    """How a player turns ``frame``: the rotation and mirroring of its display matrix (None when
    it has none, or one that only scales or shears)."""
    item = frame.side_data.get(SideDataType.DISPLAYMATRIX)
    if item is None:
        return None
    matrix = np.frombuffer(bytes(item), dtype=np.int32)
    key = tuple(int(np.sign(v)) if abs(v) > 2 ** 15 else 0 for v in matrix[[0, 1, 3, 4]])
    return _ORIENTATIONS.get(key)


def display_size(width: int, height: int, pixel_aspect) -> tuple[int, int]:
    """The picture's size on screen: a wide pixel widens it, a tall one heightens it (never
    shrunk), as browsers and players size a video with non-square pixels."""
    if not pixel_aspect or pixel_aspect == 1:
        return width, height
    if pixel_aspect > 1:
        return int(round(width * pixel_aspect)), height
    return width, int(round(height / pixel_aspect))


def audio_track(container, choice: int | None):
    """The audio stream to read: ``choice`` (its number among the audio tracks, from 0), or the one
    marked default, else the first; None when the file has no sound."""
    tracks = list(container.streams.audio)
    if choice is not None:
        if choice >= len(tracks):
            raise NoSuchTrack(f"video.audio_track={choice}, but the file has {len(tracks)} audio track(s) "
                              f"(numbered from 0)")
        return tracks[choice]
    if not tracks:
        return None
    return next((t for t in tracks if t.disposition & Disposition.default), tracks[0])


def describe_track(container, stream) -> dict:
    """What the outputs say of the audio track read: its number among the audio tracks, how many
    there are, whether it is marked default, its language and title where the file names them."""
    tracks = list(container.streams.audio)
    record = {"track": tracks.index(stream), "tracks": len(tracks),
              "default": bool(stream.disposition & Disposition.default)}
    for key in ("language", "title"):
        value = stream.metadata.get(key) if key == "title" else stream.language
        if value:
            record[key] = value
    return record


def _duration(frame, stream) -> float:
    return float(frame.duration * frame.time_base) if frame.duration else 1 / float(stream.average_rate or 25)


class Clock:
    """The offsets that join the pieces of a file whose clock restarts: the k-th restart is given
    one offset, set by the stream that meets it first, so picture and sound stay in step after it."""

    def __init__(self, container):
        self.offsets: list[float] = []
        self.jumps_ahead = bool(container.format.flags & FormatFlags.ts_discont.value)

    def restarted(self, time: float, previous: float) -> bool:
        return time < previous - RESTART_BACK or (self.jumps_ahead and time > previous + RESTART_AHEAD)

    def offset(self, k: int, proposed: float) -> float:
        if k == len(self.offsets):
            self.offsets.append(proposed)
        return self.offsets[k]


@dataclass
class Segment:
    index: int  # whole seconds from the clock's zero: the segment covers [index, index + 1)
    frame: av.VideoFrame  # on screen at index + 0.5
    samples: np.ndarray  # [16000] int16
    pictures: "_Pictures" = field(repr=False)

    def image(self) -> Image.Image:
        return self.pictures.image(self.frame)


class _Stream:
    """One stream of the file, decoded ahead as far as asked; a decoding error ends it early
    (kept in ``error``). Timestamps are continued across restarts of the clock. Subclasses keep
    what they decode (``_take``) and know their ``end``."""

    def __init__(self, container, stream, clock: Clock):
        self.container, self.stream, self.clock = container, stream, clock
        self._frames = container.decode(stream)
        self.start: float | None = None
        self.done = False
        self.error: Exception | None = None
        self.drained_end = 0.0
        self.restarts, self.shift = 0, 0.0  # restarts met so far; the offset of the current piece
        self.last_time: float | None = None
        self.read_until(float("-inf"))

    @property
    def end(self) -> float:
        raise NotImplementedError

    def _take(self, frame, time: float | None) -> None:
        """Keep a decoded frame at ``time`` on the joined clock (None: the stream ended)."""
        raise NotImplementedError

    def _joined(self, raw: float, end: float) -> float:
        """``raw`` (a timestamp of the container) on the joined clock; a restart continues after ``end``."""
        if self.last_time is not None and self.clock.restarted(raw + self.shift, self.last_time):
            self.shift = self.clock.offset(self.restarts, end - raw)
            self.restarts += 1
        self.last_time = raw + self.shift
        return self.last_time

    def read_until(self, until: float) -> None:
        """Decode until the stream is known to reach ``until`` (or ends)."""
        while not self.done and (self.start is None or self.end < until):
            try:
                frame = next(self._frames, None)
            except (av.FFmpegError, OSError, ValueError) as err:
                frame, self.error = None, err
            self.done = frame is None
            if frame is not None and frame.time is None:
                continue
            self._take(frame, None if frame is None else self._joined(float(frame.time), self.end))

    def covers(self, low: float, high: float) -> bool:
        self.read_until(high)
        return self.start is not None and self.start <= low + TOLERANCE and self.end >= high - TOLERANCE

    def ended_before(self, high: float) -> bool:
        self.read_until(high)
        return self.done and self.end < high - TOLERANCE

    def drain(self) -> None:
        """Learn where the stream ends without decoding the rest of it (its packets, on the joined clock)."""
        if self.done:
            return
        end = self.end
        try:
            for packet in self.container.demux(self.stream):
                if packet.pts is not None:
                    time = self._joined(float(packet.pts * packet.time_base), end)
                    end = max(end, time + float((packet.duration or 0) * packet.time_base))
        except (av.FFmpegError, OSError, ValueError) as err:
            self.error = self.error or err
        self.drained_end, self.done = end, True


class _Pictures(_Stream):
    """The picture's frames with their times; frames before the one on screen are dropped."""

    def __init__(self, container, clock: Clock):
        self.window: deque = deque()  # (time, frame), oldest first
        self.last_end = 0.0
        self.scaler = VideoReformatter()
        stream = container.streams.video[0]
        self.pixel_aspect = stream.sample_aspect_ratio
        super().__init__(container, stream, clock)

    @property
    def end(self) -> float:
        return max(self.drained_end, self.last_end)

    def _take(self, frame, time) -> None:
        if frame is not None:
            self.start = time if self.start is None else self.start
            self.window.append((time, frame))
            self.last_end = max(self.last_end, time + _duration(frame, self.stream))

    def at(self, moment: float) -> av.VideoFrame:
        """The frame on screen at ``moment``; frames before it are dropped (times only increase)."""
        while len(self.window) > 1 and self.window[1][0] <= moment + EPSILON:
            self.window.popleft()
        return self.window[0][1]

    def image(self, frame) -> Image.Image:
        """``frame`` as a player shows it: at its display aspect, then turned by its display matrix."""
        width, height = display_size(frame.width, frame.height, self.pixel_aspect)
        rgb = self.scaler.reformat(frame, width=width, height=height, format="rgb24", threads=1)
        image = Image.fromarray(rgb.to_ndarray())
        transpose = display_transpose(frame)
        return image if transpose is None else image.transpose(transpose)


class _Sound(_Stream):
    """The sound resampled to 16 kHz mono int16, sample ``i`` at ``start + i / 16000`` on the
    joined clock, each run of contiguous frames placed at its own time; older samples are dropped."""

    def __init__(self, container, stream, clock: Clock):
        self.resampler = self._new_resampler()
        self.buffer = np.zeros(0, np.int16)
        self.buffer_at = 0  # sample index of buffer[0]
        self.skip = 0  # samples of the next output that overlap what is already placed
        self.expected: float | None = None  # where the next frame would start if contiguous
        self.gaps: list[tuple[float, float]] = []  # silence put where the file has no sound
        super().__init__(container, stream, clock)

    @staticmethod
    def _new_resampler():
        return av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)

    @property
    def placed(self) -> int:
        return self.buffer_at + self.buffer.size

    @property
    def end(self) -> float:
        return max(self.drained_end, (self.start or 0.0) + self.placed / SAMPLE_RATE)

    def _append(self, pieces) -> None:
        samples = np.concatenate([np.zeros(0, np.int16), *(p.to_ndarray().reshape(-1) for p in pieces)])
        dropped, self.skip = min(self.skip, samples.size), self.skip - min(self.skip, samples.size)
        self.buffer = np.concatenate([self.buffer, samples[dropped:]])

    def _take(self, frame, time) -> None:
        if frame is None:
            self._append(self.resampler.resample(None))
            return
        if self.start is None:
            self.start = self.expected = time
        if abs(time - self.expected) > AUDIO_JITTER:  # a gap or an overlap: the next run starts at its own time
            self._append(self.resampler.resample(None))
            self.resampler = self._new_resampler()
            at = int(round((time - self.start) * SAMPLE_RATE))
            if at > self.placed:
                self.gaps.append((self.start + self.placed / SAMPLE_RATE, time))
                self.buffer = np.concatenate([self.buffer, np.zeros(at - self.placed, np.int16)])
            self.skip = max(0, self.placed - at)
        self._append(self.resampler.resample(frame))
        self.expected = time + frame.samples / frame.sample_rate

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


class _Silence:
    """No sound track: a stream that never starts."""

    start = None
    done = True
    error = None
    end = 0.0
    gaps: list = []

    def covers(self, low: float, high: float) -> bool:
        return False

    def ended_before(self, high: float) -> bool:
        return True

    def drain(self) -> None:
        pass

    def second(self, low: float) -> np.ndarray:
        return np.zeros(SAMPLE_RATE, np.int16)


class VideoSeconds:
    """The segments of a file (see the module's docstring). ``pictures`` and ``sounds`` are two
    containers of the same file, read side by side; ``track`` chooses the audio track (see
    :func:`audio_track`). ``require_sound=False`` keeps every second of picture, silent where there
    is no sound (the benchmark's preparation). Afterwards ``duration`` (the playing length on the
    segments' clock), ``declared`` (what the container says, or None), ``error`` (a decoding error
    that ended a stream early), ``track`` (which audio track was read) and ``gaps`` (where the sound
    was missing, in seconds on the segments' clock) describe the file."""

    def __init__(self, pictures, sounds, require_sound: bool = True, track: int | None = None):
        clock = Clock(pictures)
        self.pictures = _Pictures(pictures, clock)
        stream = audio_track(sounds, track)
        self.sound = _Sound(sounds, stream, clock) if stream is not None else _Silence()
        self.track = describe_track(sounds, stream) if stream is not None else None
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
                yield Segment(k, frame, samples, self.pictures)
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
    def gaps(self) -> list[tuple[float, float]]:
        return [(round(a - self.zero, 3), round(b - self.zero, 3)) for a, b in self.sound.gaps]

    @property
    def error(self) -> Exception | None:
        return self.pictures.error or self.sound.error
