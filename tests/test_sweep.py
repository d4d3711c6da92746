"""Ablation sweeps (sweep.py): each variant runs once through the same scripts a user runs, the
table holds exactly their results, an interrupted sweep continues, and a wrong sweep file stops
with one line before anything runs."""

import csv
import json
import shutil
from pathlib import Path

import pytest
import yaml

import sweep
import train
from common import cli
from common import config as config_io
from conftest import REPO, separable_cache
from data.synthetic import SyntheticSpec
from pipeline.outputs import TABLE_COLUMNS
from pipeline.sweep import read_sweep


@pytest.fixture(scope="module")
def cache_overrides(tmp_path_factory):
    overrides, _ = separable_cache(tmp_path_factory.mktemp("sweep"),
                                   SyntheticSpec(train_per_class=20, val_per_class=6, test_per_class=6),
                                   "v1_fine_tuning.yaml", 0.3, "device=cpu", "temporal.attn_dim=16",
                                   "temporal.ffn_dim=32", "train.lr=1e-2", "train.tensorboard=false",
                                   "train.audio_draws=0", "output.plots=false")
    return overrides


def write_sweep(path, script, config, overrides, variants) -> str:
    path.write_text(yaml.safe_dump({"script": script, "config": str(REPO / "configs" / config),
                                    "overrides": overrides, "variants": variants}))
    return str(path)


def run_sweep(*argv) -> int:
    with pytest.raises(SystemExit) as exit_info:
        cli.run(lambda: sweep.main([str(a) for a in argv]))
        raise SystemExit(0)
    return exit_info.value.code


def counting(monkeypatch, script) -> list:
    """The argument lists the sweep runs ``script`` with (it still runs)."""
    calls, (original, name) = [], sweep.SCRIPTS[script]
    monkeypatch.setitem(sweep.SCRIPTS, script, (lambda argv: calls.append(list(argv)) or original(argv), name))
    return calls


def table_rows(folder) -> dict:
    with open(folder / "sweep.csv", newline="") as handle:
        return {row["variant"]: row for row in csv.DictReader(handle)}


def assert_row_is_the_results(row: dict, results: dict) -> None:
    for subset, summary in results["metrics"].items():
        for key, label in TABLE_COLUMNS:
            assert float(row[f"{subset} {label}"]) == round(100 * summary[key], 2)


def test_each_variant_runs_once_and_the_table_holds_their_results(cache_overrides, tmp_path, monkeypatch, capsys):
    file = write_sweep(tmp_path / "depth.yaml", "train", "v1_fine_tuning.yaml", [*cache_overrides, "train.epochs=2"],
                       {"one": [], "two": ["temporal.num_layers=2"]})
    calls = counting(monkeypatch, "train")
    assert run_sweep(file, "--output", tmp_path / "sweep") == 0
    assert len(calls) == 2 and "temporal.num_layers=2" in calls[1] and "--resume" not in calls[0]
    out = capsys.readouterr().out
    assert "[1/2] one: running python train.py --config" in out and "table:" in out
    rows = table_rows(tmp_path / "sweep")
    assert list(rows) == ["one", "two"]
    for name, row in rows.items():
        results = json.loads((tmp_path / "sweep" / name / "results.json").read_text())
        assert_row_is_the_results(row, results)
        assert results["config"]["output"]["name"] == name
    two = json.loads((tmp_path / "sweep" / "two" / "results.json").read_text())
    assert two["config"]["temporal"]["num_layers"] == 2 and two["config"]["train"]["epochs"] == 2
    markdown = (tmp_path / "sweep" / "sweep.md").read_text()
    total_avg = f"{100 * two['metrics']['total']['average']:.1f}"
    assert "| two |" in markdown and total_avg in markdown.split("| two |")[1].split("\n")[0]

    calls.clear()  # again: nothing to run, the same table
    assert run_sweep(file, "--output", tmp_path / "sweep") == 0
    assert calls == [] and "[2/2] two: done in" in capsys.readouterr().out
    assert (tmp_path / "sweep" / "sweep.md").read_text() == markdown


