"""The localizer on the files people have: phone clips, streams that start late, cut files,
twins, odd class lists and outputs, checkpoints that do not fit, several processes on one store,
interruptions."""

import argparse
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import localize
import train
from common import cli
from common import config as config_io
from common.errors import UserError
from common.schema import Config
from conftest import REPO
from data.synthetic import write_video
from models.decoders import decode_fine_tuning
from models.temporal import LAYOUT, TemporalModel, TemporalSettings
from pipeline import localize as localize_lib
from pipeline.localize import Localizer
from stand_in import CLASSES, COLOUR, PITCH, SCRIPT, StandInEncoder, write_scene

RATE, FPS = 48000, 5


def scene_arrays(script, start: float = 0.0):
    """Pictures and sound of ``script`` (a class name or None per second), as write_scene makes them."""
    t = np.arange(RATE) / RATE
    pictures = [np.full((48, 64, 3), COLOUR.get(label, (128, 128, 128)), np.uint8) for label in script
                for _ in range(FPS)]
    sound = np.concatenate([0.3 * np.sin(2 * np.pi * PITCH[label] * t) if label else np.zeros(RATE)
                            for label in script]).astype(np.float32)[None]
    return pictures, sound


def run_cli(args) -> int:
    """localize.py's exit status for ``args``, as the command line would see it."""
    with pytest.raises(SystemExit) as exit_info:
        cli.run(lambda: localize.main([str(a) for a in args]))
        raise SystemExit(0)
    return exit_info.value.code


def on(config) -> list[str]:
    """The stand-in config's keys as command-line overrides."""
    return [f"cache.dir={config.cache.dir}", f"extract.num_workers={config.extract.num_workers}",
            f"device={config.device}", f"output.root={config.output.root}"]


def tiny(tmp_path, *extra):
    return ["encoder.size=tiny", "encoder.checkpoint=random", "device=cpu", "extract.num_workers=0",
            f"cache.dir={tmp_path / 'cache'}", *extra]


def test_a_late_sound_gives_times_on_the_players_clock(stand_in, tmp_path):
    script = [None] * 5 + ["dog barking"] * 3 + [None] * 2  # what is seen and heard, second by second
    pictures, _ = scene_arrays(script)
    _, sound = scene_arrays(script[3:])  # the sound starts 3 s after the picture
    write_video(tmp_path / "late.mp4", pictures, [sound], FPS, RATE, sound_start=3)
    [result] = Localizer(stand_in).localize([tmp_path / "late.mp4"], CLASSES)
    assert result.starts == list(range(3, 10)) and result.duration == pytest.approx(10, abs=0.05)
    assert result.labels == [label or "other" for label in script[3:]]
    assert [(e["class"], e["start"], e["end"]) for e in result.events] == [("dog barking", 5.0, 8.0)]
    assert run_cli([*on(stand_in), tmp_path / "late.mp4", "--classes", ",".join(CLASSES), "--output",
                    tmp_path / "out"]) == 0
    rows = (tmp_path / "out" / "segments.csv").read_text().splitlines()
    assert rows[1].split(",")[1:4] == ["0", "3", "4"]  # the first segment starts at 3 s
    events = json.loads((tmp_path / "out" / "events.json").read_text())
    assert events["videos"][0]["events"][0]["start"] == 5.0


def test_a_phone_clip_reaches_the_encoder_upright(stand_in, tmp_path):
    seen = []
    backbone = localize_lib.family("stand-in")
    original = backbone.frame_window
    backbone.frame_window = lambda images: seen.extend(image.size for image in images) or original(images)
    write_scene(tmp_path / "plain.mp4", SCRIPT[:3])
    pictures, sound = scene_arrays(SCRIPT[:3])
    write_video(tmp_path / "phone.mp4", pictures, [sound], FPS, RATE, rotation=-90)  # held upright
    Localizer(stand_in).localize([tmp_path / "plain.mp4", tmp_path / "phone.mp4"], CLASSES)
    assert seen == [(64, 48)] * 3 + [(48, 64)] * 3  # (width, height): the phone's frames are portrait


