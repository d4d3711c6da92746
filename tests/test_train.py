import csv
import dataclasses
import errno
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import train
from common import config as config_io
from common.errors import UserError
from common.schema import Config
from conftest import REPO, interrupt_at_save, separable_cache, synthetic_overrides
from data.annotations import AnnotationIndex
from data.feature_cache import FeatureCache
from data.loading import media_paths
from data.synthetic import SyntheticSpec
from models.similarity import cosine
from models.temporal import (TemporalModel, TemporalSettings, checkpoint_settings, fused_scores, load_checkpoint,
                             model_from_checkpoint, training_scores)
from pipeline import training
from pipeline.trainable import TemporalLayers


@pytest.fixture(scope="module")
def separable(tmp_path_factory):
    """Annotations without media and a cache where classes are separable (24-d features)."""
    overrides, _ = separable_cache(tmp_path_factory.mktemp("separable"),
                                   SyntheticSpec(train_per_class=40, val_per_class=10, test_per_class=10),
                                   "v1_fine_tuning.yaml", 0.3, "device=cpu", "temporal.attn_dim=16",
                                   "temporal.ffn_dim=32", "train.lr=1e-2", "train.epochs=6", "train.tensorboard=false",
                                   "cache.dtype=float16")
    return overrides


def _config(overrides) -> Config:
    return config_io.load(Config, REPO / "configs" / "v1_fine_tuning.yaml", overrides)


def _run(overrides, tmp_path, *extra):
    train.main(overrides + [f"output.root={tmp_path / 'runs'}", *extra])
    folder = tmp_path / "runs" / "v1_fine_tuning"
    return folder, json.loads((folder / "results.json").read_text())


@pytest.fixture(scope="module")
def default_run(separable, tmp_path_factory):
    """One run with the default settings, read (never written) by the tests that need one."""
    return _run(separable, tmp_path_factory.mktemp("default_run"))


@pytest.mark.parametrize("settings", [
    TemporalSettings(),
    TemporalSettings(attention="cross", num_heads=2, num_layers=2),
    TemporalSettings(attention="cross", num_layers=2, cross_context="previous"),
    TemporalSettings(attention="both", attn_dim=32, ffn_dim=16),
    TemporalSettings(kind="linear", fusion="arithmetic"),
])
def test_temporal_model_shapes_and_context(settings):
    torch.manual_seed(0)
    model = TemporalModel(64, settings).eval()
    audio, vision = torch.randn(3, 10, 64), torch.randn(3, 10, 64)
    out_a, out_v = model(audio, vision)
    assert out_a.shape == out_v.shape == (3, 10, 64)
    changed_vision = model(audio, vision + 1)[0]
    reads_other = not torch.allclose(changed_vision, out_a)
    assert reads_other == (settings.kind == "transformer" and settings.attention != "self")
    changed_segment = model(torch.cat([audio[:, :1] + 1, audio[:, 1:]], 1), vision)[0]
    # Context over time within a modality: not for a linear layer, nor for cross-attention on the
    # other modality's original embeddings (segment 5 then reads only the original frames).
    own_context = settings.kind == "transformer" and not (
        settings.attention == "cross" and settings.cross_context == "original")
    assert not torch.allclose(changed_segment[:, 5], out_a[:, 5]) == own_context
    changed_frame = model(audio, torch.cat([vision[:, :1] + 1, vision[:, 1:]], 1))[0]
    assert not torch.allclose(changed_frame[:, 5], out_a[:, 5]) == reads_other  # across time from the other


def test_paper_block_parameter_shapes():
    block = TemporalModel(1024, TemporalSettings()).audio_layers[0]
    shapes = {name: tuple(p.shape) for name, p in block.named_parameters()}
    assert shapes["attention.query.weight"] == (256, 1024)
    assert shapes["attention.key_value.weight"] == (512, 1024)
    assert shapes["attention.out.weight"] == (1024, 256)
    assert shapes["feed_forward.net.0.weight"] == (512, 1024) and shapes["feed_forward.net.3.weight"] == (1024, 512)
    assert isinstance(block.feed_forward.net[2], torch.nn.Dropout)


