"""The localizer's batched paths give what one window at a time gives: labelling in batches of
windows (any video length, any batch), and encoding windows of several videos in one call when
a video between them fails or one window of the batch is not finite."""

import dataclasses

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from common.schema import Config, CueRatorConfig
from data.embedding_store import StoredVideo
from data.synthetic import write_video
from pipeline import localize as localize_lib
from pipeline.localize import Localizer, VideoResult
from stand_in import CLASSES, SCRIPT, StandInEncoder, write_scene

NAMES = CLASSES + ["other"]


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 47), st.integers(1, 4), st.sampled_from(["v0", "v01", "cuerator_rule"]), st.data())
def test_labelling_in_batches_of_windows_equals_one_window_at_a_time(segments, batch, strategy, data):
    audio = data.draw(arrays(np.float32, (segments, 4), elements=st.floats(-1, 1, width=32)))
    vision = data.draw(arrays(np.float32, (segments, 6), elements=st.floats(-1, 1, width=32)))  # another width
    stored = StoredVideo({"duration": float(segments), "starts": list(range(segments))}, audio, vision)
    config = Config(cuerator=CueRatorConfig(params=[0.1] * 10))
    localizer = Localizer.__new__(Localizer)
    localizer.config, localizer.threshold, localizer.device = config, 0.0, torch.device("cpu")
    decoding = localizer.decoding(strategy)
    text_audio, text_vision = torch.eye(4)[:3] + 0.1, torch.eye(6)[:3] - 0.05

    def labelled(label_batch):
        original = localize_lib.LABEL_BATCH
        localize_lib.LABEL_BATCH = label_batch
        try:
            result = VideoResult("v")
            localizer._label(result, stored, NAMES, text_audio, text_vision, decoding)
            return result
        finally:
            localize_lib.LABEL_BATCH = original

    one, many = labelled(1), labelled(batch)
    assert many.labels == one.labels and many.events == one.events
    np.testing.assert_array_equal(many.confidence, one.confidence)
    assert len(one.labels) == segments


NAN_COLOUR = (250, 250, 20)  # a frame of this colour gives a NaN embedding


def test_a_failed_video_or_window_in_a_batch_leaves_the_others_as_alone(stand_in, tmp_path, monkeypatch):
    original = StandInEncoder.segments

    def segments(self, clips, frames):
        audio, vision = original(self, clips, frames)
        bad = (np.abs(frames[0].numpy() - NAN_COLOUR).max(axis=1) < 25)
        vision[0, torch.from_numpy(bad)] = float("nan")
        return audio, vision

    monkeypatch.setattr(StandInEncoder, "segments", segments)
    write_scene(tmp_path / "a_long.mp4", SCRIPT + SCRIPT[:5])  # 25 s: three windows
    (tmp_path / "b_broken.mp4").write_bytes(b"not a video" * 100)
    write_scene(tmp_path / "c_short.mp4", SCRIPT[3:6])
    write_video(tmp_path / "d_nan.mp4", [np.full((48, 64, 3), NAN_COLOUR, np.uint8)] * 20,
                [np.zeros((1, 4 * 48000), np.float32)], 5, 48000)
    write_scene(tmp_path / "e_twelve.mp4", SCRIPT[6:18])
    together_config = dataclasses.replace(stand_in, extract=dataclasses.replace(stand_in.extract, batch_size=3))
    together = Localizer(together_config).localize([tmp_path], CLASSES)
    assert [r.status for r in together] == ["ok", "not_a_video", "ok", "not_finite", "ok"]
    for result in together:
        if result.status != "ok":
            continue
        alone_config = dataclasses.replace(stand_in, cache=dataclasses.replace(
            stand_in.cache, dir=str(tmp_path / f"alone_{len(result.path)}")))
        [alone] = Localizer(alone_config).localize([result.path], CLASSES)
        assert alone.labels == result.labels and alone.starts == result.starts and alone.events == result.events
