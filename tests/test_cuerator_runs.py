"""CueRator on a cache: run_cuerator.sh's rule and policy, their checkpoints in CueRator's own
layout, the strategies that decode with them, resuming, and one line for every bad input."""

import json
import shutil

import numpy as np
import pytest
import torch

import eval_zero_shot
import train_cuerator
from common import config as config_io
from common.errors import UserError
from common.schema import Config
from conftest import REPO, separable_cache
from data.annotations import AnnotationIndex
from data.feature_cache import FeatureCache
from data.synthetic import SyntheticSpec
from models import cuerator, strategies
from models.similarity import cosine

RUN = ["cuerator.oracle_candidates=256", "cuerator.epochs=3", "cuerator.model_dim=16", "cuerator.ffn_dim=32",
       "cuerator.lr=3e-3", "cuerator.tensorboard=false", "device=cpu"]


@pytest.fixture(scope="module")
def separable(tmp_path_factory):
    """Annotations without media and a cache where classes are separable (24-d features)."""
    overrides, paths = separable_cache(tmp_path_factory.mktemp("cuerator"),
                                       SyntheticSpec(train_per_class=30, val_per_class=8, test_per_class=8),
                                       "cuerator_policy.yaml", 0.4, *RUN)
    return {"overrides": overrides, "config": _config(overrides), "paths": paths}


def _config(overrides) -> Config:
    return config_io.load(Config, REPO / "configs" / "cuerator_policy.yaml", overrides)


def _train(separable, root, *extra):
    train_cuerator.main([*separable["overrides"], f"output.root={root}", *extra])
    folder = root / "cuerator_policy"
    return folder, json.loads((folder / "results.json").read_text())


@pytest.fixture(scope="module")
def trained(separable, tmp_path_factory):
    return _train(separable, tmp_path_factory.mktemp("runs"))


def _split_sims(config, split: str, vocabulary):
    """The split's similarities without ``other``, computed here from the cache's files."""
    cache = FeatureCache(config.cache.dir)
    features = cache.split(split)
    names = list(vocabulary.names)
    sims = [cosine(torch.from_numpy(np.array(array, np.float32)),
                   torch.from_numpy(cache.text(names, "{}", modality))).numpy()[..., :-1]
            for array, modality in ((features.audio, "audio"), (features.vision, "vision"))]
    return sims


def test_the_rule_file_holds_the_oracle_of_the_training_split(separable, trained):
    folder, _ = trained
    config = separable["config"]
    index = AnnotationIndex.load(config.data.meta_csv, config.data.label_json)
    videos = index.videos("train", vocabulary=index.seen_vocabulary)
    sim_a, sim_v = _split_sims(config, "train", index.seen_vocabulary)
    params, accuracy = cuerator.global_oracle(sim_a, sim_v, videos.segment_classes, 256)
    rule = json.loads((folder / "rule.json").read_text())
    assert rule["format"] == cuerator.RULE_FORMAT and rule["encoder"]["family"] == "imagebind"
    np.testing.assert_array_equal(np.float32(rule["params"]), params)
    assert rule["fitted_on"]["frame_accuracy"] == accuracy and rule["fitted_on"]["classes"] == 4
    assert accuracy > 0.5  # separable features: far better than the background share alone


def test_the_run_reports_the_epoch_best_on_val_and_the_strategies_agree(separable, trained, tmp_path):
    folder, results = trained
    history = results["history"]
    accuracies = [record["frame_accuracy"] for record in history]
    assert [record["epoch"] for record in history] == [1, 2, 3]
    assert results["selection"]["best_epoch"] == history[int(np.argmax(accuracies))]["epoch"]  # the first best
    best = torch.load(folder / "checkpoints" / "best.ckpt", weights_only=True)
    assert best["epoch"] == results["selection"]["best_epoch"] and best["optimizer_state_dict"] is None
    assert (folder / "history.csv").read_text().count("\n") == 4
    # The same numbers from the strategies, through eval_zero_shot.py.
    out = tmp_path / "eval"
    eval_zero_shot.main([*separable["overrides"], "--strategy", "cuerator_policy", "--checkpoint",
                         str(folder / "checkpoints" / "best.ckpt"), f"output.root={out}"])
    policy_run = out / "v0_training_free_cuerator_policy_test"
    policy = json.loads((policy_run / "results.json").read_text())
    assert policy["metrics"] == results["metrics"] and policy["strategy"] == "cuerator_policy"
    eval_zero_shot.main([*separable["overrides"], "--strategy", "cuerator_rule",
                         f"cuerator.rule_file={folder / 'rule.json'}", f"output.root={out}"])
    rule_run = out / "v0_training_free_cuerator_rule_test"
    rule = json.loads((rule_run / "results.json").read_text())
    assert rule["metrics"] == results["rule_test_metrics"]
    assert rule["rule_params"] == json.loads((folder / "rule.json").read_text())["params"]


