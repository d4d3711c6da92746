"""A whole video as 1-second segments on one clock, streamed, as a player shows it: the rule the
benchmark's preparation and the localizer share."""

import types

import av
import numpy as np
import pytest

from data.synthetic import write_video
from data.video_segments import SAMPLE_RATE, VideoSeconds
from data.video_windows import video_windows


def write_greys(path, seconds: float, fps: int, codec: str = "libx264", audio_codec: str = "aac"):
    """Frame k is flat grey (7 k) mod 256, so the frame chosen for a second tells its index; the
    audio is a 440 Hz tone."""
    rate = 48000 if audio_codec == "libopus" else 44100
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(rate * seconds)) / rate)).astype(np.float32)
    pictures = (np.full((48, 64, 3), (7 * k) % 256, np.uint8) for k in range(int(seconds * fps)))
    write_video(path, pictures, tone[None, None], fps, rate, codec=codec, audio_codec=audio_codec)


def segments_of(path, require_sound=True):
    with av.open(str(path)) as pictures, av.open(str(path)) as sounds:
        seconds = VideoSeconds(pictures, sounds, require_sound)
        return list(seconds), seconds


@pytest.mark.parametrize("name, fps, codec, audio_codec", [("long.mp4", 7, "libx264", "aac"),
                                                           ("long.webm", 5, "libvpx", "libopus")])
def test_every_whole_second_of_a_long_video(tmp_path, name, fps, codec, audio_codec):
    path = tmp_path / name
    write_greys(path, 23.4, fps, codec, audio_codec)
    segments, seconds = segments_of(path)
    assert [s.index for s in segments] == list(range(23))
    assert seconds.picture_length == pytest.approx(int(23.4 * fps) / fps, abs=0.01)  # the last frame ends it
    for s in segments:  # the frame on screen at t + 0.5 s
        expected = int((s.index + 0.5) * fps + 1e-9)
        assert abs(np.asarray(s.image()).mean() - (7 * expected) % 256) < 4, s.index
    for s in segments[::5]:
        assert s.samples.dtype == np.int16 and s.samples.size == SAMPLE_RATE
        assert abs(np.argmax(np.abs(np.fft.rfft(s.samples))) - 440) <= 2


def marked_frames(seconds: int, fps: int = 5):
    """Landscape 64 x 48 frames with a red square at the top left and a blue strip at the right."""
    picture = np.zeros((48, 64, 3), np.uint8)
    picture[:16, :16] = (255, 0, 0)
    picture[:, 56:] = (0, 0, 255)
    return [picture] * (seconds * fps)


def centre(image, colour) -> tuple[float, float]:
    """(row, column) of the pixels of ``colour``, as fractions of the height and width."""
    pixels = np.asarray(image.convert("RGB")).astype(int)
    where = np.argwhere((np.abs(pixels - colour).sum(axis=2) < 120))
    return tuple(where.mean(axis=0) / pixels.shape[:2])


# (rotation counter-clockwise, mirrored) of the display matrix -> what a player shows: its size and
# where the red square and the blue strip land (checked against FFmpeg's own autorotation).
ORIENTATIONS = [
    ((-90, False), (64, 48), "top right", "bottom"),  # a phone held upright: turn 90 degrees clockwise
    ((90, False), (64, 48), "bottom left", "top"),
    ((180, False), (48, 64), "bottom right", "left"),
    ((0, True), (48, 64), "top right", "left"),  # mirrored (a front camera)
]
SPOTS = {"top right": (0, 1), "bottom left": (1, 0), "bottom right": (1, 1), "top left": (0, 0)}
STRIPS = {"bottom": (1, None), "top": (0, None), "left": (None, 0), "right": (None, 1)}


@pytest.mark.parametrize("display, size, red, blue", ORIENTATIONS)
def test_frames_are_turned_as_the_display_matrix_says(tmp_path, display, size, red, blue):
    rotation, hflip = display
    path = tmp_path / "phone.mp4"
    write_video(path, marked_frames(3), [np.zeros((1, 3 * 48000), np.float32)], 5, 48000, rotation=rotation,
                hflip=hflip)
    segments, _ = segments_of(path)
    image = segments[0].image()
    assert (image.height, image.width) == size
    row, column = centre(image, (255, 0, 0))
    assert (round(row), round(column)) == SPOTS[red]
    blue_row, blue_column = centre(image, (0, 0, 255))
    expected_row, expected_column = STRIPS[blue]
    assert expected_row is None or abs(blue_row - expected_row) < 0.15
    assert expected_column is None or abs(blue_column - expected_column) < 0.15