def _blocks(model):
    return [block for name, stack in model.named_children() if name.endswith("layers") for block in stack]


@pytest.mark.parametrize("kind", ["transformer", "linear"])
def test_every_block_starts_as_a_copy_of_one_and_they_train_apart(kind):
    settings = TemporalSettings(kind=kind, attention="both", num_layers=2, attn_dim=8, ffn_dim=8)
    torch.manual_seed(0)
    model = TemporalModel(16, settings)
    blocks = _blocks(model)
    assert len(blocks) == (8 if kind == "transformer" else 4)
    for block in blocks[1:]:
        for (name, p), q in zip(block.named_parameters(), blocks[0].parameters()):
            assert torch.equal(p, q), name
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    audio, vision = torch.randn(4, 10, 16), torch.randn(4, 10, 16)
    for _ in range(3):
        out_a, out_v = model(audio, vision)
        loss = out_a.pow(3).mean() + out_v.sin().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert not torch.equal(blocks[0].state_dict()[next(iter(blocks[0].state_dict()))],
                           blocks[1].state_dict()[next(iter(blocks[1].state_dict()))])
    independent = TemporalModel(16, TemporalSettings(kind=kind, num_layers=2, init="independent"))
    first, second = _blocks(independent)[:2]
    assert not torch.equal(next(first.parameters()), next(second.parameters()))


def test_attention_scale_is_one_over_sqrt_attn_dim_whatever_the_heads():
    torch.manual_seed(0)
    x = torch.randn(2, 10, 6)
    for scale, width in (("model", 4), ("head", 2)):
        settings = TemporalSettings(num_heads=2, attn_dim=4, ffn_dim=4, attention_scale=scale)
        sublayer = TemporalModel(6, settings).audio_layers[0].attention
        q = sublayer.query(x).unflatten(-1, (2, 2)).transpose(1, 2)
        k, v = (t.unflatten(-1, (2, 2)).transpose(1, 2) for t in sublayer.key_value(x).chunk(2, dim=-1))
        weights = torch.softmax(q @ k.transpose(-1, -2) / width ** 0.5, dim=-1)
        expected = sublayer.norm(x + sublayer.out((weights @ v).transpose(1, 2).flatten(2)))
        torch.testing.assert_close(sublayer(x, x), expected)


def test_cross_attention_reads_the_other_modalitys_original_embeddings():
    torch.manual_seed(0)
    audio, vision = torch.randn(3, 10, 8), torch.randn(3, 10, 8)
    model = TemporalModel(8, TemporalSettings(attention="cross", num_layers=2, attn_dim=4, ffn_dim=4)).eval()
    a1 = model.audio_layers[0](audio, vision)
    v1 = model.visual_layers[0](vision, audio)
    out_a, out_v = model(audio, vision)
    torch.testing.assert_close(out_a, model.audio_layers[1](a1, vision))
    torch.testing.assert_close(out_v, model.visual_layers[1](v1, audio))
    model = TemporalModel(8, TemporalSettings(attention="cross", num_layers=2, attn_dim=4, ffn_dim=4,
                                              cross_context="previous")).eval()
    a1, v1 = model.audio_layers[0](audio, vision), model.visual_layers[0](vision, audio)
    torch.testing.assert_close(model(audio, vision)[0], model.audio_layers[1](a1, v1))


@pytest.mark.parametrize("attention", ["self", "cross", "both"])
def test_modalities_of_different_widths(attention):
    torch.manual_seed(0)
    model = TemporalModel({"audio": 8, "vision": 12}, TemporalSettings(attention=attention, attn_dim=4, ffn_dim=4))
    out_a, out_v = model(torch.randn(2, 10, 8), torch.randn(2, 10, 12))
    assert out_a.shape == (2, 10, 8) and out_v.shape == (2, 10, 12)


