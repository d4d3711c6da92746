"""The localizer on what people hand it beyond clean clips: a dropout in the sound, two audio
tracks, a pipe instead of a file, a worker that hangs, names that differ only past the text
encoder's reach, outputs a disk cannot hold, scores at the threshold, a folder of their own."""

import dataclasses
import json
import os
import time

import numpy as np
import pytest

from common.errors import UserError
from data.synthetic import write_video
from pipeline import localize as localize_lib
from pipeline.localize import Localizer, events_of
from pipeline.localize_outputs import timeline_name, write_outputs
from stand_in import CLASSES, PITCH, SCRIPT, StandIn, StandInEncoder, write_scene
from test_localize_real_world import on, run_cli, scene_arrays

RATE, FPS = 48000, 5


def test_a_dropout_is_silence_at_its_own_seconds_and_is_reported(stand_in, tmp_path):
    script = ["dog barking"] * 12
    pictures, sound = scene_arrays(script)
    write_video(tmp_path / "dropout.mp4", pictures, [sound], FPS, RATE, sound_gaps=[(4, 7)])
    [result] = Localizer(stand_in).localize([tmp_path / "dropout.mp4"], CLASSES)
    assert result.status == "ok" and result.starts == list(range(12))
    assert result.labels == ["dog barking"] * 4 + ["other"] * 3 + ["dog barking"] * 5  # silent, then heard again
    [[start, end]] = result.audio_gaps
    assert start == pytest.approx(4, abs=0.05) and end == pytest.approx(7, abs=0.05)
    assert run_cli([*on(stand_in), tmp_path / "dropout.mp4", "--classes", ",".join(CLASSES), "--output",
                    tmp_path / "out"]) == 0
    video = json.loads((tmp_path / "out" / "events.json").read_text())["videos"][0]
    assert video["audio_track"] == {"track": 0, "tracks": 1, "default": True, "language": "und"}
    assert len(video["audio_gaps"]) == 1


def test_the_default_audio_track_is_localized_and_a_key_chooses_another(stand_in, tmp_path):
    pictures, _ = scene_arrays(["car horn"] * 4)
    t = np.arange(4 * RATE) / RATE
    dog, car = ([(0.3 * np.sin(2 * np.pi * PITCH[name] * t)).astype(np.float32)[None]] for name in CLASSES)
    write_video(tmp_path / "two.mkv", pictures, dog, FPS, RATE, more_sound=[car], default_track=1)
    [result] = Localizer(stand_in).localize([tmp_path / "two.mkv"], CLASSES)
    assert result.labels == ["car horn"] * 4 and result.audio_track["track"] == 1  # the track a player plays
    first = dataclasses.replace(stand_in, video=dataclasses.replace(stand_in.video, audio_track=0))
    [result] = Localizer(first).localize([tmp_path / "two.mkv"], CLASSES)
    assert result.encoded and result.audio_track["track"] == 0  # another track is another store entry
    assert set(result.labels) == {"other"}  # a dog heard, a car seen: no agreement
    third = dataclasses.replace(stand_in, video=dataclasses.replace(stand_in.video, audio_track=2))
    [result] = Localizer(third).localize([tmp_path / "two.mkv"], CLASSES)
    assert result.status == "no_audio" and "audio_track=2, but the file has 2 audio track(s)" in result.reason


def test_a_pipe_is_refused_without_being_read(stand_in, tmp_path):
    os.mkfifo(tmp_path / "pipe.mp4")  # hashing it would wait for a writer forever
    write_scene(tmp_path / "real.mp4", SCRIPT[:3])
    pipe, real = Localizer(stand_in).localize([tmp_path / "pipe.mp4", tmp_path / "real.mp4"], CLASSES)
    assert pipe.status == "not_a_video" and "not a regular file" in pipe.reason
    assert real.status == "ok"


HANG = (255, 0, 255)  # a frame of this colour makes hanging_frames block, as a stuck FFmpeg call would


def hanging_frames(images):
    if any(np.allclose(np.asarray(image.convert("RGB"), float).mean(axis=(0, 1)), HANG, atol=25) for image in images):
        time.sleep(3600)
    return StandIn.frame_window(images)