def test_an_unturned_video_is_left_as_it_is(tmp_path):
    write_video(tmp_path / "plain.mp4", marked_frames(2), [np.zeros((1, 2 * 48000), np.float32)], 5, 48000)
    [first, _], _ = segments_of(tmp_path / "plain.mp4")
    assert first.image().size == (64, 48) and tuple(np.round(centre(first.image(), (255, 0, 0)))) == (0, 0)


def burst_and_colour(path, picture_start, sound_start, picture_seconds=10, sound_seconds=10, event=6.0, **codecs):
    """Blue frames turning red and silence turning into a 880 Hz tone at the same moment
    ``event`` of the container's clock."""
    fps, rate = 5, 48000
    pictures = [np.full((48, 64, 3), (255, 0, 0) if picture_start + i / fps >= event else (0, 0, 255), np.uint8)
                for i in range(picture_seconds * fps)]
    t = sound_start + np.arange(sound_seconds * rate) / rate
    sound = (0.3 * np.sin(2 * np.pi * 880 * t) * (t >= event)).astype(np.float32)[None]
    write_video(path, pictures, [sound], fps, rate, picture_start=picture_start, sound_start=sound_start, **codecs)


CODECS = [("mp4", {}), ("mkv", {}), ("webm", {"codec": "libvpx", "audio_codec": "libopus"})]


@pytest.mark.parametrize("suffix, codecs", CODECS)
def test_a_late_sound_is_paired_with_its_own_seconds(tmp_path, suffix, codecs):
    path = tmp_path / f"late.{suffix}"
    burst_and_colour(path, picture_start=0, sound_start=3, **codecs)
    segments, seconds = segments_of(path)
    assert [s.index for s in segments] == list(range(3, 10))  # the first second with both is second 3
    loud = [s.index for s in segments if np.abs(s.samples).mean() > 1000]
    red = [s.index for s in segments if np.asarray(s.image())[..., 0].mean() > 128]
    assert loud == red == list(range(6, 10))  # the burst's seconds are the colour change's
    assert seconds.duration == pytest.approx(13, abs=0.05)


@pytest.mark.parametrize("suffix, codecs", CODECS)
def test_streams_that_both_start_late_lose_nothing(tmp_path, suffix, codecs):
    path = tmp_path / f"both.{suffix}"
    burst_and_colour(path, picture_start=5, sound_start=5, event=7.0, **codecs)
    segments, seconds = segments_of(path)
    assert [s.index for s in segments] == list(range(10))  # counted from the streams' start, none lost
    loud = [s.index for s in segments if np.abs(s.samples).mean() > 1000]
    red = [s.index for s in segments if np.asarray(s.image())[..., 0].mean() > 128]
    assert loud == red == list(range(2, 10))
    assert seconds.duration == pytest.approx(10, abs=0.05)


def test_a_long_picture_with_short_sound(tmp_path):
    write_video(tmp_path / "v.mp4", [np.full((48, 64, 3), 90, np.uint8)] * 60, [np.zeros((1, 5 * 48000), np.float32)],
                5, 48000)
    segments, seconds = segments_of(tmp_path / "v.mp4")
    assert len(segments) == 5 and seconds.duration == pytest.approx(12, abs=0.05)
    picture_only, _ = segments_of(tmp_path / "v.mp4", require_sound=False)  # the benchmark's preparation
    assert len(picture_only) == 12 and not picture_only[-1].samples.any()


STAND_IN = types.SimpleNamespace(audio_window=lambda waveform: waveform, frame_window=lambda images: images)


def test_a_cut_file_is_partial_and_its_decodable_seconds_count(tmp_path):
    write_greys(tmp_path / "whole.mkv", 30, 5)
    data = (tmp_path / "whole.mkv").read_bytes()
    (tmp_path / "cut.mkv").write_bytes(data[:len(data) // 2])
    windows = list(video_windows(0, tmp_path / "cut.mkv", STAND_IN))
    last = windows[-1]
    assert last.status == "partial" and "declares 30.0 s" in last.reason
    assert 5 <= sum(len(w.starts) for w in windows) < 25
    whole = list(video_windows(0, tmp_path / "whole.mkv", STAND_IN))
    assert whole[-1].status == "ok" and sum(len(w.starts) for w in whole) == 30
