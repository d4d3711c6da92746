"""Files as cameras, stream captures and editors write them, read as a player plays them: frames
that carry side data (HEVC, MPEG-2, low frame rates), a dropout in the sound, two audio tracks,
recordings joined into one file, non-square pixels."""

import av
import numpy as np
import pytest
import soundfile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from data.raw_videos import prepare_video
from data.synthetic import write_video
from data.video_segments import SAMPLE_RATE, NoSuchTrack, VideoSeconds, display_size

RATE = 48000


def numbered_seconds(count: int, fps: int = 5, first: int = 0):
    """Second k (counting from ``first``) shows grey 15 k and sounds 300 + 50 k Hz, so a segment's
    picture and sound each tell which second of the recording they are."""
    t = np.arange(RATE) / RATE
    pictures = [np.full((48, 64, 3), 15 * (first + k), np.uint8) for k in range(count) for _ in range(fps)]
    sound = [(0.3 * np.sin(2 * np.pi * (300 + 50 * (first + k)) * t)).astype(np.float32)[None] for k in range(count)]
    return pictures, sound


def heard(samples) -> int:
    """The second's pitch in Hz (1 Hz bins), 0 for silence."""
    return int(np.abs(np.fft.rfft(samples)).argmax()) if np.abs(samples).mean() > 1000 else 0


def seen(image) -> int:
    return int(round(np.asarray(image).mean() / 15))


def read(path, **options):
    with av.open(str(path)) as pictures, av.open(str(path)) as sounds:
        seconds = VideoSeconds(pictures, sounds, **options)
        segments = [(s.index, seen(s.image()), heard(s.samples)) for s in seconds]
        return segments, seconds


@pytest.mark.parametrize("name, codec, fps, audio_codec", [
    ("hevc.mp4", "libx265", 5, "aac"),  # x265 writes side data on every frame
    ("broadcast.ts", "mpeg2video", 25, "mp2"),  # MPEG-2: pan-scan and GOP time codes
    ("dvd.mpg", "mpeg2video", 25, "mp2"),
    ("slow.mp4", "libx264", 1, "aac"),  # H.264 at 1 or 2 frames a second: SEI on the frames chosen
    ("slow.mkv", "libx264", 2, "aac"),
])
def test_frames_with_side_data_are_read(tmp_path, name, codec, fps, audio_codec):
    pictures, sound = numbered_seconds(4, fps)
    write_video(tmp_path / name, pictures, sound, fps, RATE, codec=codec, audio_codec=audio_codec)
    with av.open(str(tmp_path / name)) as container:
        assert next(container.decode(video=0)).side_data  # the case this test is about
    segments, _ = read(tmp_path / name)
    assert segments == [(k, k, 300 + 50 * k) for k in range(4)]


@pytest.mark.parametrize("suffix, audio_codec", [("mp4", "aac"), ("mkv", "aac"), ("ts", "mp2"), ("webm", "libopus")])
def test_sound_after_a_dropout_keeps_its_own_time(tmp_path, suffix, audio_codec):
    pictures, sound = numbered_seconds(12)
    path = tmp_path / f"dropout.{suffix}"
    write_video(path, pictures, sound, 5, RATE, codec="libvpx" if suffix == "webm" else "libx264",
                audio_codec=audio_codec, sound_gaps=[(4, 7)])
    segments, seconds = read(path)
    assert [index for index, _, _ in segments] == list(range(12))  # the missing sound is silence, not lost seconds
    for index, picture, pitch in segments:
        assert picture == index
        assert pitch == (0 if 4 <= index < 7 else 300 + 50 * index), index  # never the sound of a later second
    [(start, end)] = seconds.gaps
    assert start == pytest.approx(4, abs=0.05) and end == pytest.approx(7, abs=0.05)
    assert seconds.duration == pytest.approx(12, abs=0.05)


def test_the_prepared_wav_holds_each_second_at_its_time_and_the_report_names_the_gap(tmp_path):
    pictures, sound = numbered_seconds(12)
    write_video(tmp_path / "dropout.mp4", pictures, sound, 5, RATE, sound_gaps=[(4, 7)])
    outcome = prepare_video(tmp_path / "dropout.mp4", tmp_path / "o" / "x.wav", tmp_path / "o" / "x")
    assert outcome.status == "ok"
    assert "audio track 0 of 1" in outcome.detail and "no sound in the file at 4.01-7.01 s" in outcome.detail
    samples, _ = soundfile.read(tmp_path / "o" / "x.wav", dtype="int16")
    pitches = [heard(samples[k * SAMPLE_RATE:(k + 1) * SAMPLE_RATE]) for k in range(10)]
    assert pitches == [300, 350, 400, 450, 0, 0, 0, 650, 700, 750]


@pytest.mark.parametrize("suffix", ["mkv", "mp4"])
def test_the_default_audio_track_is_read_unless_another_is_named(tmp_path, suffix):
    pictures, _ = numbered_seconds(3)
    t = np.arange(3 * RATE) / RATE
    commentary, main = ([(0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32)[None]] for f in (440, 880))
    path = tmp_path / f"two_tracks.{suffix}"
    write_video(path, pictures, commentary, 5, RATE, more_sound=[main], default_track=1)
    segments, seconds = read(path)
    assert {pitch for _, _, pitch in segments} == {880}  # what a player plays: the track marked default
    assert {key: seconds.track[key] for key in ("track", "tracks", "default")} == {"track": 1, "tracks": 2,
                                                                                 "default": True}
    segments, seconds = read(path, track=0)
    assert {pitch for _, _, pitch in segments} == {440} and seconds.track["track"] == 0
    with pytest.raises(NoSuchTrack, match="audio_track=2, but the file has 2 audio track"):
        read(path, track=2)