def test_the_policy_checkpoint_is_in_cuerators_layout(trained, shared):
    folder, _ = trained
    state = torch.load(folder / "checkpoints" / "best.ckpt", weights_only=True)
    with np.load(shared / "golden" / "cuerator_reference.npz") as golden:  # the keys their policy class has
        theirs = {key.split("/", 2)[2] for key in golden.files if key.startswith("policy/state_dict/")}
    assert set(state["policy_state_dict"]) == theirs
    config = state["config"]
    assert config["encoder"] == "imagebind" and config["video_dim"] == config["audio_dim"] == 24
    assert config["input_dim"] == 48 and config["action_dim"] == 10 and config["fixed_action_std"] == 0.3
    policy = cuerator.CueRatorPolicy(config["video_dim"], config["audio_dim"], config["policy_model_dim"],
                                     config["policy_transformer_nhead"], config["policy_transformer_ff_dim"])
    policy.load_state_dict(state["policy_state_dict"], strict=True)  # the keys their code loads
    assert strategies.for_checkpoint(folder / "checkpoints" / "best.ckpt").name == "cuerator_policy"


def test_resume_continues_the_policy_training_exactly(separable, trained, tmp_path):
    folder, results = trained
    cut, _ = _train(separable, tmp_path, "cuerator.epochs=1")
    with pytest.raises(UserError, match="already holds a policy training: add --resume"):
        _train(separable, tmp_path, "cuerator.epochs=3")
    resumed, again = _train(separable, tmp_path, "cuerator.epochs=3", "--resume")
    assert [r["frame_accuracy"] for r in again["history"]] == [r["frame_accuracy"] for r in results["history"]]
    assert [r["train_loss"] for r in again["history"]] == [r["train_loss"] for r in results["history"]]
    ours = torch.load(resumed / "checkpoints" / "best.ckpt", weights_only=True)["policy_state_dict"]
    theirs = torch.load(folder / "checkpoints" / "best.ckpt", weights_only=True)["policy_state_dict"]
    assert all(torch.equal(ours[key], theirs[key]) for key in theirs)
    assert again["metrics"] == results["metrics"]
    with pytest.raises(UserError, match=r"only cuerator.epochs may change:\n  cuerator.lr"):
        _train(separable, tmp_path, "cuerator.epochs=4", "cuerator.lr=1e-2", "--resume")
    with pytest.raises(UserError, match=r"has trained 3 epochs already, more than cuerator.epochs=2"):
        _train(separable, tmp_path, "cuerator.epochs=2", "--resume")


def test_fit_rule_alone_writes_the_rule_and_its_test_scores(separable, trained, tmp_path):
    folder, _ = _train(separable, tmp_path, "--fit-rule")
    results = json.loads((folder / "results.json").read_text())
    assert results["strategy"] == "cuerator_rule" and not (folder / "checkpoints").exists()
    assert json.loads((folder / "rule.json").read_text())["params"] == \
        json.loads((trained[0] / "rule.json").read_text())["params"]
    assert results["metrics"] == json.loads((trained[0] / "results.json").read_text())["rule_test_metrics"]


def _rule_file(path, **changes):
    rule = {"format": cuerator.RULE_FORMAT, "params": [0.1] * 10, "encoder": {"family": "imagebind"}, **changes}
    path.write_text(json.dumps(rule))
    return path


@pytest.mark.parametrize("rule, message", [
    ({"params": [0.1] * 9}, r"key params: CueRator's rule takes 10 parameters \(a_bias, .*\), got 9"),
    ({"params": [0.9] + [0.1] * 9},
     r"key params: parameters outside the rule's box: a_bias = 0.9 not in \[-0.1, 0.5\]"),
    ({"encoder": {"family": "clip_clap"}}, "was fitted on the clip_clap family's similarities, but encoder.family is "
                                           "imagebind; fit a rule on this encoder"),
    ({"format": "something else"}, "is not a CueRator rule file: it lacks \"format\""),
])
def test_bad_rule_files_are_one_line_naming_the_file(separable, tmp_path, capsys, rule, message):
    path = _rule_file(tmp_path / "rule.json", **rule)
    with pytest.raises(UserError, match=message) as error:
        eval_zero_shot.main([*separable["overrides"], "--strategy", "cuerator_rule", f"cuerator.rule_file={path}",
                             f"output.root={tmp_path / 'out'}"])
    assert str(path) in str(error.value) and "\n" not in str(error.value)
    assert not (tmp_path / "out").exists()  # refused before any folder


