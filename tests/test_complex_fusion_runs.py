"""Complex-valued fusion trained through train.py on the cache like the fine-tuning baseline: the
same outputs, selection and resume; a rule the geometric mean cannot express is learnt."""

import json

import numpy as np
import pytest
import torch

import train
from common import config as config_io
from common.errors import UserError
from common.schema import Config
from conftest import REPO, interrupt_at_save, separable_cache
from data.annotations import AnnotationIndex
from data.feature_cache import FeatureCache
from data.synthetic import SyntheticSpec
from models.decoders import decode_fine_tuning
from models.similarity import cosine
from pipeline import training

SMALL = ["device=cpu", "temporal.attn_dim=16", "temporal.ffn_dim=32", "train.lr=1e-2", "train.epochs=4",
         "train.tensorboard=false", "output.plots=false", "complex.hidden=8"]


@pytest.fixture(scope="module")
def separable(tmp_path_factory):
    overrides, paths = separable_cache(tmp_path_factory.mktemp("fusion"),
                                       SyntheticSpec(train_per_class=20, val_per_class=6, test_per_class=6),
                                       "complex_fusion_2stream.yaml", 0.4, *SMALL)
    return overrides


CONFIG = ["--config", str(REPO / "configs" / "complex_fusion_2stream.yaml")]


def _run(overrides, root, *extra):
    train.main([*CONFIG, *overrides, f"output.root={root}", *extra])
    folder = root / "complex_fusion_2stream"
    return folder, json.loads((folder / "results.json").read_text())


def test_a_fusion_run_writes_what_a_fine_tuning_run_writes_and_evaluates_again(separable, tmp_path):
    folder, results = _run(separable, tmp_path / "runs")
    for name in ("results.json", "predictions.csv", "history.csv", "config.yaml", "checkpoints/best.pt",
                 "checkpoints/last.pt"):
        assert (folder / name).is_file(), name
    assert results["method"] == "complex-valued fusion (2 streams, complex CNN)" and results["strategy"] == \
        "complex_fusion"
    assert len(results["history"]) == 4 and results["selection"]["split"] == "val"
    best = torch.load(folder / "checkpoints" / "best.pt", weights_only=True)
    assert best["complex"]["streams"] == 2 and best["layout"] == "complex-fusion/1"
    assert sum(v.numel() for k, v in best["model"].items() if k.startswith("cnn.") and "running" not in k
               and "num_batches" not in k) == 96 + 3 * 656 + 4 * 32 + 18  # convolutions, norms, 1 x 1 at hidden 8
    train.main([*CONFIG, *separable, f"output.root={tmp_path / 'again'}", "--evaluate",
                str(folder / "checkpoints" / "best.pt")])
    again = json.loads((tmp_path / "again" / "complex_fusion_2stream_best_test" / "results.json").read_text())
    assert again["metrics"] == results["metrics"]


def test_resume_continues_a_fusion_run_exactly(separable, tmp_path, monkeypatch):
    _, whole = _run(separable, tmp_path / "whole")
    interrupt_at_save(monkeypatch, training, "last.pt", 2)
    with pytest.raises(KeyboardInterrupt):
        _run(separable, tmp_path / "cut")
    monkeypatch.undo()
    _, resumed = _run(separable, tmp_path / "cut", "--resume")
    assert resumed["metrics"] == whole["metrics"]
    assert [h["train_loss"] for h in resumed["history"]] == [h["train_loss"] for h in whole["history"]]


@pytest.mark.parametrize("extra, method", [(["complex.fusion=real"], "complex-valued fusion (2 streams, real CNN)"),
                                           (["complex.swap=true"], "complex-valued fusion (2 streams, complex CNN, "
                                                                   "swapped)")])
def test_the_ablations_run(separable, tmp_path, extra, method):
    _, results = _run(separable, tmp_path, "train.epochs=1", *extra)
    assert results["method"] == method


def test_four_streams_without_a_generator_stop_before_any_work(separable, tmp_path):
    with pytest.raises(UserError, match="complex.generator is not set: 4 streams need the phase generator"):
        _run(separable, tmp_path, "complex.streams=4")
    assert not (tmp_path / "complex_fusion_2stream").exists()


@pytest.fixture(scope="module")
def deaf_to_names(tmp_path_factory):
    """A cache where an event's frames look like its class name and its sound like the opposite of
    its class name (audio-text cosine about -0.4), while background sounds and looks like `other`."""
    root = tmp_path_factory.mktemp("deaf")
    overrides, paths = separable_cache(root, SyntheticSpec(train_per_class=24, val_per_class=8, test_per_class=8),
                                       "complex_fusion_2stream.yaml", 0.6, *SMALL)
    config = config_io.load(Config, REPO / "configs" / "complex_fusion_2stream.yaml", overrides)
    index = AnnotationIndex.load(paths["meta_csv"], paths["label_json"])
    cache = FeatureCache(config.cache.dir)
    background = len(index.all_vocabulary) - 1
    for split in ("train", "val", "test"):
        classes = index.videos(split, vocabulary=index.all_vocabulary).segment_classes
        audio = np.load(cache.split_dir(split) / "audio.npy", mmap_mode="r+")
        event = classes != background
        audio[event] = -audio[event]  # heard as the opposite of its name
        audio.flush()
    return overrides, config, index