def test_a_worker_that_stops_answering_is_named_and_the_others_go_on(stand_in, tmp_path, monkeypatch):
    module = localize_lib.family("stand-in")
    monkeypatch.setattr(localize_lib, "family", lambda name: type(module)(**{**vars(module),
                                                                            "frame_window": hanging_frames}))
    write_video(tmp_path / "stuck.mp4", [np.full((48, 64, 3), HANG, np.uint8)] * 15, [np.zeros((1, 3 * RATE),
                                                                                             np.float32)], FPS, RATE)
    for name in ("a", "b", "c"):
        write_scene(tmp_path / f"{name}.mp4", SCRIPT[:3])
    config = dataclasses.replace(stand_in, extract=dataclasses.replace(stand_in.extract, num_workers=2),
                                 video=dataclasses.replace(stand_in.video, worker_timeout=6))
    start = time.monotonic()
    results = Localizer(config).localize([tmp_path], CLASSES)
    assert time.monotonic() - start < 90
    statuses = {os.path.basename(r.path): r.status for r in results}
    assert statuses == {"a.mp4": "ok", "b.mp4": "ok", "c.mp4": "ok", "stuck.mp4": "timed_out"}
    stuck = next(r for r in results if r.path.endswith("stuck.mp4"))
    assert "stuck.mp4 stopped answering for 6 s (video.worker_timeout)" in stuck.reason


def test_names_that_differ_only_past_the_text_encoders_reach_are_refused(stand_in, tmp_path, monkeypatch):
    original = StandInEncoder.class_names

    def cut(self, names, template, modality):  # as a tokenizer that keeps the first words only
        return original(self, [CLASSES[0] if name.startswith("a very long") else name for name in names], template,
                        modality)

    monkeypatch.setattr(StandInEncoder, "class_names", cut)
    write_scene(tmp_path / "a.mp4", SCRIPT[:3])
    long_names = ["a very long name of a sound, first variant", "a very long name of a sound, second variant"]
    with pytest.raises(UserError, match="'a very long name of a sound, first variant' and 'a very long name of a "
                                        "sound, second variant' get the same audio text embedding"):
        Localizer(stand_in).localize([tmp_path / "a.mp4"], long_names)


def test_an_event_shown_as_1_passes_a_threshold_of_1():
    labels, confidence = ["dog barking"] * 3, [1.0, 0.99999, 0.99999]
    [event] = events_of(labels, confidence, 0.0)
    assert event["score"] == 1.0  # as events.json and the summary show it
    assert events_of(labels, confidence, 1.0) == [event]


def test_a_timeline_that_cannot_be_saved_loses_nothing_else(stand_in, tmp_path):
    long_stem = "é" * 125  # 250 bytes of UTF-8: with the timeline's prefix, longer than a file name may be
    write_scene(tmp_path / f"{long_stem}.mp4", SCRIPT[:3])
    write_scene(tmp_path / "b.mp4", SCRIPT[:3])
    results = Localizer(stand_in).localize([tmp_path], CLASSES)
    out = tmp_path / "out"
    out.mkdir()
    (out / "timelines").write_text("a file where the folder should be: every timeline fails")
    lines = write_outputs(out, results, CLASSES + ["other"], "v01", "stand-in")
    assert len(json.loads((out / "events.json").read_text())["videos"]) == 2
    assert sum("timeline was not saved" in line for line in lines) == 2
    (out / "timelines").unlink()
    write_outputs(out, results, CLASSES + ["other"], "v01", "stand-in")
    names = sorted(p.name for p in (out / "timelines").iterdir())
    assert len(names) == 2 and all(len(name.encode()) <= 255 for name in names)
    assert timeline_name(3, "é" * 200).startswith("0003_é") and len(timeline_name(3, "é" * 200).encode()) <= 255


def test_the_users_own_folder_is_never_written_into(stand_in, tmp_path):
    write_scene(tmp_path / "a.mp4", SCRIPT[:3])
    mine = tmp_path / "my_folder"
    mine.mkdir()
    (mine / "segments.csv").write_text("my own table\n")
    assert run_cli([*on(stand_in), tmp_path / "a.mp4", "--classes", ",".join(CLASSES), "--output", mine]) == 2
    assert (mine / "segments.csv").read_text() == "my own table\n" and not (mine / ".lock").exists()


def test_quoted_names_are_one_name_on_the_command_line_and_in_the_app():
    assert localize_lib.parse_class_text('"hello, world", dog') == ["hello, world", "dog"]
    assert localize_lib.parse_class_text("dog,\ncar horn ,") == ["dog", "car horn"]

