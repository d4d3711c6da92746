"""A whole video as 1-second segments, streamed, by the rule the benchmark's preparation uses."""

import av
import numpy as np
import pytest

from data.video_segments import SAMPLE_RATE, FramesBySecond, audio_by_second


def write_video(path, seconds: float, fps: int, codec: str = "libx264", audio_codec: str = "aac", size=(64, 48)):
    """Frame k is flat grey (7 k) mod 256, so the frame chosen for a second tells its index; the
    audio is a 440 Hz tone."""
    with av.open(str(path), "w") as out:
        video = out.add_stream(codec, rate=fps)
        video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
        sound = out.add_stream(audio_codec, rate=48000 if audio_codec == "libopus" else 44100)
        sound.layout = "mono"
        for k in range(int(seconds * fps)):
            grey = np.full((size[1], size[0], 3), (7 * k) % 256, np.uint8)
            out.mux(video.encode(av.VideoFrame.from_ndarray(grey, format="rgb24")))
        out.mux(video.encode())
        rate = sound.rate
        tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(rate * seconds)) / rate)).astype(np.float32)
        for start in range(0, tone.size, 960):
            frame = av.AudioFrame.from_ndarray(tone[None, start:start + 960], format="fltp", layout="mono")
            frame.sample_rate = rate
            out.mux(sound.encode(frame))
        out.mux(sound.encode())


@pytest.mark.parametrize("name, fps, codec, audio_codec", [("long.mp4", 7, "libx264", "aac"),
                                                           ("long.webm", 5, "libvpx", "libopus")])
def test_every_whole_second_of_a_long_video(tmp_path, name, fps, codec, audio_codec):
    path = tmp_path / name
    write_video(path, 23.4, fps, codec, audio_codec)
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
    write_video(tmp_path / "v.mp4", 12, 5)
    with av.open(str(tmp_path / "v.mp4")) as container:
        assert [t for t, _ in FramesBySecond(container, limit=10)] == list(range(10))