@pytest.mark.parametrize("combine", ["sum", "mean", "learned"])
def test_both_runs_self_and_cross_stacks_side_by_side(combine):
    torch.manual_seed(0)
    audio, vision = torch.randn(3, 10, 8), torch.randn(3, 10, 8)
    settings = TemporalSettings(attention="both", attn_dim=4, ffn_dim=4, both_combine=combine)
    model = TemporalModel(8, settings).eval()
    own = model.audio_layers[0](audio, audio)
    cross = model.audio_cross_layers[0](audio, vision)
    expected = {"sum": own + cross, "mean": (own + cross) / 2, "learned": 0.5 * own + 0.5 * cross}[combine]
    torch.testing.assert_close(model(audio, vision)[0], expected)
    assert ("audio_alpha" in dict(model.named_parameters())) == (combine == "learned")


def test_arithmetic_fusion_trains_on_the_plain_mean():
    sim_a, sim_v = torch.tensor([[[0.2, 0.6, -0.4]]]), torch.tensor([[[0.4, 0.0, 0.2]]])
    torch.testing.assert_close(training_scores(sim_a, sim_v, TemporalSettings(fusion="arithmetic")),
                               torch.tensor([[[0.3, 0.3, -0.1]]]))
    normalised = training_scores(sim_a, sim_v, TemporalSettings(fusion="arithmetic", arithmetic_minmax=True))
    torch.testing.assert_close(normalised, torch.tensor([[[1.0, 1.0, 0.0]]]), atol=1e-6, rtol=0)
    geometric = training_scores(sim_a, sim_v, TemporalSettings())
    assert geometric.min() == 0 and geometric.max() == pytest.approx(1.0, abs=1e-6)


def test_fused_scores_by_hand():
    audio = torch.tensor([[[3.0, 4.0]]])  # one segment, 2-d
    text = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-1.0, 0.0]])
    sim = cosine(audio, text)
    torch.testing.assert_close(sim, torch.tensor([[[0.6, 0.8, -0.6]]]))
    vision_sim = torch.tensor([[[0.6, 0.2, 0.5]]])
    scores = fused_scores(sim, vision_sim, "geometric", eps=0.0)
    raw = torch.tensor([0.6, (0.16) ** 0.5, 0.0])  # sqrt(0.36), sqrt(0.16), relu(-0.3) -> 0
    torch.testing.assert_close(scores[0, 0], (raw - raw.min()) / (raw.max() - raw.min()))
    arithmetic = fused_scores(sim, vision_sim, "arithmetic", eps=0.0)
    torch.testing.assert_close(arithmetic[0, 0], torch.tensor([0.6, 0.5, -0.05]).sub(-0.05).div(0.65))


def test_training_lowers_loss_and_raises_validation_accuracy(separable, tmp_path):
    config = _config(separable)
    trainer = training.Trainer(config, tmp_path / "run")
    torch.manual_seed(config.train.seed)
    untrained = TemporalLayers(config.temporal).evaluate(TemporalModel(trainer.widths, config.temporal),
                                                         trainer.selection_data, trainer.text_all,
                                                         config).summaries["total"]
    result = trainer.fit()
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < losses[0]
    assert result.selection["metrics"]["accuracy"] > untrained["accuracy"] + 0.05
    assert result.selection["metrics"]["average"] > untrained["average"] + 0.05


