"""Localizing events in any video: known labels from a stand-in encoder, equality with the
benchmark path on a 10 s video, re-queries that encode nothing again, bad inputs."""

import csv
import dataclasses
import json
import subprocess
import sys

import av
import numpy as np
import pytest
import torch

import eval_zero_shot
import localize
from common import config as config_io
from common.schema import Config
from conftest import REPO
from data.annotations import AnnotationIndex
from models import cuerator
from models.temporal import LAYOUT, TemporalModel, TemporalSettings
from pipeline.localize import Localizer, UsageError, events_of
from stand_in import AUDIO_WIDTH, CLASSES, SCRIPT, VISION_WIDTH, StandInEncoder, write_scene
from tools import prepare_videos


@pytest.mark.parametrize("name, codec, audio_codec", [("scene.mp4", "libx264", "aac"), ("scene.mkv", "libx264", "aac"),
                                                      ("scene.webm", "libvpx", "libopus")])
def test_known_scenes_give_known_labels_and_events(stand_in, tmp_path, name, codec, audio_codec):
    write_scene(tmp_path / name, SCRIPT, codec, audio_codec)
    [result] = Localizer(stand_in).localize([tmp_path / name], CLASSES)
    assert result.status == "ok" and result.encoded and result.duration == pytest.approx(20, abs=0.03)  # the sound ends a few ms after
    assert result.labels == [label or "other" for label in SCRIPT]
    assert [(e["class"], e["start"], e["end"]) for e in result.events] == [("dog barking", 3, 7), ("car horn", 12, 16)]
    assert all(0 <= c <= 1 for c in result.confidence) and result.events[0]["score"] > 0.9
    columns = [(CLASSES + ["other"]).index(label) for label in result.labels]
    assert result.audio_probability.shape == result.frame_probability.shape == (20, 3)
    np.testing.assert_allclose(result.audio_probability.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_allclose([result.class_confidence(k)[t] for t, k in enumerate(columns)], result.confidence,
                               rtol=1e-6)
    [strict] = Localizer(stand_in, threshold=1.0).localize([tmp_path / name], CLASSES)
    kept = [e for e in result.events
            if np.mean(result.confidence[int(e["start"]):int(e["end"])]) >= 1.0]  # the threshold is inclusive
    assert strict.events == kept and not strict.encoded  # nothing re-encoded


def test_an_event_scoring_exactly_the_threshold_is_kept_and_runs_break_at_gaps():
    labels, confidence = ["a", "a", "other", "a", "b"], [0.5, 0.25, 0.9, 0.375, 0.8]
    assert [e["start"] for e in events_of(labels, confidence, 0.375)] == [0, 3, 4]
    assert [e["start"] for e in events_of(labels, confidence, float(np.nextafter(0.375, 1)))] == [4]
    # seconds 3 and 5 are not consecutive (no segment at 4: no sound there), so two events
    gap = events_of(["a", "a"], [0.5, 0.5], 0.0, starts=[3, 5])
    assert [(e["start"], e["end"]) for e in gap] == [(3.0, 4.0), (5.0, 6.0)]


def test_requerying_the_same_videos_encodes_only_new_names(stand_in, tmp_path, monkeypatch):
    write_scene(tmp_path / "a.mp4", SCRIPT[:10])
    write_scene(tmp_path / "b.mp4", SCRIPT[10:])
    decoding_workers = dataclasses.replace(stand_in, extract=dataclasses.replace(stand_in.extract, num_workers=2))
    first = Localizer(decoding_workers).localize([tmp_path], ["dog barking"])  # decoded in worker processes
    assert first[0].labels == [label or "other" for label in SCRIPT[:10]]
    encoded_names = []
    original = StandInEncoder.class_names
    monkeypatch.setattr(StandInEncoder, "class_names",
                        lambda self, names, t, m: encoded_names.append(list(names)) or original(self, names, t, m))
    again = Localizer(stand_in).localize([tmp_path], CLASSES)
    assert first[0].encoded and not again[0].encoded and not again[1].encoded
    assert encoded_names == [["car horn"], ["car horn"]]  # one new name, once per modality
    localizer = Localizer(stand_in)
    localizer.localize([tmp_path / "a.mp4"], ["car horn", "dog barking"])
    assert localizer.encoded_names == []


def test_bad_videos_are_listed_and_the_others_still_localized(stand_in, tmp_path, capsys):
    write_scene(tmp_path / "good.mp4", SCRIPT[:10])
    write_scene(tmp_path / "mute.mkv", SCRIPT[:10], audio=False)
    write_scene(tmp_path / "blink.mp4", ["dog barking"])  # exactly one whole second
    write_scene(tmp_path / "short.mp4", ["dog barking"], frames_per_second=3)  # the picture lasts 0.6 s
    (tmp_path / "notes.mp4").write_text("not a video at all")
    with av.open(str(tmp_path / "sound_only.mkv"), "w") as out:  # a sound track and no picture
        sound = out.add_stream("aac", rate=16000)
        for start in range(0, 32000, 1024):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate = 16000
            out.mux(sound.encode(frame))
        out.mux(sound.encode())
    with pytest.raises(SystemExit) as exit_status:
        localize.main([str(tmp_path), "--classes", ",".join(CLASSES), f"cache.dir={tmp_path / 'cache'}",
                       "extract.num_workers=0", "device=cpu", f"output.root={tmp_path / 'runs'}"])
    assert exit_status.value.code == 1
    events = json.loads((tmp_path / "runs" / "localize" / "localize" / "events.json").read_text())
    statuses = {r["path"].rsplit("/", 1)[1]: r["status"] for r in events["videos"]}
    assert statuses == {"blink.mp4": "ok", "good.mp4": "ok", "mute.mkv": "no_audio", "notes.mp4": "not_a_video",
                        "short.mp4": "too_short", "sound_only.mkv": "no_picture"}
    assert events["classes"] == CLASSES + ["other"] and events["method"] == "training-free v01"
    with open(tmp_path / "runs" / "localize" / "localize" / "segments.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 11 and rows[0].keys() == {"path", "segment", "start", "end", "label", "score"}
    assert "00:03-00:07  dog barking" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["x"], "give the class names one way"),
    (["x", "--classes", " , "], "no class names given"),
    (["x", "--classes", "a,b,a"], "duplicate class name"),
    (["x", "--classes", "a,other"], "'other' is the background class"),
    (["nowhere.mp4", "--classes", "a"], "no such file or folder: nowhere.mp4"),
])
def test_usage_errors_are_one_line(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x").mkdir()
    with pytest.raises(SystemExit) as exit_status:
        localize.cli.run(lambda: localize.main(argv + ["--config", str(REPO / "configs" / "localize.yaml"),
                                                       "encoder.size=tiny", "encoder.checkpoint=random",
                                                       f"cache.dir={tmp_path / 'c'}", "device=cpu"]))
    assert exit_status.value.code == 2 and message in capsys.readouterr().err


def test_a_ten_second_video_gives_the_benchmark_paths_labels(tmp_path):
    """localize = prepare_videos -> extraction -> eval_zero_shot on the same 10 s video."""
    raw = tmp_path / "raw"
    raw.mkdir()
    write_scene(raw / "clip01.mp4", SCRIPT[:10])
    meta, labels = tmp_path / "meta.csv", tmp_path / "labels.json"
    meta.write_text("split,cls_name,cls_type,vid_name\ntest,dog barking,close,clip01\n"
                    "test,car horn,open,clip02\n")
    labels.write_text(json.dumps({"clip01": {"category": "dog barking", "label": "[0,0,0,1,1,1,1,0,0,0]"},
                                  "clip02": {"category": "car horn", "label": "[0,0,0,0,0,0,0,0,0,0]"}}))
    write_scene(raw / "clip02.mp4", SCRIPT[10:])
    common = [f"data.meta_csv={meta}", f"data.label_json={labels}", f"data.media_root={tmp_path / 'media'}",
              "encoder.size=tiny", "encoder.checkpoint=random", "device=cpu", "extract.num_workers=0"]
    prepare_videos.main(["--videos", str(raw), "--workers", "1", *common])
    eval_zero_shot.main([*common, f"cache.dir={tmp_path / 'bench_cache'}", f"output.root={tmp_path / 'runs'}"])
    with open(tmp_path / "runs" / "v0_training_free_v01_test" / "predictions.csv", newline="") as handle:
        benchmark = {row["vid_name"]: row["predicted_segments"].split("|") for row in csv.DictReader(handle)}
    config = config_io.load(Config, REPO / "configs" / "localize.yaml", [*common, f"cache.dir={tmp_path / 'cache'}"])
    names = list(AnnotationIndex.load(meta, labels).all_vocabulary.names[:-1])  # the benchmark's class order
    results = Localizer(config).localize([raw / "clip01.mp4", raw / "clip02.mp4"], names)
    assert [r.labels for r in results] == [benchmark["clip01"], benchmark["clip02"]]


def test_a_long_video_goes_through_the_temporal_layers_in_windows(tmp_path):
    settings = TemporalSettings(attn_dim=8, ffn_dim=8)
    torch.manual_seed(0)
    checkpoint = tmp_path / "best.pt"
    torch.save({"model": TemporalModel(16, settings).state_dict(), "temporal": dataclasses.asdict(settings),
                "layout": LAYOUT, "widths": {"audio": 16, "vision": 16}, "epoch": 1}, checkpoint)
    write_scene(tmp_path / "long.mp4", SCRIPT + SCRIPT[:3])  # 23 s: windows of 10, 10 and 3 seconds
    config = config_io.load(Config, REPO / "configs" / "localize.yaml", [
        "encoder.size=tiny", "encoder.checkpoint=random", "device=cpu", "extract.num_workers=0",
        f"cache.dir={tmp_path / 'cache'}"])
    localizer = Localizer(config, checkpoint)
    [result] = localizer.localize([tmp_path / "long.mp4"], CLASSES)
    assert len(result.labels) == 23 and set(result.labels) <= set(CLASSES + ["other"])
    assert localizer.method.endswith("(v1)")
    windows = [localizer.localize([tmp_path / f"w{k}.mp4"], CLASSES)[0] for k in range(3)
               if write_scene(tmp_path / f"w{k}.mp4", (SCRIPT + SCRIPT[:3])[10 * k:10 * k + 10]) is None]
    assert sum((w.labels for w in windows), []) == result.labels  # windows decoded as separate clips
    training_free = Localizer(config)  # one localizer, the decoding chosen per query
    assert training_free.localize([tmp_path / "long.mp4"], CLASSES, training_free.decoding(checkpoint=checkpoint)
                                  )[0].labels == result.labels
    rule = training_free.localize([tmp_path / "long.mp4"], CLASSES, training_free.decoding("v0"))[0]
    assert rule.labels == Localizer(config, strategy="v0").localize([tmp_path / "long.mp4"], CLASSES)[0].labels
    assert training_free.decoding(checkpoint=checkpoint).name.endswith("(v1)")
    wider = config_io.load(Config, REPO / "configs" / "localize.yaml", [
        "encoder.size=small", "encoder.checkpoint=random", "device=cpu", f"cache.dir={tmp_path / 'c2'}"])
    with pytest.raises(UsageError, match=r"trained on embeddings of widths \{'audio': 16, 'vision': 16\}, but "
                                         r"ImageBind-small \(fp32\) gives \{'audio': 24, 'vision': 24\}"):
        Localizer(wider, checkpoint)


@pytest.mark.slow
def test_torchrun_shares_the_videos_and_merges_one_output(tmp_path):
    for k in range(3):
        write_scene(tmp_path / "videos" / f"v{k}.mp4", SCRIPT[k:k + 10])
    common = [str(tmp_path / "videos"), "--classes", ",".join(CLASSES), "encoder.size=tiny",
              "encoder.checkpoint=random", "device=cpu", "extract.num_workers=0"]
    localize.main([*common, f"cache.dir={tmp_path / 'c1'}", "--output", str(tmp_path / "one")])  # one process
    double = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                             str(REPO / "localize.py"), *common, f"cache.dir={tmp_path / 'c2'}",
                             "--output", str(tmp_path / "two")], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert double.returncode == 0, double.stderr[-2000:]
    one, two = (json.loads((tmp_path / name / "events.json").read_text()) for name in ("one", "two"))
    assert [v["path"] for v in two["videos"]] == [v["path"] for v in one["videos"]]
    for a, b in zip(one["videos"], two["videos"]):
        assert [(e["class"], e["start"], e["end"]) for e in a["events"]] == \
            [(e["class"], e["start"], e["end"]) for e in b["events"]]
        for x, y in zip(a["events"], b["events"]):
            assert x["score"] == pytest.approx(y["score"], abs=1e-3)
    assert (tmp_path / "one" / "segments.csv").read_text().count("\n") == \
        (tmp_path / "two" / "segments.csv").read_text().count("\n")