def test_an_interrupted_training_resumes_and_more_epochs_continue_the_run(cache_overrides, tmp_path, monkeypatch,
                                                                           capsys):
    file = write_sweep(tmp_path / "s.yaml", "train", "v1_fine_tuning.yaml", cache_overrides, {"only": []})
    calls = counting(monkeypatch, "train")
    assert run_sweep(file, "--output", tmp_path / "sweep", "train.epochs=1") == 0
    (tmp_path / "sweep" / "only" / "results.json").unlink()  # killed after its epoch, before the results
    assert run_sweep(file, "--output", tmp_path / "sweep", "train.epochs=1") == 0
    assert calls[-1][-1] == "--resume"
    assert run_sweep(file, "--output", tmp_path / "sweep", "train.epochs=3") == 0  # asked for more epochs
    assert calls[-1][-1] == "--resume" and len(calls) == 3
    assert run_sweep(file, "--output", tmp_path / "sweep", "train.epochs=2") == 2  # fewer: not these results
    assert "holds the results of another config (train.epochs: 3 -> 2)" in capsys.readouterr().err
    continued = json.loads((tmp_path / "sweep" / "only" / "results.json").read_text())
    straight_sweep = read_sweep(file, ["train.epochs=3"], tmp_path / "straight")
    train.main(straight_sweep.arguments(straight_sweep.variants[0], resume=False))
    straight = json.loads((tmp_path / "straight" / "only" / "results.json").read_text())
    assert continued["metrics"] == straight["metrics"] and len(continued["history"]) == 3


def test_results_of_another_config_stop_the_sweep_before_anything_runs(cache_overrides, tmp_path, monkeypatch,
                                                                       capsys):
    file = write_sweep(tmp_path / "s.yaml", "train", "v1_fine_tuning.yaml", [*cache_overrides, "train.epochs=1"],
                       {"a": [], "b": ["temporal.num_layers=2"]})
    assert run_sweep(file, "--output", tmp_path / "sweep", "--only", "b") == 0
    shutil.move(tmp_path / "sweep" / "b", tmp_path / "sweep" / "a")  # a's folder now holds b's results
    calls = counting(monkeypatch, "train")
    assert run_sweep(file, "--output", tmp_path / "sweep") == 2
    err = capsys.readouterr().err
    assert "sweep/a holds the results of another config (temporal.num_layers: 2 -> 1)" in err
    assert "delete it, or give --output another sweep folder" in err and calls == []


def test_a_training_free_sweep_runs_eval_zero_shot(cache_overrides, tmp_path, monkeypatch, capsys):
    file = write_sweep(tmp_path / "free.yaml", "evaluate", "v0_training_free.yaml", cache_overrides,
                       {"v0": ["eval.strategy=v0"], "v01": ["eval.strategy=v01"]})
    calls = counting(monkeypatch, "evaluate")
    assert run_sweep(file, "--output", tmp_path / "sweep") == 0
    assert [c[c.index("--config") + 1] for c in calls] == [str(REPO / "configs" / "v0_training_free.yaml")] * 2
    rows = table_rows(tmp_path / "sweep")
    for name in ("v0", "v01"):
        results = json.loads((tmp_path / "sweep" / name / "results.json").read_text())
        assert results["strategy"] == name
        assert_row_is_the_results(rows[name], results)
    assert "running python eval_zero_shot.py" in capsys.readouterr().out


def test_table_only_runs_nothing(cache_overrides, tmp_path, monkeypatch, capsys):
    file = write_sweep(tmp_path / "s.yaml", "evaluate", "v0_training_free.yaml", cache_overrides,
                       {"v0": ["eval.strategy=v0"], "v01": ["eval.strategy=v01"]})
    assert run_sweep(file, "--output", tmp_path / "sweep", "--only", "v01") == 0
    calls = counting(monkeypatch, "evaluate")
    assert run_sweep(file, "--output", tmp_path / "sweep", "--table") == 0
    out = capsys.readouterr().out
    assert calls == [] and "v0: not run yet" in out and "v01: done in" in out
    assert list(table_rows(tmp_path / "sweep")) == ["v01"]
    assert "| v01 |" in (tmp_path / "sweep" / "sweep.md").read_text()


