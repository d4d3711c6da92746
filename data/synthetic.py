"""A small synthetic OV-AVEBench in the exact layout of the real one, for the demo and tests.

Seen and unseen classes, background videos, events of varying length; WAVs at several
sample rates, mono and stereo, some shorter and some longer than 10 s; 10 PNG frames per
video. During an event segment the audio carries a class-specific tone and the frame a
class-specific colour, so a trained model has something to find.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile
from PIL import Image

from data.annotations import NUM_SEGMENTS


@dataclass(frozen=True)
class SyntheticSpec:
    seen_classes: tuple[str, ...] = ("dog barking", "playing piano", "church bell ringing", "baby laughter")
    unseen_classes: tuple[str, ...] = ("cat purring", "helicopter")
    train_per_class: int = 3
    val_per_class: int = 1
    test_per_class: int = 2
    background_fraction: float = 0.2
    frame_size: tuple[int, int] = (96, 72)
    seed: int = 0


def _labels(rng: np.random.Generator, background_fraction: float) -> list[int]:
    labels = np.zeros(NUM_SEGMENTS, dtype=int)
    if rng.random() >= background_fraction:
        for _ in range(rng.integers(1, 3)):
            start = rng.integers(0, NUM_SEGMENTS)
            labels[start:start + rng.integers(1, NUM_SEGMENTS + 1)] = 1
    return labels.tolist()


def _write_audio(path: Path, labels, class_id: int, rng: np.random.Generator) -> None:
    rate = int(rng.choice([16000, 22050, 44100]))
    channels = int(rng.choice([1, 2]))
    seconds = float(rng.choice([8.0, 10.0, 10.0, 11.0]))
    t = np.arange(int(rate * seconds)) / rate
    signal = 0.02 * rng.standard_normal(t.size)
    tone = 0.3 * np.sin(2 * np.pi * (300 + 170 * class_id) * t)
    segment = np.minimum((t // 1).astype(int), NUM_SEGMENTS - 1)
    signal += tone * np.asarray(labels)[segment] * (t < NUM_SEGMENTS)
    data = np.stack([signal] * channels, axis=1) if channels > 1 else signal
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, data.astype(np.float32), rate, subtype="PCM_16")


def _write_frames(folder: Path, labels, class_id: int, size, rng: np.random.Generator) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    hue = np.array([(class_id * 67) % 256, (class_id * 131 + 80) % 256, (class_id * 199 + 160) % 256])
    for i, on in enumerate(labels):
        base = hue if on else np.array([128, 128, 128])
        pixels = np.clip(base + rng.normal(0, 20, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i + 1:02d}.png")


def make_synthetic_benchmark(root, spec: SyntheticSpec = SyntheticSpec(), write_media: bool = True) -> dict[str, Path]:
    """Write meta CSV, label JSON and (unless ``write_media`` is false) media under ``root``;
    returns the annotation paths."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    classes = sorted(spec.seen_classes + spec.unseen_classes)
    rows, annotations = [], {}
    for split, per_class in (("train", spec.train_per_class), ("val", spec.val_per_class),
                             ("test", spec.test_per_class)):
        for name in classes:
            seen = name in spec.seen_classes
            if split == "train" and not seen:
                continue
            for k in range(per_class):
                vid = f"syn_{split}_{classes.index(name):02d}_{k:02d}"
                labels = _labels(rng, spec.background_fraction)
                if write_media:
                    _write_audio(root / split / "audio" / name / f"{vid}.wav", labels, classes.index(name), rng)
                    _write_frames(root / split / "video" / name / vid, labels, classes.index(name),
                                  spec.frame_size, rng)
                rows.append({"split": split, "cls_name": name, "cls_type": "close" if seen else "open",
                             "vid_name": vid})
                annotations[vid] = {"category": name, "label": json.dumps(labels)}
    meta_csv, label_json = root / "ovave_dataset_meta.csv", root / "released_ovavel_dataset_anno.json"
    with open(meta_csv, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["split", "cls_name", "cls_type", "vid_name"])
        writer.writeheader()
        writer.writerows(rows)
    label_json.write_text(json.dumps(annotations, indent=4))
    return {"meta_csv": meta_csv, "label_json": label_json, "media_root": root}