def test_end_to_end_with_the_small_random_encoder(tmp_path, capsys):
    write_scene(tmp_path / "clip.mp4", SCRIPT[:12])
    localize.main([str(tmp_path / "clip.mp4"), "--classes", ", ".join(CLASSES), "--output", str(tmp_path / "out"),
                   "encoder.size=small", "encoder.checkpoint=random", "device=cpu", "extract.num_workers=0",
                   f"cache.dir={tmp_path / 'cache'}"])
    events = json.loads((tmp_path / "out" / "events.json").read_text())
    [video] = events["videos"]
    assert video["status"] == "ok" and video["segments"] == 12 and video["encoded"]
    assert events["encoder"] == "ImageBind-small (fp32)" and events["method"] == "training-free v01"
    assert events["classes"] == CLASSES + ["other"]  # "a, b": names stripped
    assert (tmp_path / "out" / "timelines" / "0000_clip.png").is_file()
    assert "clip.mp4: 12 s" in capsys.readouterr().out



MARGIN = torch.tensor([0.03, 0.015, 0.03, 0.03, 0.0, 0.0])  # how far each axis stands out: dog more than car horn


def _unsaturated(x: torch.Tensor) -> torch.Tensor:
    """One-hot stand-in embeddings moved close together, so 100 x cosine gives soft probabilities."""
    return x * (x @ MARGIN[:x.shape[-1]])[..., None] + 0.5