def test_fusion_learns_a_rule_the_geometric_mean_cannot(deaf_to_names, tmp_path):
    """sqrt(relu(s_v * s_a)) is 0 for an event's own class whenever its audio-text cosine is
    negative, so the geometric mean of the frozen similarities can never label those segments with
    their class; the fusion reads the two similarities as one complex number and learns to."""
    overrides, config, index = deaf_to_names
    cache = FeatureCache(config.cache.dir)
    test = index.videos("test", vocabulary=index.all_vocabulary)
    features = cache.split("test")
    audio, vision = features.gather(features.rows(test.vid_names)[0])
    names = list(index.all_vocabulary.names)
    sim_a = cosine(torch.from_numpy(audio), torch.from_numpy(cache.text(names, "{}", "audio"))).numpy()
    sim_v = cosine(torch.from_numpy(vision), torch.from_numpy(cache.text(names, "{}", "vision"))).numpy()
    truth = test.segment_classes
    event = truth != len(names) - 1
    geometric = decode_fine_tuning(sim_a, sim_v, "geometric").segment_labels
    assert (geometric[event] == truth[event]).mean() < 0.05
    _, results = _run(overrides, tmp_path, "train.epochs=12", "train.lr=1e-2")
    predictions = {row.split(",")[0]: row for row in (tmp_path / "complex_fusion_2stream" /
                                                      "predictions.csv").read_text().splitlines()[1:]}
    assert results["metrics"]["total"]["accuracy"] > 0.8, results["metrics"]["total"]
    assert len(predictions) == len(test)


def test_eval_zero_shot_recognises_a_fusion_checkpoint_and_gives_its_test_numbers(separable, tmp_path):
    import eval_zero_shot

    folder, results = _run(separable, tmp_path / "runs", "train.epochs=1")
    checkpoint = folder / "checkpoints" / "best.pt"
    eval_zero_shot.main([*separable, "--checkpoint", str(checkpoint), f"output.root={tmp_path}", "output.name=eval"])
    evaluated = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert evaluated["strategy"] == "complex_fusion" and evaluated["metrics"] == results["metrics"]


def fusion_checkpoint(path, widths, streams=2):
    """A randomly initialised 2-stream fusion as train.py would save it."""
    import dataclasses

    from common.schema import ComplexSettings, TemporalSettings
    from models.complex_fusion import FUSION_LAYOUT, ComplexFusion

    settings, temporal = ComplexSettings(streams=streams, hidden=4), TemporalSettings(attn_dim=4, ffn_dim=4)
    torch.manual_seed(0)
    model = ComplexFusion(widths, settings, temporal).eval()
    torch.save({"model": model.state_dict(), "complex": dataclasses.asdict(settings),
                "temporal": dataclasses.asdict(temporal), "layout": FUSION_LAYOUT, "widths": widths, "epoch": 1},
               path)
    return path, model


def test_the_localizer_and_the_app_decode_with_a_fusion_checkpoint(stand_in, tmp_path):
    from models.strategies.complex_fusion import decode_fused
    from pipeline.localize import Localizer
    from stand_in import AUDIO_WIDTH, CLASSES, SCRIPT, VISION_WIDTH, StandInEncoder, write_scene
    from webapp.explorer import Explorer

    path, model = fusion_checkpoint(tmp_path / "fusion.pt", {"audio": AUDIO_WIDTH, "vision": VISION_WIDTH})
    write_scene(tmp_path / "long.mp4", SCRIPT)  # 20 s: two windows
    localizer = Localizer(stand_in, checkpoint=path)
    [result] = localizer.localize([tmp_path / "long.mp4"], CLASSES)
    assert localizer.method.startswith("complex-valued fusion checkpoint") and localizer.method.endswith("(complex_fusion)")
    store = localizer.store.get(localizer.key(tmp_path / "long.mp4"))
    texts = {m: StandInEncoder().class_names(CLASSES + ["other"], "{}", m) for m in ("audio", "vision")}
    with torch.no_grad():
        scores = model({"audio": torch.from_numpy(np.array(store.audio)).view(2, 10, -1),
                        "vision": torch.from_numpy(np.array(store.vision)).view(2, 10, -1)}, texts)
    expected = decode_fused(scores.numpy()).segment_labels.reshape(-1)
    assert result.labels == [(CLASSES + ["other"])[k] for k in expected]
    explorer = Explorer(Localizer(stand_in), checkpoints=[path])
    assert explorer.decodings[f"checkpoint {path}"].strategy.name == "complex_fusion"
    answer = explorer.ask(tmp_path / "long.mp4", ", ".join(CLASSES), f"checkpoint {path}")
    assert answer.result.labels == result.labels
