"""Turn raw videos into the OV-AVEBench layout with PyAV: for each video, 10 frames (the frame
on screen at the middle of each 1-second segment, t = 0.5, 1.5, ..., 9.5 s, turned as a player
shows it) saved as PNG, and the sound of those 10 s as a 16 kHz mono 16-bit WAV (silence where
the track starts late or ends early). Times are on the file's clock (data/video_segments.py).

A video whose picture lasts less than 10 s, that has no audio track or that cannot be
decoded is not written; it is reported with the reason. A written one's report says which audio
track was read and where its sound was missing. Outputs are written to temporary names and
renamed, so an interrupted preparation resumes without half-written videos.
"""

from __future__ import annotations

import itertools
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import soundfile

from data.annotations import NUM_SEGMENTS
from data.preprocess import IMAGE_SUFFIXES
from data.video_segments import SAMPLE_RATE, NoSuchTrack, VideoSeconds

SECONDS = NUM_SEGMENTS  # one segment per second
VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mts", ".m2ts", ".3gp", ".ts", ".mpg", ".mpeg",
                  ".wmv", ".flv", ".ogv")
FRAME_TIMES = tuple(i + 0.5 for i in range(NUM_SEGMENTS))  # where data/video_segments.py takes the frames


@dataclass(frozen=True)
class Outcome:
    vid_name: str
    status: str  # ok, done_before, too_short, no_audio, undecodable, not_found, timed_out
    detail: str = ""


class Unusable(Exception):
    """The video cannot give the 10 frames and 10 s of audio; ``status`` says why."""

    def __init__(self, status: str, detail: str):
        super().__init__(detail)
        self.status = status


def outputs_complete(wav: Path, frames: Path) -> bool:
    return wav.is_file() and frames.is_dir() and len(
        [p for p in frames.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]) == NUM_SEGMENTS


def _first_seconds(pictures, sounds, track: int | None) -> tuple[list, np.ndarray, str]:
    """The first ten seconds of picture on the file's clock (data/video_segments.py): each one's
    frame as a player shows it, their sound (silence where there is none), and what the report
    says of the sound."""
    try:
        seconds = VideoSeconds(pictures, sounds, require_sound=False, track=track)
    except NoSuchTrack as err:
        raise Unusable("no_audio", str(err)) from None
    segments = list(itertools.islice(seconds, NUM_SEGMENTS))
    if len(segments) < NUM_SEGMENTS or segments[-1].index != segments[0].index + NUM_SEGMENTS - 1:
        raise Unusable("too_short", f"the picture lasts {seconds.picture_length:.2f} s; {SECONDS} s are needed")
    first = segments[0].index
    gaps = [(max(a - first, 0), min(b - first, SECONDS)) for a, b in seconds.gaps if a - first < SECONDS]
    return [s.image() for s in segments], np.concatenate([s.samples for s in segments]), sound_note(seconds.track, gaps)


def sound_note(track: dict, gaps: list) -> str:
    """The report's words on the sound: which track, and the silence put where the file has none."""
    note = f"audio track {track['track']} of {track['tracks']}" + (" (default)" if track["default"] else "")
    note += "".join(f", {track[key]}" for key in ("language", "title") if key in track)
    if gaps:
        note += "; no sound in the file at " + ", ".join(f"{a:.2f}-{b:.2f} s" for a, b in gaps) + " (silence there)"
    return note


def prepare_video(source: Path, wav: Path, frames: Path, track: int | None = None) -> Outcome:
    """One raw video -> its WAV and frame folder (or the reason it cannot be used); ``track``: the
    audio track to read (None: the default one)."""
    vid = frames.name
    if outputs_complete(wav, frames):
        return Outcome(vid, "done_before")
    try:
        with av.open(str(source)) as pictures, av.open(str(source)) as sounds:
            if not pictures.streams.video:
                raise Unusable("undecodable", "no video stream")
            if not pictures.streams.audio:
                raise Unusable("no_audio", "no audio track")
            images, samples, note = _first_seconds(pictures, sounds, track)
    except Unusable as err:
        return Outcome(vid, err.status, str(err))
    except (av.FFmpegError, OSError, ValueError, IndexError) as err:
        return Outcome(vid, "undecodable", f"{type(err).__name__}: {err}")
    staging = frames.with_name(f".{vid}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for i, image in enumerate(images, start=1):
        image.convert("RGB").save(staging / f"frame_{i:02d}.png")
    shutil.rmtree(frames, ignore_errors=True)
    os.rename(staging, frames)
    wav.parent.mkdir(parents=True, exist_ok=True)
    tmp_wav = wav.with_name(f".{wav.name}.tmp-{os.getpid()}")
    soundfile.write(tmp_wav, samples, SAMPLE_RATE, subtype="PCM_16", format="WAV")
    os.replace(tmp_wav, wav)
    return Outcome(vid, "ok", note)


def find_videos(folder) -> dict[str, Path]:
    """Video files under ``folder`` (any depth), by file name without the extension."""
    found: dict[str, Path] = {}
    for path in sorted(Path(folder).rglob("*")):
        if path.suffix.lower() in VIDEO_SUFFIXES and path.is_file():
            found.setdefault(path.stem, path)
    return found