def test_a_cut_file_is_partial_its_seconds_localized_and_the_exit_status_1(stand_in, tmp_path):
    write_scene(tmp_path / "whole.mkv", (SCRIPT + SCRIPT)[:30])
    data = (tmp_path / "whole.mkv").read_bytes()
    (tmp_path / "cut.mkv").write_bytes(data[:len(data) // 2])
    assert run_cli([*on(stand_in), tmp_path / "cut.mkv", "--classes", ",".join(CLASSES), "--output",
                    tmp_path / "out"]) == 1
    [video] = json.loads((tmp_path / "out" / "events.json").read_text())["videos"]
    assert video["status"] == "partial" and "declares 30.0 s" in video["reason"]
    assert 0 < video["segments"] < 30 and video["events"]


def test_twins_are_encoded_once_and_a_path_given_twice_is_one_input(stand_in, tmp_path, monkeypatch):
    write_scene(tmp_path / "a.mp4", SCRIPT[:10])
    shutil.copy(tmp_path / "a.mp4", tmp_path / "b.mp4")
    encoded = []
    original = StandInEncoder.segments
    monkeypatch.setattr(StandInEncoder, "segments",
                        lambda self, c, f: encoded.append(c.shape[1]) or original(self, c, f))
    workers = dataclasses.replace(stand_in, extract=dataclasses.replace(stand_in.extract, num_workers=2))
    results = Localizer(workers).localize([tmp_path / "a.mp4", tmp_path / "b.mp4", tmp_path / "a.mp4"], CLASSES)
    assert [r.path for r in results] == [str(tmp_path / "a.mp4"), str(tmp_path / "b.mp4")]
    assert results[0].events == results[1].events and results[0].events
    assert sum(encoded) == 10  # ten seconds, encoded once for both names


def test_windows_of_several_videos_share_an_encoder_call(stand_in, tmp_path, monkeypatch):
    for k in range(3):
        write_scene(tmp_path / f"v{k}.mp4", SCRIPT[k:k + 12])  # windows of 10 and 2 seconds each
    calls = []
    original = StandInEncoder.segments
    monkeypatch.setattr(StandInEncoder, "segments", lambda self, c, f: calls.append(c.shape[1]) or original(self, c, f))
    batched = dataclasses.replace(stand_in, extract=dataclasses.replace(stand_in.extract, batch_size=4))
    results = Localizer(batched).localize([tmp_path], CLASSES)
    assert calls == [10 + 2 + 10 + 2, 10 + 2]  # four windows per call, whatever their videos
    alone = [Localizer(dataclasses.replace(stand_in, cache=dataclasses.replace(stand_in.cache, dir=str(
        tmp_path / f"c{k}")))).localize([tmp_path / f"v{k}.mp4"], CLASSES)[0] for k in range(3)]
    assert [r.labels for r in results] == [r.labels for r in alone]


def test_a_damaged_store_entry_is_encoded_again(stand_in, tmp_path):
    write_scene(tmp_path / "a.mp4", SCRIPT[:10])
    [first] = Localizer(stand_in).localize([tmp_path / "a.mp4"], CLASSES)
    [entry] = [p for p in (tmp_path / "cache" / "videos").iterdir() if not p.name.startswith(".")]
    audio = np.memmap(entry / "audio.f32", dtype=np.float32, mode="r+")
    audio[3] = np.nan
    audio.flush()
    [again] = Localizer(stand_in).localize([tmp_path / "a.mp4"], CLASSES)
    assert again.encoded and again.labels == first.labels and np.isfinite(again.confidence).all()
    (entry / "vision.f32").write_bytes((entry / "vision.f32").read_bytes()[:-4])  # truncated
    [third] = Localizer(stand_in).localize([tmp_path / "a.mp4"], CLASSES)
    assert third.encoded and third.labels == first.labels


def test_a_second_without_evidence_is_background_for_the_localizer_only():
    sims = -np.abs(np.random.default_rng(0).standard_normal((2, 1, 10, 4))).astype(np.float32)
    sims[1] *= -1  # audio positive, visual negative: every product <= 0
    assert (decode_fine_tuning(*sims).segment_labels == 0).all()  # the published rule: class 0
    assert (decode_fine_tuning(*sims, no_evidence="background").segment_labels == 3).all()


def checkpoint_file(path, family="imagebind", widths=16):
    settings = TemporalSettings(attn_dim=8, ffn_dim=8)
    torch.manual_seed(0)
    torch.save({"model": TemporalModel(widths, settings).state_dict(), "temporal": dataclasses.asdict(settings),
                "layout": LAYOUT, "widths": {"audio": widths, "vision": widths}, "epoch": 1,
                "config": {"encoder": {"family": family, "size": "tiny"}}}, path)
    return path


@pytest.mark.parametrize("make, message, evaluate_message", [
    (lambda p: checkpoint_file(p, family="clip_clap"), "was trained on the clip_clap family's embeddings", None),
    (lambda p: torch.save(TemporalModel(16, TemporalSettings()).state_dict(), p),
     "is not a checkpoint any strategy reads (a bare state dict", "is not a fine-tuning checkpoint (a bare state dict"),
    (lambda p: p.write_bytes(b"not a torch file"), "is not a readable checkpoint",
     "is not a readable fine-tuning checkpoint"),
])
def test_checkpoints_that_do_not_fit_are_one_line(tmp_path, capsys, make, message, evaluate_message):
    path = tmp_path / "best.pt"
    make(path)
    write_scene(tmp_path / "a.mp4", SCRIPT[:3])
    assert run_cli([tmp_path / "a.mp4", "--classes", "x", "--checkpoint", path, *tiny(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "weights_only" not in err and "Traceback" not in err
    assert not (tmp_path / "cache").exists()  # refused before any work
    with pytest.raises(UserError, match=(evaluate_message or message).replace("(", r"\(")):  # fine-tuning only
        train.main(["--evaluate", str(path), "eval.split=test", *tiny(tmp_path), f"output.root={tmp_path / 'runs'}"])
    assert not (tmp_path / "runs").exists() and not (tmp_path / "cache").exists()


def test_strategy_with_a_checkpoint_is_refused(tmp_path, capsys):
    write_scene(tmp_path / "a.mp4", SCRIPT[:3])
    path = checkpoint_file(tmp_path / "best.pt")
    assert run_cli([tmp_path / "a.mp4", "--classes", "x", "--checkpoint", path, "--strategy", "v0",
                    *tiny(tmp_path)]) == 2
    assert ("--strategy v0 decodes the frozen embeddings; a --checkpoint is decoded by v1, cuerator_policy, "
            "complex_fusion: leave one of them out") in capsys.readouterr().err


def test_class_files_and_class_lists_as_people_write_them(stand_in, tmp_path, capsys):
    write_scene(tmp_path / "a.mp4", SCRIPT[:6])
    names = tmp_path / "names.txt"
    names.write_bytes("\ufeff# my classes\ndog barking\n\n  car horn  \n# done\n".encode())
    assert run_cli([*on(stand_in), tmp_path / "a.mp4", "--classes-file", names, "--output", tmp_path / "o1"]) == 0
    assert json.loads((tmp_path / "o1" / "events.json").read_text())["classes"] == CLASSES + ["other"]
    names.write_bytes("dog barking\ncafé\n".encode("latin-1"))
    assert run_cli([*on(stand_in), tmp_path / "a.mp4", "--classes-file", names]) == 2
    assert "is not UTF-8 (byte 15 is 0xe9); save it as UTF-8" in capsys.readouterr().err
    quoted = argparse.Namespace(classes='"dog, barking",car horn', classes_file=None, benchmark_classes=False)
    assert localize.class_names(quoted, stand_in) == ["dog, barking", "car horn"]
    assert run_cli([*on(stand_in), tmp_path / "a.mp4", "--classes", "Dog barking,dog  barking"]) == 2
    assert "duplicate class name(s): 'Dog barking' = 'dog  barking'" in capsys.readouterr().err


@pytest.mark.parametrize("threshold", ["nan", "inf", "1.5", "-1"])
def test_a_threshold_outside_0_1_is_refused(stand_in, tmp_path, capsys, threshold):
    write_scene(tmp_path / "a.mp4", SCRIPT[:3])
    assert run_cli([*on(stand_in), tmp_path / "a.mp4", "--classes", "x", f"--threshold={threshold}"]) == 2
    assert "choose a threshold in that range" in capsys.readouterr().err


def test_the_threshold_is_recorded(stand_in, tmp_path):
    write_scene(tmp_path / "a.mp4", SCRIPT[:6])
    assert run_cli([*on(stand_in), tmp_path / "a.mp4", "--classes", ",".join(CLASSES), "--threshold", "0.25",
                    "--output", tmp_path / "out"]) == 0
    assert json.loads((tmp_path / "out" / "events.json").read_text())["threshold"] == 0.25


def test_a_video_gone_after_it_was_listed_is_reported_and_the_others_are_localized(stand_in, tmp_path,
                                                                                   monkeypatch, capsys):
    write_scene(tmp_path / "videos" / "a.mp4", SCRIPT[:6])
    write_scene(tmp_path / "videos" / "b.mp4", SCRIPT[6:12])
    listed = localize.find_videos

    def listed_then_one_deleted(paths):
        found = listed(paths)
        (tmp_path / "videos" / "a.mp4").unlink()  # e.g. a download tool renaming its files meanwhile
        return found

    monkeypatch.setattr(localize, "find_videos", listed_then_one_deleted)
    assert run_cli([*on(stand_in), tmp_path / "videos", "--classes", ",".join(CLASSES),
                    "--output", tmp_path / "out"]) == 1
    assert "1 of 2 videos could not be localized in full" in capsys.readouterr().err
    gone, kept = json.loads((tmp_path / "out" / "events.json").read_text())["videos"]
    assert gone["path"].endswith("a.mp4") and gone["status"] == "unreadable"
    assert "a.mp4 cannot be read: FileNotFoundError" in gone["reason"]
    assert kept["path"].endswith("b.mp4") and kept["status"] == "ok" and kept["events"]


def test_a_template_needs_exactly_one_placeholder():
    with pytest.raises(UserError, match=r"encoder.text_template_audio: 'the {} of {}' must hold exactly one \{\}"):
        config_io.load(Config, REPO / "configs" / "localize.yaml", ["encoder.text_template_audio=the {} of {}"])


def test_folders_are_searched_for_every_video_suffix_and_an_empty_one_is_a_usage_error(stand_in, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert run_cli([*on(stand_in), tmp_path / "empty", "--classes", "x", "--output", tmp_path / "out"]) == 2
    assert "no video in" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing to do: no output folder left behind
    write_scene(tmp_path / "videos" / "a.mp4", SCRIPT[:3])
    for suffix in (".mts", ".m2ts", ".3gp", ".ts", ".mpg", ".wmv", ".flv", ".ogv"):
        shutil.copy(tmp_path / "videos" / "a.mp4", tmp_path / "videos" / f"a{suffix}")
    results = Localizer(stand_in).localize([tmp_path / "videos"], CLASSES)
    assert len(results) == 9 and all(r.status == "ok" for r in results)


def test_a_bad_output_is_found_before_any_work(stand_in, tmp_path, capsys):
    write_scene(tmp_path / "a.mp4", SCRIPT[:3])
    (tmp_path / "file").write_text("x")
    classes = ",".join(CLASSES)
    assert run_cli([*on(stand_in), tmp_path / "a.mp4", "--classes", classes, "--output", tmp_path / "file"]) == 2
    assert "--output" in capsys.readouterr().err and not (tmp_path / "cache").exists()
    assert run_cli([*on(stand_in), tmp_path / "a.mp4", "--classes", classes, "--output", tmp_path / "out"]) == 0
    shutil.rmtree(tmp_path / "cache")
    assert run_cli([*on(stand_in), tmp_path / "a.mp4", "--classes", classes, "--output", tmp_path / "out"]) == 2
    err = capsys.readouterr().err
    assert "already holds the results" in err and "output.name" not in err and not (tmp_path / "cache").exists()


def localize_process(tmp_path, videos, output, *extra, **popen):
    return subprocess.Popen([sys.executable, str(REPO / "localize.py"), *map(str, videos), "--classes",
                             ",".join(CLASSES), "--output", str(output), *tiny(tmp_path, *extra)],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


@pytest.mark.slow
def test_two_processes_share_one_store_from_another_directory(tmp_path):
    for k, name in enumerate("abc"):
        write_scene(tmp_path / f"{name}.mp4", SCRIPT[2 * k:2 * k + 6])
    first = localize_process(tmp_path, [tmp_path / "a.mp4", tmp_path / "b.mp4"], tmp_path / "one")
    second = localize_process(tmp_path, [tmp_path / "b.mp4", tmp_path / "c.mp4"], tmp_path / "two")
    for process in (first, second):  # run from tmp_path: the default config is the toolkit's
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-2000:]
    one, two = (json.loads((tmp_path / n / "events.json").read_text())["videos"] for n in ("one", "two"))
    assert [v["encoded"] for v in (one[1], two[0])].count(True) == 1  # b: encoded by exactly one of them
    assert one[1]["events"] == two[0]["events"]
    entries = [p for p in (tmp_path / "cache" / "videos").iterdir() if not p.name.startswith(".")]
    assert len(entries) == 3


def wait_for(condition, seconds: float = 120):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.slow
def test_a_killed_encoding_resumes_where_it_stopped(tmp_path, monkeypatch):
    write_scene(tmp_path / "long.mp4", SCRIPT * 6)  # 120 s: twelve windows, each kept as a part
    killed = localize_process(tmp_path, [tmp_path / "long.mp4"], tmp_path / "killed", "extract.batch_size=1")
    parts = tmp_path / "cache" / "videos" / ".parts"
    wait_for(lambda: parts.is_dir() and any(len(list(p.glob("part_*.npz"))) >= 2 for p in parts.iterdir()))
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    kept = sum(len(list(p.glob("part_*.npz"))) for p in parts.iterdir())
    assert 2 <= kept < 12 and not list((tmp_path / "cache" / "videos").glob(".*.*"))  # no staging left behind
    config = config_io.load(Config, REPO / "configs" / "localize.yaml", tiny(tmp_path))
    counted = []
    localizer = Localizer(config)
    encoder = localizer.encoder()
    original = encoder.segments
    monkeypatch.setattr(encoder, "segments", lambda c, f: counted.append(c.shape[1]) or original(c, f))
    [resumed] = localizer.localize([tmp_path / "long.mp4"], CLASSES)
    assert sum(counted) == 120 - 10 * kept  # the kept windows were not encoded again
    fresh = dataclasses.replace(config, cache=dataclasses.replace(config.cache, dir=str(tmp_path / "fresh")))
    [whole] = Localizer(fresh).localize([tmp_path / "long.mp4"], CLASSES)
    assert resumed.labels == whole.labels and resumed.starts == whole.starts == list(range(120))
    np.testing.assert_allclose(resumed.confidence, whole.confidence, atol=1e-5)
    assert not parts.exists() or not any(parts.iterdir())  # the parts became the entry


def ctrl_c_as_in_a_terminal():
    """A suite started in the background (as CI does) ignores SIGINT, and children inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_ctrl_c_ends_with_one_line_and_status_130(tmp_path):
    write_scene(tmp_path / "long.mp4", SCRIPT * 18)  # 36 windows: still encoding when Ctrl-C comes, even when busy
    process = localize_process(tmp_path, [tmp_path / "long.mp4"], tmp_path / "out", "extract.batch_size=1",
                               preexec_fn=ctrl_c_as_in_a_terminal)
    parts = tmp_path / "cache" / "videos" / ".parts"
    wait_for(lambda: parts.is_dir() and any(any(p.glob("part_*.npz")) for p in parts.iterdir()))
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "interrupted: the videos encoded so far are kept" in err and "Traceback" not in err
    assert not os.path.exists(tmp_path / "out" / "events.json")


def test_a_store_that_cannot_be_written_serves_what_it_holds(stand_in, tmp_path, capsys):
    write_scene(tmp_path / "held.mp4", SCRIPT[:6])
    write_scene(tmp_path / "new.mp4", SCRIPT[6:12])
    [first] = Localizer(stand_in).localize([tmp_path / "held.mp4"], CLASSES)
    claims = tmp_path / "cache" / "videos" / ".claims"
    shutil.rmtree(claims)
    claims.write_text("")  # no claim can be taken: the store is as good as read-only
    [again] = Localizer(stand_in).localize([tmp_path / "held.mp4"], CLASSES)
    assert again.labels == first.labels and not again.encoded
    assert run_cli([*on(stand_in), tmp_path / "new.mp4", "--classes", ",".join(CLASSES)]) == 2
    assert "cannot encode into the embedding store at" in capsys.readouterr().err


def test_with_a_checkpoint_a_second_without_evidence_is_other(tmp_path):
    path = checkpoint_file(tmp_path / "blind.pt")
    state = torch.load(path, weights_only=True)
    for name in state["model"]:
        if ".norm" in name:  # post-LayerNorm with zero gain and bias: every embedding becomes 0
            state["model"][name].zero_()
    torch.save(state, path)
    write_scene(tmp_path / "a.mp4", SCRIPT[:10])
    config = config_io.load(Config, REPO / "configs" / "localize.yaml", tiny(tmp_path))
    [result] = Localizer(config, path).localize([tmp_path / "a.mp4"], CLASSES)
    assert result.labels == ["other"] * 10 and result.events == []  # not the first name, ten times


def test_a_config_file_of_ones_own_on_the_command_line(stand_in, tmp_path):
    write_scene(tmp_path / "a.mp4", SCRIPT[:6])
    mine = tmp_path / "mine.yaml"
    mine.write_text(f"_base_: {REPO / 'configs' / 'localize.yaml'}\noutput:\n  plots: false\n")
    assert run_cli([*on(stand_in), tmp_path / "a.mp4", "--classes", ",".join(CLASSES), "--config", mine,
                    "--output", tmp_path / "out"]) == 0
    assert (tmp_path / "out" / "events.json").is_file() and not (tmp_path / "out" / "timelines").exists()
    assert "plots: false" in (tmp_path / "out" / "config.yaml").read_text()