def test_full_run_outputs_and_determinism(separable, default_run, tmp_path):
    folder, results = default_run
    for name in ("results.json", "predictions.csv", "history.csv", "config.yaml", "log.txt",
                 "checkpoints/best.pt", "checkpoints/last.pt", "timelines.png", "per_class_f1.png"):
        assert (folder / name).is_file(), name
    with Image.open(folder / "training_curves.png") as image:
        assert image.format == "PNG" and image.width >= 600 and image.height >= 250
    assert results["selection"]["split"] == "val" and results["strategy"] == "v1"
    assert len(results["history"]) == 6 and results["videos"]["total"] == 60
    with open(folder / "history.csv", newline="") as handle:
        history = list(csv.DictReader(handle))
    assert [int(h["epoch"]) for h in history] == list(range(1, 7))
    best = max(results["history"], key=lambda h: h["average"])
    assert results["selection"]["best_epoch"] == best["epoch"]
    checkpoint = torch.load(folder / "checkpoints" / "best.pt", weights_only=True)
    assert checkpoint["epoch"] == best["epoch"] and checkpoint["metrics"]["average"] == best["average"]
    _, again = _run(separable, tmp_path / "again")
    assert again["metrics"] == results["metrics"]
    assert [h["train_loss"] for h in again["history"]] == [h["train_loss"] for h in results["history"]]


def test_resume_equals_uninterrupted(separable, default_run, tmp_path, monkeypatch):
    whole_run, uninterrupted = default_run
    interrupt_at_save(monkeypatch, training, "last.pt", 4)  # after epoch 4's history row, before its checkpoint
    with pytest.raises(KeyboardInterrupt):
        _run(separable, tmp_path / "cut")
    monkeypatch.undo()
    with pytest.raises(UserError, match="already holds a training run: add --resume"):
        _run(separable, tmp_path / "cut")
    with pytest.raises(UserError, match=r"(?s)config differs .*train.lr: 0.01 -> 0.02"):
        _run(separable, tmp_path / "cut", "--resume", "train.lr=0.02")
    with pytest.raises(UserError, match="no run to continue"):
        _run(separable, tmp_path / "fresh", "--resume")
    with pytest.raises(UserError, match=r"has trained 3 epochs already, more than train.epochs=2; give "
                                        r"train.epochs=3 or more"):
        _run(separable, tmp_path / "cut", "--resume", "train.epochs=2")  # its best epoch could lie beyond 2
    folder, resumed = _run(separable, tmp_path / "cut", "--resume")
    assert resumed["metrics"] == uninterrupted["metrics"]
    assert [h["train_loss"] for h in resumed["history"]] == [h["train_loss"] for h in uninterrupted["history"]]
    whole = torch.load(whole_run / "checkpoints" / "last.pt", weights_only=True)
    cut = torch.load(folder / "checkpoints" / "last.pt", weights_only=True)
    for name, tensor in whole["model"].items():
        assert torch.equal(tensor, cut["model"][name]), name
    assert "resuming after epoch 3" in (folder / "log.txt").read_text()
    with open(folder / "history.csv", newline="") as handle:
        assert [int(row["epoch"]) for row in csv.DictReader(handle)] == list(range(1, 7))


def test_evaluate_only_reproduces_the_test_numbers(separable, default_run, tmp_path, capsys):
    folder, results = default_run
    best = str(folder / "checkpoints" / "best.pt")
    runs = tmp_path / "runs"
    train.main(separable + [f"output.root={runs}", "--evaluate", best])
    evaluated = json.loads((runs / "v1_fine_tuning_best_test" / "results.json").read_text())
    assert evaluated["metrics"] == results["metrics"]
    assert evaluated["checkpoint_epoch"] == results["selection"]["best_epoch"]
    # Overrides of the temporal model do not describe what was evaluated: the checkpoint does.
    train.main(separable + [f"output.root={runs}", "--evaluate", best, "temporal.num_layers=3", "eval.split=val"])
    on_val = json.loads((runs / "v1_fine_tuning_best_val" / "results.json").read_text())
    assert on_val["split"] == "val" and on_val["config"]["temporal"]["num_layers"] == 1
    assert on_val["method"] == "fine-tuning (1 temporal layer(s), self attention, 1 head(s), geometric fusion)"
    assert "temporal settings come from" in capsys.readouterr().out
    train.main(separable + [f"output.root={runs}", "--evaluate", best])  # again: a new folder, nothing replaced
    assert json.loads((runs / "v1_fine_tuning_best_test_2" / "results.json").read_text())["metrics"] == \
        evaluated["metrics"]
    assert json.loads((runs / "v1_fine_tuning_best_test" / "results.json").read_text()) == evaluated
    with pytest.raises(UserError, match="checkpoint not found"):
        train.main(separable + [f"output.root={tmp_path / 'runs'}", "--evaluate", str(tmp_path / "none.pt")])