def _expected_probabilities(axes: list[int], width: int) -> np.ndarray:
    """softmax over (dog barking, car horn, other) of 100 x cos(embedding, name), in float64."""
    rows = []
    for axis in axes:
        v = np.full(width, 0.5)
        v[axis] += float(MARGIN[axis])
        cos = v[:3] / np.linalg.norm(v)  # the names are the first three axes
        rows.append(np.exp(100 * cos) / np.exp(100 * cos).sum())
    return np.array(rows)


def test_confidences_are_the_softmax_of_100_cosines_and_the_threshold_filters(stand_in, tmp_path, monkeypatch,
                                                                             capsys):
    original = StandInEncoder.segments
    monkeypatch.setattr(StandInEncoder, "segments",
                        lambda self, c, f: tuple(_unsaturated(x) for x in original(self, c, f)))
    write_scene(tmp_path / "a.mp4", SCRIPT[:20])
    [result] = Localizer(stand_in).localize([tmp_path / "a.mp4"], CLASSES)
    heard = [CLASSES.index(s) if s else 2 for s in SCRIPT[:20]]  # silence lies on `other`
    seen = [CLASSES.index(s) if s else 3 for s in SCRIPT[:20]]  # a grey frame on the fourth axis
    p_audio, p_frame = _expected_probabilities(heard, AUDIO_WIDTH), _expected_probabilities(seen, VISION_WIDTH)
    np.testing.assert_allclose(result.audio_probability, p_audio, rtol=1e-4)
    np.testing.assert_allclose(result.frame_probability, p_frame, rtol=1e-4)
    columns = [(CLASSES + ["other"]).index(label) for label in result.labels]
    expected = np.sqrt(p_audio[np.arange(20), columns] * p_frame[np.arange(20), columns])
    np.testing.assert_allclose(result.confidence, expected, rtol=1e-4)
    dog, car = (e["score"] for e in result.events)
    assert 0.3 < car < dog < 0.99  # soft: the temperature shows in the numbers
    between = (dog + car) / 2
    localize.main([str(tmp_path / "a.mp4"), "--classes", ",".join(CLASSES), "--threshold", str(between),
                   "--output", str(tmp_path / "out"), f"cache.dir={stand_in.cache.dir}", "extract.num_workers=0",
                   "device=cpu"])
    events = json.loads((tmp_path / "out" / "events.json").read_text())["videos"][0]["events"]
    assert [e["class"] for e in events] == ["dog barking"]  # car horn scores below the threshold


