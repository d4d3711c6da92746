"""Every key of the config schema does what it says: generated over the schema, so a new key must
be classified here. A key that changes results is run with a non-default value and must change
what it should (a run's results, predictions or trained weights, the cache's provenance, or the
outputs named); a key that only changes speed is listed with the reason and must leave the
results as they are; a key whose effect needs media, a GPU or a hang is named with the test
that varies it."""

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest
import torch

import eval_zero_shot
import train
import train_cuerator
from common import config as config_io
from common.schema import Config, default_cache_dir
from conftest import REPO, separable_cache
from data import audio_draws
from data.synthetic import SyntheticSpec
from pipeline.extraction import wanted_provenance

TINY = ["device=cpu", "temporal.attn_dim=8", "temporal.ffn_dim=8", "train.epochs=1", "train.tensorboard=false",
        "output.plots=false", "cuerator.oracle_candidates=16", "cuerator.epochs=1", "cuerator.model_dim=8",
        "cuerator.num_heads=2", "cuerator.ffn_dim=8", "cuerator.tensorboard=false"]

# key: (runner, a non-default value, the settings under which the key matters)
CHANGES = {
    "temporal.kind": ("train", "linear", {}),
    "temporal.num_layers": ("train", 2, {}),
    "temporal.attention": ("train", "cross", {}),
    "temporal.num_heads": ("train", 2, {}),
    "temporal.attn_dim": ("train", 16, {}),
    "temporal.ffn_dim": ("train", 16, {}),
    "temporal.dropout": ("train", 0.5, {}),
    "temporal.fusion": ("train", "arithmetic", {}),
    "temporal.init": ("train", "independent", {"temporal.num_layers": 2}),
    "temporal.attention_scale": ("train", "head", {"temporal.num_heads": 2}),
    "temporal.cross_context": ("train", "previous", {"temporal.attention": "cross", "temporal.num_layers": 2}),
    "temporal.both_combine": ("train", "learned", {"temporal.attention": "both"}),
    "temporal.arithmetic_minmax": ("train", True, {"temporal.fusion": "arithmetic"}),
    "temporal.distance_prior": ("train", True, {}),
    "temporal.distance_gamma": ("train", 0.9, {"temporal.distance_prior": True}),
    "temporal.distance_bias": ("train", 0.5, {"temporal.distance_prior": True}),
    "temporal.local_window": ("train", 2, {}),
    "temporal.power_norm": ("train", True, {}),
    "temporal.cross_layers": ("train", 2, {"temporal.attention": "cross"}),
    "train.epochs": ("train", 2, {}),
    "train.batch_size": ("train", 4, {}),
    "train.lr": ("train", 1e-2, {}),
    "train.grad_clip": ("train", 1e-4, {}),
    "train.seed": ("train", 7, {}),
    "train.selection": ("train", "test", {"train.epochs": 2}),
    "train.audio_draws": ("train", 0, {}),
    "train.test_strategy": ("train", "v0", {}),
    "train.lr_milestones": ("train", [1], {"train.epochs": 2}),
    "train.lr_gamma": ("train", 0.1, {"train.epochs": 2, "train.lr_milestones": [1]}),
    "train.model": ("train", "complex_fusion", {}),
    "complex.fusion": ("train", "real", {"train.model": "complex_fusion"}),
    "complex.swap": ("train", True, {"train.model": "complex_fusion"}),
    "complex.hidden": ("train", 8, {"train.model": "complex_fusion"}),
    "complex.layers": ("train", 2, {"train.model": "complex_fusion"}),
    "complex.kernel_t": ("train", 3, {"train.model": "complex_fusion"}),
    "eval.split": ("eval", "val", {}),
    "eval.strategy": ("eval", "v0", {}),
    "eval.f1_batch": ("eval", 2, {}),
    "cuerator.params": ("eval", [0.2, 1, 1, 0.5, 0.5, 0.3, 1, 1, 1, 1], {"eval.strategy": "cuerator_rule",
                                                                       "cuerator.params": [0.0] * 10}),
    "cuerator.oracle_candidates": ("cuerator", 32, {}),
    "cuerator.oracle_seed": ("cuerator", 1, {}),
    "cuerator.epochs": ("cuerator", 2, {}),
    "cuerator.batch_size": ("cuerator", 4, {}),
    "cuerator.samples": ("cuerator", 2, {}),
    "cuerator.lr": ("cuerator", 1e-2, {}),
    "cuerator.weight_decay": ("cuerator", 0.5, {"cuerator.lr": 1e-2}),
    "cuerator.seed": ("cuerator", 7, {}),
    "cuerator.selection": ("cuerator", "test", {"cuerator.epochs": 2}),
    "cuerator.model_dim": ("cuerator", 16, {}),
    "cuerator.num_heads": ("cuerator", 4, {}),
    "cuerator.ffn_dim": ("cuerator", 16, {}),
    "cuerator.dropout": ("cuerator", 0.5, {}),
    "encoder.family": ("provenance", "clip_clap", {"encoder.size": "tiny", "encoder.audio_checkpoint": "random"}),
    "encoder.size": ("provenance", "tiny", {}),
    "encoder.checkpoint": ("provenance", "elsewhere.pth", {}),
    "encoder.audio_checkpoint": ("provenance", "random", {"encoder.family": "clip_clap", "encoder.size": "tiny"}),
    "encoder.precision": ("provenance", "bf16", {}),
    "encoder.text_template": ("eval", "a video of {}", {}),
    "encoder.text_template_audio": ("eval", "the sound of {}", {}),
    "encoder.text_template_vision": ("eval", "a photo of {}", {}),
    "cache.dtype": ("provenance", "float16", {}),
    "train.audio_drop_path": ("provenance", 0.2, {}),
    "cache.dir": ("named", "elsewhere", {}),
    "output.root": ("named", "elsewhere", {}),
    "output.name": ("named", "my_run", {}),
    "output.plots": ("files", True, {}),
    "output.plot_videos": ("files", 1, {"output.plots": True}),
    "data.meta_csv": ("eval", "ratio", {}),
    "data.label_json": ("eval", "relabelled", {}),
}
# key: why it changes only how fast results come (checked: the results stay equal)
SPEED = {
    "eval.block_videos": ("videos per similarity block: memory, never the result", "eval", 1),
    "extract.batch_size": ("videos per encoder call", None, None),
    "extract.num_workers": ("decoding processes", None, None),
    "extract.chunk_size": ("videos per durable chunk: what a killed run can lose", None, None),
    "device": ("where the math runs; the CPU here (GPU parity: tests/test_gpu.py)", None, None),
    "train.tensorboard": ("writes TensorBoard logs beside the run", "train", True),
    "cuerator.tensorboard": ("writes TensorBoard logs beside the run", "cuerator", True),
}
# key: the test that varies it and checks its effect (media, an upload, a hang or a checkpoint file)
ELSEWHERE = {
    "data.media_root": "tests/pipeline/test_extraction.py",
    "extract.skip_bad_media": "tests/pipeline/test_extraction.py",
    "video.audio_track": "tests/test_localize_files.py::test_the_default_audio_track_is_localized_and_a_key_"
                         "chooses_another",
    "video.worker_timeout": "tests/test_localize_files.py::test_a_worker_that_stops_answering_is_named_and_the_"
                            "others_go_on",
    "eval.checkpoint": "tests/test_eval_zero_shot.py",
    "cuerator.rule_file": "tests/test_cuerator_runs.py",
    "app.max_upload_mb": "tests/test_app.py",
    "complex.streams": "tests/test_complex_fusion_runs.py::test_four_streams_without_a_generator_stop_before_any_work",
    "complex.generator": "tests/test_four_streams.py::test_generators_that_do_not_fit_are_refused_before_any_work",
    "complex.ihsv_negative": "tests/test_four_streams.py::test_companions_of_another_mapping_are_refused_not_mixed",
    **{f"phase_gan.{key}": "tests/test_four_streams.py::test_each_phase_gan_setting_changes_the_generator_it_trains"
       for key in ("batch_size", "lr_generator", "lr_discriminator", "cycle_weight", "identity_weight",
                   "distribution_weight", "real_label", "instance_noise", "skip_discriminator_below", "seed")},
    "phase_gan.size": "tests/test_four_streams.py",
    "phase_gan.epochs": "tests/test_four_streams.py",
    "phase_gan.max_videos": "tests/test_four_streams.py",
    "phase_gan.tensorboard": "tests/test_four_streams.py",
}