def test_the_rule_needs_its_parameters_and_config_parameters_are_checked(separable, tmp_path):
    out = [f"output.root={tmp_path / 'out'}"]
    with pytest.raises(UserError, match="strategy cuerator_rule needs its 10 parameters: set cuerator.rule_file"):
        eval_zero_shot.main([*separable["overrides"], "--strategy", "cuerator_rule", *out])
    with pytest.raises(UserError, match=r"cuerator.params: parameters outside the rule's box: v_bias = 0.9"):
        eval_zero_shot.main([*separable["overrides"], "--strategy", "cuerator_rule",
                             "cuerator.params=[0,0,0,0,0,0.9,0,0,0,0]", *out])
    eval_zero_shot.main([*separable["overrides"], "--strategy", "cuerator_rule",
                         "cuerator.params=[0,0,0,0,0,0,0,0,0,0]", *out])
    results = json.loads((tmp_path / "out" / "v0_training_free_cuerator_rule_test" / "results.json").read_text())
    assert results["rule_params"] == [0.0] * 10 and results["method"] == "CueRator"


@pytest.mark.parametrize("make, message", [
    (lambda path, state: torch.save({**state, "config": {**state["config"], "video_dim": 16}}, path),
     r"its weights do not fit the policy its config describes \(size mismatch for video_in_proj.weight"),
    (lambda path, state: torch.save({**state, "config": {**state["config"], "video_dim": 16, "audio_dim": 16},
                                     "policy_state_dict": cuerator.CueRatorPolicy(16, 16, 16, 4, 32).state_dict()},
                                    path),
     r"was trained on embeddings of widths \{'audio': 16, 'vision': 16\}, but ImageBind-small \(fp32\) gives "
     r"\{'audio': 24, 'vision': 24\}"),
    (lambda path, state: torch.save({**state, "config": {**state["config"], "encoder": "clip_clap"}}, path),
     "was trained on the clip_clap family's embeddings"),
    (lambda path, state: torch.save(state["policy_state_dict"], path),
     "is not a checkpoint of strategy cuerator_policy"),
])
def test_bad_policy_checkpoints_are_one_line(separable, trained, tmp_path, make, message):
    state = torch.load(trained[0] / "checkpoints" / "best.ckpt", weights_only=True)
    path = tmp_path / "policy.ckpt"
    make(path, state)
    with pytest.raises(UserError, match=message) as error:
        eval_zero_shot.main([*separable["overrides"], "--strategy", "cuerator_policy", "--checkpoint", str(path),
                             f"output.root={tmp_path / 'out'}"])
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_a_run_without_the_training_split_is_one_line(separable, tmp_path):
    meta = tmp_path / "meta.csv"
    lines = open(separable["paths"]["meta_csv"]).read().splitlines()
    meta.write_text("\n".join(line for line in lines if not line.startswith("train,")) + "\n")
    with pytest.raises(UserError, match=r"no train videos, but this run needs them \(CueRator's training"):
        train_cuerator.main([*separable["overrides"], f"data.meta_csv={meta}", f"output.root={tmp_path}"])
    cache = tmp_path / "cache"
    shutil.copytree(separable["config"].cache.dir, cache)
    shutil.rmtree(cache / "train")  # annotations with a train split, a cache without it, and no media
    with pytest.raises(UserError, match=r"(?s)lacks train.*no media for the train split") as error:
        train_cuerator.main([*separable["overrides"], f"cache.dir={cache}", f"output.root={tmp_path}"])
    assert str(cache) in str(error.value)