def test_a_file_rewritten_in_place_is_encoded_again(stand_in, tmp_path):
    localizer = Localizer(stand_in)
    write_scene(tmp_path / "a.mp4", SCRIPT[:10])
    [first] = localizer.localize([tmp_path / "a.mp4"], CLASSES)
    write_scene(tmp_path / "a.mp4", SCRIPT[10:])  # the same path, other content
    [second] = localizer.localize([tmp_path / "a.mp4"], CLASSES)
    assert first.encoded and second.encoded
    assert second.labels == [label or "other" for label in SCRIPT[10:]] != first.labels


def test_strategy_on_the_command_line_chooses_the_rule(stand_in, tmp_path):
    write_scene(tmp_path / "a.mp4", ["other"] * 3 + ["dog barking"] * 3)  # first agreement: on `other`
    common = [str(tmp_path / "a.mp4"), "--classes", ",".join(CLASSES), f"cache.dir={stand_in.cache.dir}",
              "extract.num_workers=0", "device=cpu"]
    localize.main([*common, "--output", str(tmp_path / "v01")])
    localize.main([*common, "--strategy", "v0", "--output", str(tmp_path / "v0")])
    v01, v0 = (json.loads((tmp_path / name / "events.json").read_text()) for name in ("v01", "v0"))
    assert v01["method"] == "training-free v01" and v01["videos"][0]["events"] == []  # the published quirk
    assert v0["method"] == "training-free v0"
    assert [(e["class"], e["start"], e["end"]) for e in v0["videos"][0]["events"]] == [("dog barking", 0.0, 6.0)]