def schema_keys() -> list[str]:
    keys = []
    for section in dataclasses.fields(Config):
        default = section.default_factory() if section.default_factory is not dataclasses.MISSING else None
        keys += ([f"{section.name}.{f.name}" for f in dataclasses.fields(default)] if dataclasses.is_dataclass(default)
                 else [section.name])
    return keys


def test_every_schema_key_is_classified_once():
    classified = [*CHANGES, *SPEED, *ELSEWHERE]
    assert sorted(classified) == sorted(schema_keys()), (set(schema_keys()) ^ set(classified))


@pytest.mark.parametrize("key, where", sorted(ELSEWHERE.items()))
def test_keys_varied_elsewhere_are_varied_there(key, where):
    path, _, name = where.partition("::")
    text = (REPO / path).read_text()
    if name:  # the test with its decorators
        head, body = text.split(f"def {name}(", 1)
        test = head.rsplit("\n\n", 1)[-1] + body.split("\ndef ", 1)[0]
    else:
        test = text
    short = key.split(".", 1)[1]
    assert short in test, f"{where} does not vary {key}"


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    root = tmp_path_factory.mktemp("keys")
    overrides, paths = separable_cache(root, SyntheticSpec(train_per_class=4, val_per_class=2, test_per_class=2),
                                       "v1_fine_tuning.yaml", 0.3, *TINY)
    ratio = root / "ratio.csv"  # the train-ratio form of the meta CSV: fewer training videos
    lines = paths["meta_csv"].read_text().splitlines()
    ratio.write_text("\n".join(line for line in lines if not line.startswith("test,")
                               or line.endswith("_00")) + "\n")
    relabelled = root / "relabelled.json"
    labels = json.loads(paths["label_json"].read_text())
    relabelled.write_text(json.dumps({vid: {**entry, "label": json.dumps([1] * 10)} for vid, entry in labels.items()}))
    return {"root": root, "overrides": overrides, "files": {"ratio": ratio, "relabelled": relabelled}}