def test_grad_clip_null_trains_without_clipping(separable, tmp_path, monkeypatch):
    clipped = []
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", lambda *a, **k: clipped.append(1))
    _, results = _run(separable, tmp_path, "train.grad_clip=null", "train.epochs=1")
    assert not clipped and results["config"]["train"]["grad_clip"] is None
    _run(separable, tmp_path / "clip", "train.epochs=1")
    assert clipped


def test_a_meta_csv_without_the_selection_split_stops_before_training(separable, tmp_path):
    meta = tmp_path / "no_val.csv"
    source = next(o.split("=", 1)[1] for o in separable if o.startswith("data.meta_csv="))
    lines = open(source).read().splitlines()
    meta.write_text("\n".join(line for line in lines if not line.startswith("val,")) + "\n")
    with pytest.raises(UserError, match=r"no val videos, but this run needs them \(model selection, "
                                        r"train.selection\); the file has train, test"):
        _run(separable, tmp_path, f"data.meta_csv={meta}")
    assert not (tmp_path / "runs" / "v1_fine_tuning" / "history.csv").exists()


def test_published_selection_protocol_and_variants(separable, tmp_path):
    _, results = _run(separable, tmp_path / "test_sel", "train.selection=test", "train.epochs=4")
    assert results["selection"]["split"] == "test" and "published" in results["selection"]["protocol"]
    best = max(results["history"], key=lambda h: h["average"])
    assert results["metrics"]["total"]["average"] == pytest.approx(best["average"], abs=1e-12)
    for subset in ("seen", "unseen", "total"):  # each row at its own best epoch on test
        rows = [h["by_subset"][subset] for h in results["history"]]
        chosen = results["selection"]["per_subset"][subset]
        assert results["metrics"][subset] == max(rows, key=lambda row: row["average"]) == chosen["metrics"]
        assert results["history"][chosen["best_epoch"] - 1]["by_subset"][subset] == chosen["metrics"]
    _, on_val = _run(separable, tmp_path / "val_sel", "train.epochs=2")
    assert "per_subset" not in on_val["selection"]
    for variant in (["temporal.attention=both", "temporal.num_heads=2"], ["temporal.kind=linear"],
                    ["temporal.fusion=arithmetic", "temporal.num_layers=2"]):
        _, results = _run(separable, tmp_path / "_".join(variant), "train.epochs=1", *variant)
        assert np.isfinite(results["history"][0]["train_loss"])


def test_videos_left_out_of_any_split_are_reported(synthetic_bench, tmp_path, capsys):
    media = tmp_path / "media"
    shutil.copytree(synthetic_bench["media_root"], media)
    index = AnnotationIndex.load(synthetic_bench["meta_csv"], synthetic_bench["label_json"])
    for split, position in (("train", 2), ("val", 0)):
        videos = index.videos(split)
        wav, _ = media_paths(media, split, videos.categories[position], videos.vid_names[position])
        wav.write_bytes(b"RIFF garbage")
    overrides = synthetic_overrides({**synthetic_bench, "media_root": media}, tmp_path / "cache",
                                    f"output.root={tmp_path / 'runs'}", "extract.skip_bad_media=true",
                                    "train.epochs=1", "temporal.attn_dim=8", "temporal.ffn_dim=16",
                                    "train.tensorboard=false")
    train.main(overrides)
    results = json.loads((tmp_path / "runs" / "v1_fine_tuning" / "results.json").read_text())
    seen_unseen = {"train": (1, 0), "val": (int(index.videos("val").seen[0]), int(not index.videos("val").seen[0])),
                   "test": (0, 0)}
    assert results["excluded_videos_by_split"] == {
        split: {"seen": s, "unseen": u, "total": s + u} for split, (s, u) in seen_unseen.items()}
    out = capsys.readouterr().out
    assert "1 train videos left out (seen 1, unseen 0): unreadable media; see the cache's train/excluded.csv" in out
    assert "1 val videos left out" in out