def test_features_move_both_ways_through_cuerators_layout(separable, tmp_path):
    from pipeline import cuerator_files
    from tools import cuerator_files as tool

    tool.main(["export", "--output", str(tmp_path / "theirs"), *separable["overrides"]])
    embeddings, similarities = cuerator_files.folders(tmp_path / "theirs", "imagebind")
    config = separable["config"]
    index = AnnotationIndex.load(config.data.meta_csv, config.data.label_json)
    # What their loaders read: embeddings in the meta CSV's order, text rows [:C], similarities.
    test = np.load(embeddings / "test.npz")
    sims = np.load(similarities / "test_sim.npz")
    videos = index.videos("test", vocabulary=index.all_vocabulary)
    assert test["audio"].shape == (len(videos), 10, 24) and list(test["vid_names"]) == list(videos.vid_names)
    text = np.load(embeddings / "test_text.npy") if (embeddings / "test_text.npy").exists() else \
        np.load(embeddings / "test_audio_text.npy")
    assert text.shape[0] == len(index.all_vocabulary)  # the classes, then other
    classes = len(index.all_vocabulary) - 1
    cos = cosine(torch.from_numpy(test["audio"]), torch.from_numpy(text[:classes])).numpy()
    np.testing.assert_allclose(sims["a_t_sim"], cos, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(sims["category_ids"], videos.class_index)
    np.testing.assert_array_equal(sims["avc_labels"], videos.labels)
    assert np.load(similarities / "train_sim.npz")["a_t_sim"].shape[-1] == len(index.seen_vocabulary) - 1
    # Back into a new cache: the same evaluation.
    kept = [o for o in separable["overrides"] if not o.startswith("cache.dir=")]
    imported = [*kept, f"cache.dir={tmp_path / 'back'}"]
    tool.main(["import", "--input", str(tmp_path / "theirs"), *imported])
    for name, overrides in (("a", separable["overrides"]), ("b", imported)):
        eval_zero_shot.main([*overrides, "--strategy", "v01", f"output.root={tmp_path / name}"])
    first, second = (json.loads((tmp_path / n / "v0_training_free_v01_test" / "results.json").read_text())
                     for n in "ab")
    assert first["metrics"] == second["metrics"]
    assert second["cache"]["provenance"]["imported_from"]["layout"] == "cuerator"
    # Equal metrics could hide a swap; the arrays themselves went where they came from.
    original, back = FeatureCache(config.cache.dir), FeatureCache(tmp_path / "back")
    exported = {split: np.load(embeddings / f"{split}.npz") for split in ("train", "val", "test")}
    for split, theirs in exported.items():
        mine, again = original.split(split), back.split(split)
        np.testing.assert_array_equal(theirs["audio"], np.asarray(mine.audio))
        np.testing.assert_array_equal(theirs["visual"], np.asarray(mine.vision))
        assert list(again.vid_names) == list(mine.vid_names)
        np.testing.assert_array_equal(np.asarray(again.audio), np.asarray(mine.audio))
        np.testing.assert_array_equal(np.asarray(again.vision), np.asarray(mine.vision))
    names = list(index.all_vocabulary.names)
    for modality in ("audio", "vision"):  # each class's own row, in each modality's own table
        np.testing.assert_array_equal(back.text(names, "{}", modality), original.text(names, "{}", modality))
    with pytest.raises(UserError, match="already holds a feature cache; import into a new folder"):
        tool.main(["import", "--input", str(tmp_path / "theirs"), *imported])


def test_imports_are_checked_against_the_annotations(separable, tmp_path):
    from pipeline import cuerator_files

    config = separable["config"]
    cuerator_files.export(config, tmp_path / "theirs", "imagebind", ["test"])
    embeddings, similarities = cuerator_files.folders(tmp_path / "theirs", "imagebind")
    sims = dict(np.load(similarities / "test_sim.npz"))
    names = list(sims.pop("class_names"))
    np.savez(similarities / "test_sim.npz", **sims)  # as their own code writes it: no class names
    fresh = _config([*separable["overrides"], f"cache.dir={tmp_path / 'c1'}"])
    with pytest.raises(UserError, match=r"does not name its classes: give CueRator's category CSV of the test "
                                        r"classes \(--test-categories\)"):
        cuerator_files.import_files(fresh, tmp_path / "theirs", "imagebind")
    (tmp_path / "categories.csv").write_text("".join(f"{n}\n" for n in names + ["other"]))
    cache = cuerator_files.import_files(fresh, tmp_path / "theirs", "imagebind", {"test": tmp_path / "categories.csv"})
    assert cache.has_split("test") and not cache.has_split("train")
    reversed_labels = {**sims, "avc_labels": sims["avc_labels"][::-1]}
    np.savez(similarities / "test_sim.npz", **reversed_labels)
    other = _config([*separable["overrides"], f"cache.dir={tmp_path / 'c2'}"])
    with pytest.raises(UserError, match="avc_labels differ from .*labels of the test videos in the meta CSV's order"):
        cuerator_files.import_files(other, tmp_path / "theirs", "imagebind", {"test": tmp_path / "categories.csv"})
