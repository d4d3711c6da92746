"""A whole video as 1-second segments, streamed, by the rule the benchmark's preparation uses."""

import av
import numpy as np
import pytest

from data.synthetic import write_video
from data.video_segments import SAMPLE_RATE, FramesBySecond, audio_by_second


def write_greys(path, seconds: float, fps: int, codec: str = "libx264", audio_codec: str = "aac"):
    """Frame k is flat grey (7 k) mod 256, so the frame chosen for a second tells its index; the
    audio is a 440 Hz tone."""
    rate = 48000 if audio_codec == "libopus" else 44100
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(rate * seconds)) / rate)).astype(np.float32)
    pictures = (np.full((48, 64, 3), (7 * k) % 256, np.uint8) for k in range(int(seconds * fps)))
    write_video(path, pictures, tone[None, None], fps, rate, codec=codec, audio_codec=audio_codec)


@pytest.mark.parametrize("name, fps, codec, audio_codec", [("long.mp4", 7, "libx264", "aac"),
                                                           ("long.webm", 5, "libvpx", "libopus")])
def test_every_whole_second_of_a_long_video(tmp_path, name, fps, codec, audio_codec):
    path = tmp_path / name
    write_greys(path, 23.4, fps, codec, audio_codec)
    with av.open(str(path)) as container:
        seconds = FramesBySecond(container)
        frames = list(seconds)
    assert [t for t, _ in frames] == list(range(23))
    assert seconds.picture_end == pytest.approx(int(23.4 * fps) / fps, abs=1e-6)  # the last frame ends the picture
    for t, frame in frames:  # the frame on screen at t + 0.5 s
        expected = int((t + 0.5) * fps + 1e-9)
        assert abs(frame.to_ndarray(format="rgb24").mean() - (7 * expected) % 256) < 4, t
    with av.open(str(path)) as container:
        audio = list(audio_by_second(container))
    assert [t for t, _ in audio] == list(range(23))
    for _, samples in audio[::5]:
        assert samples.dtype == np.int16 and samples.size == SAMPLE_RATE
        assert abs(np.argmax(np.abs(np.fft.rfft(samples))) - 440) <= 2


def test_a_limit_stops_the_stream_early(tmp_path):
    write_greys(tmp_path / "v.mp4", 12, 5)
    with av.open(str(tmp_path / "v.mp4")) as container:
        assert [t for t, _ in FramesBySecond(container, limit=10)] == list(range(10))