def _value(bench, key, value):
    if key.startswith("data.") and value in bench["files"]:
        return str(bench["files"][value])
    return value


def _overrides(bench, settings: dict) -> list[str]:
    return [*bench["overrides"], *(f"{k}={json.dumps(_value(bench, k, v)) if isinstance(v, list) else _value(bench, k, v)}"
                                   for k, v in settings.items())]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _trained_weights(path: Path) -> str:
    state = torch.load(path, weights_only=False, map_location="cpu")
    weights = state.get("model") or state.get("policy_state_dict")
    return hashlib.sha256(b"".join(t.numpy().tobytes() for t in weights.values())).hexdigest()


def outcome(bench, runner: str, settings: dict, folder: Path) -> dict:
    """What a run with ``settings`` leaves that results depend on (not its config or timing)."""
    overrides = _overrides(bench, {**settings, "output.root": str(folder), "output.name": "run"})
    if runner == "provenance":
        config = config_io.load(Config, REPO / "configs" / "v1_fine_tuning.yaml", overrides)
        return {"provenance": wanted_provenance(config), "cache": default_cache_dir(config),
                "draws": audio_draws.wanted_provenance(config.train.audio_drop_path)}
    {"train": train.main, "eval": eval_zero_shot.main, "cuerator": train_cuerator.main}[runner](overrides)
    run = folder / "run"
    results = json.loads((run / "results.json").read_text())
    kept = {"metrics": results["metrics"], "selection": results.get("selection"), "split": results["split"],
            "strategy": results["strategy"], "predictions": _digest(run / "predictions.csv"),
            "method": results.get("method"),
            "history": [{k: v for k, v in epoch.items() if k != "seconds"} for epoch in results.get("history", [])]}
    for checkpoint in sorted((run / "checkpoints").glob("*")) if (run / "checkpoints").is_dir() else []:
        kept[checkpoint.name] = _trained_weights(checkpoint)
    if (run / "rule.json").exists():
        kept["rule"] = json.loads((run / "rule.json").read_text())["params"]
    return kept


@pytest.mark.parametrize("key", sorted(k for k, (runner, _, _) in CHANGES.items() if runner not in ("named", "files")))
def test_a_key_that_changes_results_changes_them(bench, key, tmp_path):
    runner, value, needs = CHANGES[key]
    before = outcome(bench, runner, needs, tmp_path / "default")
    after = outcome(bench, runner, {**needs, key: value}, tmp_path / "changed")
    assert after != before, f"{key}={value} changed nothing a {runner} run leaves"


@pytest.mark.parametrize("key", sorted(k for k, (_, runner, _) in SPEED.items() if runner))
def test_a_key_that_changes_only_speed_leaves_the_results(bench, key, tmp_path):
    _, runner, value = SPEED[key]
    before = outcome(bench, runner, {}, tmp_path / "default")
    assert outcome(bench, runner, {key: value}, tmp_path / "changed") == before


def test_both_combine_mean_gives_exactly_what_sum_gives(bench, tmp_path):
    """The combined embeddings are only ever compared by cosine, which ignores their scale, and
    halving is exact in floating point: ``mean`` is ``sum`` to the last bit (README, Fine-tuning)."""
    both = {"temporal.attention": "both", "train.epochs": 2}
    assert outcome(bench, "train", {**both, "temporal.both_combine": "mean"}, tmp_path / "mean") == \
        outcome(bench, "train", both, tmp_path / "sum")


def test_keys_that_name_places_are_where_things_go(bench, tmp_path):
    overrides = _overrides(bench, {"output.root": str(tmp_path / "elsewhere"), "output.name": "my_run"})
    eval_zero_shot.main(overrides)
    assert (tmp_path / "elsewhere" / "my_run" / "results.json").is_file()
    config = config_io.load(Config, REPO / "configs" / "v1_fine_tuning.yaml",
                            [*bench["overrides"], f"cache.dir={tmp_path / 'cache'}"])
    assert config.cache.dir == str(tmp_path / "cache")


def test_plot_keys_change_the_pictures_written(bench, tmp_path):
    eval_zero_shot.main(_overrides(bench, {"output.root": str(tmp_path), "output.name": "none"}))
    assert not list((tmp_path / "none").glob("*.png"))
    pictures = {}
    for count in (1, 8):
        name = f"plots_{count}"
        eval_zero_shot.main(_overrides(bench, {"output.root": str(tmp_path), "output.name": name,
                                               "output.plots": True, "output.plot_videos": count}))
        pictures[count] = _digest(tmp_path / name / "timelines.png")
    assert pictures[1] != pictures[8]