def write_video(path, pictures, sound=None, fps: int = 5, sample_rate: int = 48000, layout: str = "mono",
                codec: str = "libx264", audio_codec: str = "aac", picture_start: float = 0.0,
                sound_start: float = 0.0, rotation: int = 0, hflip: bool = False, sound_gaps=(),
                more_sound=(), default_track: int | None = None, pixel_aspect=None) -> None:
    """A video file (tests, benchmarks) from ``pictures``, one ``[H, W, 3]`` uint8 array per
    frame, and ``sound``, float32 arrays ``[channels, n]`` at ``sample_rate`` in any chunking
    (None: no audio track). Both may be generators, so long videos are never held whole.
    ``picture_start`` / ``sound_start``: where each stream starts on the container's clock;
    ``rotation`` (degrees counter-clockwise) and ``hflip``: the display matrix a phone writes;
    ``sound_gaps``: ``(from, to)`` seconds of the container's clock where no sound is written (a
    dropout: the sound's own samples there are lost); ``more_sound``: further audio tracks, like
    ``sound``; ``default_track``: the audio track marked default (the others are not);
    ``pixel_aspect``: the pixels' width over their height (anamorphic video)."""
    import itertools

    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pictures = iter(pictures)
    first = next(pictures)
    with av.open(str(path), "w") as out:
        video = out.add_stream(codec, rate=fps)
        video.width, video.height, video.pix_fmt = first.shape[1], first.shape[0], "yuv420p"
        if pixel_aspect is not None:
            video.codec_context.sample_aspect_ratio = Fraction(pixel_aspect)
        if rotation or hflip:
            video.set_display_rotation(rotation, hflip=hflip)
        tracks = [] if sound is None else [sound, *more_sound]
        audio = [out.add_stream(audio_codec, rate=sample_rate) for _ in tracks]  # every stream before the first packet
        for n, stream in enumerate(audio):
            stream.layout = layout
            if default_track is not None:
                stream.disposition = av.stream.Disposition.default if n == default_track else 0
        first_pts = round(picture_start * fps)
        for i, picture in enumerate(itertools.chain([first], pictures)):
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts, frame.time_base = first_pts + i, Fraction(1, fps)
            out.mux(video.encode(frame))
        out.mux(video.encode())
        for stream, chunks in zip(audio, tracks):
            written = round(sound_start * sample_rate)
            for chunk in chunks:
                for start in range(0, chunk.shape[1], 960):
                    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk[:, start:start + 960]),
                                                       format="fltp", layout=layout)
                    frame.sample_rate, frame.pts, frame.time_base = sample_rate, written, Fraction(1, sample_rate)
                    written += frame.samples
                    if not any(a <= frame.pts / sample_rate < b for a, b in sound_gaps):
                        out.mux(stream.encode(frame))
            out.mux(stream.encode())


def write_demo_videos(root, output, split: str = "test", long_video_clips: int = 6) -> list[Path]:
    """Video files (H.264 + AAC) made from a synthetic benchmark's frames and WAVs: one per clip
    of ``split``, plus one of ``long_video_clips`` clips in a row, so that the localizer and the
    web app have videos to show on the demo data."""
    root, output = Path(root), Path(output)
    clips = sorted((root / split / "audio").glob("*/*.wav"))
    if not clips:
        raise FileNotFoundError(f"no WAVs under {root / split / 'audio'}; run tools/make_synthetic_benchmark.py first")
    seconds = [_demo_seconds(root / split / "video" / wav.parent.name / wav.stem, wav) for wav in clips]
    written = []
    for wav, clip in zip(clips, seconds):
        written.append(output / f"{wav.stem}_{wav.parent.name.replace(' ', '_')}.mp4")
        _write_seconds(written[-1], clip)
    written.append(output / "long" / f"{long_video_clips}_clips_in_a_row.mp4")
    _write_seconds(written[-1], [second for clip in seconds[::2][:long_video_clips] for second in clip])
    return written


DEMO_RATE, DEMO_FPS = 48000, 5


def _demo_seconds(frames: Path, wav: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """(picture, one second of mono sound at DEMO_RATE) per second of one clip."""
    import torchaudio.functional

    from data.preprocess import read_waveform

    sound, rate = read_waveform(wav)
    mono = torchaudio.functional.resample(sound.mean(dim=0), rate, DEMO_RATE).numpy()
    mono = np.pad(mono, (0, max(0, NUM_SEGMENTS * DEMO_RATE - len(mono))))
    return [(np.asarray(Image.open(frames / f"{i + 1:02d}.png").convert("RGB")),
             mono[i * DEMO_RATE:(i + 1) * DEMO_RATE]) for i in range(NUM_SEGMENTS)]


def _write_seconds(path: Path, seconds) -> None:
    write_video(path, (picture for picture, _ in seconds for _ in range(DEMO_FPS)),
                (sound[None] for _, sound in seconds), DEMO_FPS, DEMO_RATE)