def test_a_full_disk_while_saving_a_checkpoint_is_one_message(separable, tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(UserError, match=r"cannot write the training run at .*best.pt: the disk is full\. Free space "
                                        r"or set output.root to another disk; --resume continues"):
        _run(separable, tmp_path, "train.epochs=1")
    assert not list((tmp_path / "runs" / "v1_fine_tuning" / "checkpoints").glob(".*tmp*"))


def test_device_resident_batches_equal_gathered_ones(separable):
    config = _config(separable)
    index = AnnotationIndex.load(config.data.meta_csv, config.data.label_json)
    data = training.load_split(FeatureCache(config.cache.dir), index, "train", index.seen_vocabulary)
    resident = training.SegmentBatches(data, 32, 7, torch.device("cpu"), resident=True)
    gathered = training.SegmentBatches(data, 32, 7, torch.device("cpu"), resident=False)
    assert resident.streams["audio"].dtype == torch.float16  # kept in the cache's dtype
    pairs = list(zip(resident.epoch(2), gathered.epoch(2)))
    assert len(pairs) == len(gathered)
    for (streams, targets), (other_streams, other_targets) in pairs:
        assert streams.keys() == other_streams.keys() == {"audio", "vision"} and torch.equal(targets, other_targets)
        for name in streams:
            assert torch.equal(streams[name], other_streams[name])


def test_a_checkpoint_of_the_earlier_layout_is_refused(separable, tmp_path):
    folder, _ = _run(separable, tmp_path, "train.epochs=1")
    checkpoint = torch.load(folder / "checkpoints" / "best.pt", weights_only=True)
    del checkpoint["layout"]
    torch.save(checkpoint, tmp_path / "old.pt")
    with pytest.raises(UserError, match=r"old.pt holds temporal layers of an earlier layout.*train it again"):
        train.main(separable + [f"output.root={tmp_path / 'runs'}", "--evaluate", str(tmp_path / "old.pt")])


def test_each_epoch_reads_its_audio_draw_and_zero_draws_read_eval_mode_audio(separable, tmp_path):
    from data.audio_draws import AudioDraws

    _, results = _run(separable, tmp_path, "train.audio_draws=2", "train.epochs=3")
    assert [h["audio_draw"] for h in results["history"]] == [0, 1, 0]
    config = _config(separable)
    index = AnnotationIndex.load(config.data.meta_csv, config.data.label_json)
    cache = FeatureCache(config.cache.dir)
    data = training.load_split(cache, index, "train", index.seen_vocabulary)
    draws = AudioDraws(cache, "train", 2, 0.1)
    for resident in (False, True):
        batches = training.SegmentBatches(data, 16, 1, torch.device("cpu"), resident=resident, draws=draws)
        streams, _ = next(iter(batches.epoch(2)))
        audio, vision = streams["audio"], streams["vision"]
        members = np.sort(torch.randperm(len(data.rows), generator=torch.Generator().manual_seed(100_003 + 2))
                          .numpy()[:16])
        torch.testing.assert_close(audio, torch.from_numpy(draws.gather(batches.draw_rows[members], 1)))
        torch.testing.assert_close(vision, torch.from_numpy(data.features.gather(data.rows[members])[1]))
    plain = training.SegmentBatches(data, 16, 1, torch.device("cpu"))
    audio = next(iter(plain.epoch(2)))[0]["audio"]
    torch.testing.assert_close(audio, torch.from_numpy(data.features.gather(data.rows[members])[0]))
    _, without = _run(separable, tmp_path / "none", "train.audio_draws=0", "train.epochs=1")
    assert without["history"][0]["audio_draw"] is None


# Per epoch: (accuracy, average) on the selection split. The best average comes first at epoch 2
# and again at epoch 4; accuracy is highest at epoch 5 (the last), so keeping the last epoch,
# selecting on accuracy or letting a later epoch win a tie each picks another epoch.
SCRIPT = [(0.9, 0.30), (0.2, 0.50), (0.3, 0.45), (0.1, 0.50), (0.95, 0.20)]


def _scripted_selection(monkeypatch, script_by_subset):
    """The temporal layers' evaluation as it is, but the selection split's summaries follow
    ``script_by_subset`` (subset -> per epoch (accuracy, average)); returns the weights seen at each epoch."""
    original, calls, weights = TemporalLayers.evaluate, [], []

    def scripted(self, model, data, texts, config):
        evaluation = original(self, model, data, texts, config)
        if len(calls) < len(next(iter(script_by_subset.values()))):  # the per-epoch selection passes
            weights.append({k: v.clone() for k, v in model.state_dict().items()})
            for subset, script in script_by_subset.items():
                accuracy, average = script[len(calls)]
                evaluation.summaries[subset] = {"accuracy": accuracy, "segment_f1": average, "event_f1": average,
                                                "average": average}
            calls.append(len(calls) + 1)
        return evaluation

    monkeypatch.setattr(TemporalLayers, "evaluate", scripted)
    return weights


def test_selection_keeps_the_first_epoch_with_the_best_average(separable, tmp_path, monkeypatch):
    weights = _scripted_selection(monkeypatch, {"total": SCRIPT})
    folder, results = _run(separable, tmp_path, "train.epochs=5")
    assert results["selection"]["best_epoch"] == 2 and results["selection"]["metrics"]["average"] == 0.5
    best = torch.load(folder / "checkpoints" / "best.pt", weights_only=True)
    assert best["epoch"] == 2
    for name, value in best["model"].items():  # best.pt holds epoch 2's weights, not the last ones
        torch.testing.assert_close(value, weights[1][name], rtol=0, atol=0)
    assert any(not torch.equal(weights[1][n], weights[4][n]) for n in weights[1])
    monkeypatch.undo()  # the test table is the best checkpoint's own evaluation
    train.main(separable + [f"output.root={tmp_path / 'again'}", "eval.split=test", "--evaluate",
                            str(folder / "checkpoints" / "best.pt")])
    again = json.loads((tmp_path / "again" / "v1_fine_tuning_best_test" / "results.json").read_text())
    assert again["metrics"] == results["metrics"]


def test_the_published_protocol_takes_each_row_at_its_own_best_epoch(separable, tmp_path, monkeypatch):
    script = {"total": SCRIPT, "seen": [(0.5, a) for a in (0.1, 0.2, 0.6, 0.6, 0.3)],
              "unseen": [(0.5, a) for a in (0.7, 0.2, 0.1, 0.3, 0.7)]}
    _scripted_selection(monkeypatch, script)
    _, results = _run(separable, tmp_path, "train.epochs=5", "train.selection=test")
    per_subset = results["selection"]["per_subset"]
    assert {s: per_subset[s]["best_epoch"] for s in ("seen", "unseen", "total")} == {"seen": 3, "unseen": 1,
                                                                                     "total": 2}
    assert {s: results["metrics"][s]["average"] for s in ("seen", "unseen", "total")} == {"seen": 0.6, "unseen": 0.7,
                                                                                          "total": 0.5}


def test_the_published_options_train_and_are_recorded_in_the_checkpoint(separable, tmp_path):
    options = ["temporal.distance_prior=true", "temporal.local_window=3", "temporal.power_norm=true",
               "temporal.attention=both", "temporal.cross_layers=2", "train.test_strategy=v01", "eval.f1_batch=7"]
    folder, results = _run(separable, tmp_path, "train.epochs=2", *options)
    assert results["strategy"] == "v01" and all(np.isfinite(h["train_loss"]) for h in results["history"])
    best = torch.load(folder / "checkpoints" / "best.pt", weights_only=True)
    assert best["temporal"]["local_window"] == 3 and best["temporal"]["cross_layers"] == 2
    assert best["temporal"]["distance_prior"] and best["temporal"]["power_norm"]
    assert "audio_cross_layers.1.attention.local_alpha" in best["model"]
    with open(folder / "predictions.csv", newline="") as handle:  # per-video F1s, in the test split's order
        rows = list(csv.DictReader(handle))
    assert all(len(r["predicted_events"]) == 10 for r in rows)  # decoded by the training-free rule
    for subset in ("unseen", "total"):  # batches of 7: the last one partial
        f1s = [float(r["segment_f1"]) for r in rows if subset == "total" or r["subset"] == subset]
        assert len(f1s) % 7
        per_batch = np.mean([np.mean(f1s[start:start + 7]) for start in range(0, len(f1s), 7)])
        assert results["metrics"][subset]["segment_f1"] == pytest.approx(per_batch, abs=1e-12)
        assert per_batch != pytest.approx(np.mean(f1s), abs=1e-12)
    train.main([*separable, f"output.root={tmp_path / 'again'}", "--evaluate", str(folder / "checkpoints" / "best.pt"),
                "train.test_strategy=v01", "eval.f1_batch=7"])
    [again] = (tmp_path / "again").iterdir()
    assert json.loads((again / "results.json").read_text())["metrics"] == results["metrics"]
    _, mean = _run(separable, tmp_path / "feature_mean", "train.epochs=1", "temporal.fusion=feature_mean")
    assert np.isfinite(mean["history"][0]["train_loss"]) and mean["strategy"] == "v1"


def test_the_learning_rate_halves_at_the_milestones_and_resumes_exactly(separable, tmp_path):
    schedule = ["train.lr=1e-2", "train.lr_milestones=[1,2]", "train.lr_gamma=0.5"]
    folder, whole = _run(separable, tmp_path / "whole", "train.epochs=3", *schedule)
    last = torch.load(folder / "checkpoints" / "last.pt", weights_only=True)
    assert last["optimizer"]["param_groups"][0]["lr"] == pytest.approx(1e-2 * 0.5 ** 2)  # after epochs 1 and 2
    _run(separable, tmp_path / "cut", "train.epochs=1", *schedule)
    cut, resumed = _run(separable, tmp_path / "cut", "train.epochs=3", *schedule, "--resume")
    assert [h["train_loss"] for h in resumed["history"]] == [h["train_loss"] for h in whole["history"]]
    flat, _ = _run(separable, tmp_path / "flat", "train.epochs=3", "train.lr=1e-2")
    lrs = torch.load(flat / "checkpoints" / "last.pt", weights_only=True)["optimizer"]["param_groups"][0]["lr"]
    assert lrs == pytest.approx(1e-2)  # the published milestones (10, 20, 30) change nothing within 10 epochs


def test_a_checkpoint_from_before_the_options_loads_with_their_defaults(default_run, tmp_path):
    folder, _ = default_run
    state = torch.load(folder / "checkpoints" / "best.pt", weights_only=True)
    for key in ("distance_prior", "distance_gamma", "distance_bias", "local_window", "power_norm", "cross_layers"):
        del state["temporal"][key]
    torch.save(state, tmp_path / "old.pt")
    old = load_checkpoint(tmp_path / "old.pt")
    assert checkpoint_settings(old, "old.pt") == TemporalSettings(**{**dataclasses.asdict(TemporalSettings()),
                                                                     **old["temporal"]})
    model_from_checkpoint(old, torch.device("cpu"))  # the same parameters as before the options existed