@pytest.mark.parametrize("content, message", [
    ("[1, 2]", "a sweep file is a mapping with the keys script, config, overrides, variants"),
    ("script: train\nconfig: configs/v1_fine_tuning.yaml\nvariant: {a: []}\n", "unknown key 'variant'"),
    ("script: fit\nconfig: configs/v1_fine_tuning.yaml\nvariants: {a: []}\n",
     "script must be one of train, evaluate, cuerator; got 'fit'"),
    ("script: train\nconfig: configs/nowhere.yaml\nvariants: {a: []}\n", "config: no such file: configs/nowhere.yaml"),
    ("script: train\nconfig: configs/v1_fine_tuning.yaml\nvariants: {}\n", "variants must map each variant's name"),
    ("script: train\nconfig: configs/v1_fine_tuning.yaml\nvariants: {a: temporal.num_layers=2}\n",
     "variant 'a' must be a list of key=value overrides"),
    ("script: train\nconfig: configs/v1_fine_tuning.yaml\nvariants: {a: [temporal.num_layer=2]}\n",
     ("variant 'a': ", "unknown config key 'temporal.num_layer'")),
    ("script: train\nconfig: configs/v1_fine_tuning.yaml\nvariants: {a: [temporal.num_layers=0]}\n",
     ("variant 'a': ", "temporal.num_layers = 0 is out of range")),
    ("script: train\nconfig: configs/v1_fine_tuning.yaml\nvariants: {a: [output.name=x]}\n",
     "output.name=x: the sweep sets output.root and output.name itself"),
    ("script: train\nconfig: configs/v1_fine_tuning.yaml\nvariants: {a/b: []}\n", "variant name 'a/b'"),
    ("script: train\nconfig: configs/v1_fine_tuning.yaml\nvariants: {a: []\n", "is not valid YAML"),
])
def test_a_wrong_sweep_file_is_one_line_naming_it(tmp_path, content, message, capsys):
    (tmp_path / "bad.yaml").write_text(content)
    assert run_sweep(tmp_path / "bad.yaml", "--output", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert all(part in err for part in ((message,) if isinstance(message, str) else message))
    assert str(tmp_path / "bad.yaml") in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_an_unknown_variant_or_a_missing_file_is_named(tmp_path, capsys):
    assert run_sweep(REPO / "configs" / "sweeps" / "fusion.yaml", "--only", "geometric", "bilinear") == 2
    assert "--only bilinear: no such variant in" in capsys.readouterr().err
    assert run_sweep(tmp_path / "none.yaml") == 2
    assert f"cannot read the sweep file {tmp_path / 'none.yaml'}" in capsys.readouterr().err


@pytest.mark.parametrize("path", sorted((REPO / "configs" / "sweeps").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_sweep_loads_with_distinct_variants(path):
    loaded = read_sweep(path)
    configs = [json.dumps(config_io.to_dict(v.config), sort_keys=True) for v in loaded.variants]
    assert len(set(configs)) == len(configs) >= 3  # no two variants are the same run
    assert loaded.folder == Path(loaded.variants[0].config.output.root) / "sweeps" / path.stem


def test_a_cuerator_sweep_runs_train_cuerator_and_resumes_it(tmp_path_factory, tmp_path, monkeypatch):
    overrides, _ = separable_cache(tmp_path_factory.mktemp("cuerator_sweep"),
                                   SyntheticSpec(train_per_class=12, val_per_class=4, test_per_class=4),
                                   "cuerator_policy.yaml", 0.4, "cuerator.oracle_candidates=64", "cuerator.epochs=1",
                                   "cuerator.model_dim=16", "cuerator.ffn_dim=32", "cuerator.tensorboard=false",
                                   "device=cpu", "output.plots=false")
    file = write_sweep(tmp_path / "policy.yaml", "cuerator", "cuerator_policy.yaml", overrides,
                       {"k4": [], "k1": ["cuerator.samples=1"]})
    calls = counting(monkeypatch, "cuerator")
    assert run_sweep(file, "--output", tmp_path / "sweep") == 0
    assert len(calls) == 2 and calls[1][calls[1].index("--config") + 1].endswith("cuerator_policy.yaml")
    rows = table_rows(tmp_path / "sweep")
    for name, samples in (("k4", 4), ("k1", 1)):
        results = json.loads((tmp_path / "sweep" / name / "results.json").read_text())
        assert results["config"]["cuerator"]["samples"] == samples
        assert_row_is_the_results(rows[name], results)
    (tmp_path / "sweep" / "k1" / "results.json").unlink()  # killed after its epoch, before the results
    assert run_sweep(file, "--output", tmp_path / "sweep") == 0
    assert len(calls) == 3 and calls[-1][-1] == "--resume" and "cuerator.samples=1" in calls[-1]