def test_recordings_joined_into_one_file_play_on(tmp_path):
    first, second = numbered_seconds(7), numbered_seconds(9, first=7)
    write_video(tmp_path / "a.ts", *first, 5, RATE, audio_codec="mp2")
    write_video(tmp_path / "b.ts", *second, 5, RATE, audio_codec="mp2")
    joined = tmp_path / "joined.ts"  # as a camcorder or a capture card joins them: the clock restarts at 0
    joined.write_bytes((tmp_path / "a.ts").read_bytes() + (tmp_path / "b.ts").read_bytes())
    segments, seconds = read(joined)
    assert segments == [(k, k, 300 + 50 * k) for k in range(16)]
    assert seconds.duration == pytest.approx(16, abs=0.05)


def test_non_square_pixels_are_shown_at_the_display_aspect(tmp_path):
    picture = np.zeros((48, 64, 3), np.uint8)
    picture[:16, :16] = (255, 0, 0)
    write_video(tmp_path / "anamorphic.mp4", [picture] * 10, [np.zeros((1, 2 * RATE), np.float32)], 5, RATE,
                pixel_aspect=2)
    with av.open(str(tmp_path / "anamorphic.mp4")) as pictures, av.open(str(tmp_path / "anamorphic.mp4")) as sounds:
        image = next(iter(VideoSeconds(pictures, sounds))).image()
    assert image.size == (128, 48)  # pixels twice as wide as high: a player shows 128 x 48
    red = np.argwhere(np.asarray(image)[..., 0] > 200)
    assert red[:, 1].max() == pytest.approx(31, abs=2) and red[:, 0].max() == pytest.approx(15, abs=2)


@pytest.mark.parametrize("aspect, size", [(1, (64, 48)), (2, (128, 48)), (0.5, (64, 96)), (None, (64, 48))])
def test_display_size_widens_wide_pixels_and_heightens_tall_ones(aspect, size):
    assert display_size(64, 48, aspect) == size


def test_a_prepared_anamorphic_frame_is_saved_at_its_display_size(tmp_path):
    write_video(tmp_path / "wide.mp4", [np.full((48, 64, 3), 100, np.uint8)] * 55,
                [np.zeros((1, 11 * RATE), np.float32)], 5, RATE, pixel_aspect=2)
    assert prepare_video(tmp_path / "wide.mp4", tmp_path / "o" / "x.wav", tmp_path / "o" / "x").status == "ok"
    assert Image.open(sorted((tmp_path / "o" / "x").glob("*.png"))[0]).size == (128, 48)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(picture=st.tuples(st.integers(0, 3), st.integers(2, 6)), sound=st.tuples(st.integers(0, 3), st.integers(2, 6)),
       fps=st.sampled_from([1, 2, 5, 25]), gap=st.one_of(st.none(), st.tuples(st.integers(0, 4), st.integers(1, 2))),
       suffix=st.sampled_from(["mp4", "mkv"]))
def test_any_starts_lengths_frame_rates_and_dropouts_keep_each_second_on_its_clock(tmp_path_factory, picture, sound,
                                                                                   fps, gap, suffix):
    """Second c of the container's clock shows grey 15 c and sounds 300 + 50 c Hz, wherever the
    streams start and end, at any frame rate, with or without a dropout: every segment's picture
    and sound must name the same second, and the segments are the seconds both streams cover."""
    (p_start, p_length), (s_start, s_length) = picture, sound
    t = np.arange(RATE) / RATE
    pictures = [np.full((48, 64, 3), 15 * (p_start + k), np.uint8) for k in range(p_length) for _ in range(fps)]
    tones = [(0.3 * np.sin(2 * np.pi * (300 + 50 * (s_start + k)) * t)).astype(np.float32)[None]
             for k in range(s_length)]
    gaps = [] if gap is None else [(s_start + gap[0], s_start + gap[0] + gap[1])]
    path = tmp_path_factory.mktemp("clock") / f"v.{suffix}"
    write_video(path, pictures, tones, fps, RATE, picture_start=p_start, sound_start=s_start, sound_gaps=gaps)
    segments, seconds = read(path)
    heard_from, heard_to = s_start, s_start + s_length  # a dropout at either end is a later start or an earlier end
    for a, b in gaps:
        heard_from = b if a <= heard_from < b else heard_from
        heard_to = a if a < heard_to <= b else heard_to
    zero = min(p_start, heard_from)
    both = range(max(p_start, heard_from), min(p_start + p_length, heard_to))
    assert [zero + index for index, _, _ in segments] == list(both)
    for index, grey, pitch in segments:
        second = zero + index
        silent = any(a <= second < b for a, b in gaps)
        assert grey == second and pitch == (0 if silent else 300 + 50 * second), (index, grey, pitch)