def test_benchmark_classes_on_the_command_line(synthetic_bench, tmp_path):
    write_scene(tmp_path / "a.mp4", SCRIPT[:4])
    localize.main([str(tmp_path / "a.mp4"), "--benchmark-classes", "--output", str(tmp_path / "out"),
                   f"data.meta_csv={synthetic_bench['meta_csv']}", f"data.label_json={synthetic_bench['label_json']}",
                   "encoder.size=tiny", "encoder.checkpoint=random", "device=cpu", "extract.num_workers=0",
                   f"cache.dir={tmp_path / 'cache'}"])
    index = AnnotationIndex.load(synthetic_bench["meta_csv"], synthetic_bench["label_json"])
    assert json.loads((tmp_path / "out" / "events.json").read_text())["classes"] == list(
        index.all_vocabulary.names)  # the benchmark's names, sorted, `other` last


def policy_checkpoint(path, params, widths=(VISION_WIDTH, AUDIO_WIDTH), family: str = "imagebind"):
    """A CueRator policy checkpoint (their layout) giving every video ``params``: its head's
    weights are zero, its bias the raw values that map to them. ``widths``: visual, audio."""
    video_dim, audio_dim = (widths, widths) if isinstance(widths, int) else widths
    policy = cuerator.CueRatorPolicy(video_dim, audio_dim, 8, 2, 16)
    low, high = cuerator.PARAM_RANGES.T
    share = np.clip((np.asarray(params, np.float64) - low) / (high - low), 1e-7, 1 - 1e-7)
    with torch.no_grad():
        policy.mu_head.weight.zero_()
        policy.mu_head.bias.copy_(torch.from_numpy(np.log(share / (1 - share))).float())
    torch.save({"policy_state_dict": policy.state_dict(), "epoch": 1, "config": {
        "encoder": family, "video_dim": video_dim, "audio_dim": audio_dim, "policy_model_dim": 8,
        "policy_transformer_nhead": 2, "policy_transformer_ff_dim": 16, "policy_dropout": 0.1}}, path)
    return path


BIASED = [0.05, 0, 0, 0, 0, 0.05, 0, 0, 0, 0]  # a class passes when its cosine is above 0.05: the stand-in's own


def test_cuerators_rule_and_policy_localize_a_long_video(stand_in, tmp_path):
    write_scene(tmp_path / "long.mp4", SCRIPT)  # 20 s: two windows
    common = [str(tmp_path / "long.mp4"), "--classes", ",".join(CLASSES), f"cache.dir={stand_in.cache.dir}",
              "extract.num_workers=0", "device=cpu"]
    localize.main([*common, "--strategy", "cuerator_rule", f"cuerator.params={BIASED}", "--output",
                   str(tmp_path / "rule")])
    checkpoint = policy_checkpoint(tmp_path / "policy.ckpt", BIASED)
    localize.main([*common, "--checkpoint", str(checkpoint), "--output", str(tmp_path / "policy")])
    rule, policy = (json.loads((tmp_path / name / "events.json").read_text()) for name in ("rule", "policy"))
    assert rule["method"] == "CueRator cuerator_rule" and policy["method"].endswith("(cuerator_policy)")
    for run in (rule, policy):
        assert [(e["class"], e["start"], e["end"]) for e in run["videos"][0]["events"]] == [
            ("dog barking", 3.0, 7.0), ("car horn", 12.0, 16.0)]
    with pytest.raises(UsageError, match="--strategy cuerator_policy decodes with a trained model: give its "
                                         "--checkpoint"):
        localize.main([*common, "--strategy", "cuerator_policy"])


def test_the_app_offers_cuerators_rule_when_the_config_gives_it(stand_in, tmp_path):
    from webapp.explorer import Explorer

    assert not any("cuerator" in name for name in Explorer(Localizer(stand_in)).decodings)
    configured = dataclasses.replace(stand_in, cuerator=dataclasses.replace(stand_in.cuerator, params=BIASED))
    checkpoint = policy_checkpoint(tmp_path / "policy.ckpt", BIASED)
    explorer = Explorer(Localizer(configured), checkpoints=[checkpoint])
    assert "CueRator cuerator_rule" in explorer.decodings
    assert explorer.decodings[f"checkpoint {checkpoint}"].strategy.name == "cuerator_policy"
    write_scene(tmp_path / "a.mp4", SCRIPT[:10])
    answer = explorer.ask(tmp_path / "a.mp4", ", ".join(CLASSES), f"checkpoint {checkpoint}")
    assert answer.result.labels == [label or "other" for label in SCRIPT[:10]]
