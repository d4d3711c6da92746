from pathlib import Path

import pytest

from common import config
from common.config import ConfigError
from common.schema import Config

REPO_CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_default_config_loads_with_documented_defaults():
    cfg = config.load(Config, REPO_CONFIGS / "_base_" / "default.yaml")
    assert cfg.data.meta_csv == "ovave_dataset_preprocessed/ovave_dataset_meta.csv"


def test_base_inheritance_and_overrides(tmp_path):
    (tmp_path / "base.yaml").write_text("data:\n  meta_csv: a.csv\n  label_json: a.json\n")
    (tmp_path / "exp.yaml").write_text("_base_: base.yaml\ndata:\n  meta_csv: b.csv\n")
    cfg = config.load(Config, tmp_path / "exp.yaml", ["data.label_json=c.json"])
    assert (cfg.data.meta_csv, cfg.data.label_json) == ("b.csv", "c.json")


def test_unknown_key_names_key_and_choices(tmp_path):
    (tmp_path / "exp.yaml").write_text("data:\n  meta_cvs: a.csv\n")
    with pytest.raises(ConfigError, match=r"exp.yaml: unknown config key 'data.meta_cvs' \(did you mean 'meta_csv'\?\); "
                                          r"valid keys under data: meta_csv, label_json, media_root"):
        config.load(Config, tmp_path / "exp.yaml")


def test_wrong_type_names_key(tmp_path):
    (tmp_path / "exp.yaml").write_text("data:\n  meta_csv: 3\n")
    with pytest.raises(ConfigError, match=r"data.meta_csv must be a string, got 3 \(int\)"):
        config.load(Config, tmp_path / "exp.yaml")


def test_bad_override_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="must look like section.key=value"):
        config.parse_override("data.meta_csv")
    with pytest.raises(ConfigError, match="config file not found"):
        config.load(Config, tmp_path / "none.yaml")


def test_base_loop_is_an_error(tmp_path):
    (tmp_path / "a.yaml").write_text("_base_: b.yaml\n")
    (tmp_path / "b.yaml").write_text("_base_: a.yaml\n")
    with pytest.raises(ConfigError, match="loop"):
        config.load(Config, tmp_path / "a.yaml")


def test_float_keys_accept_exponent_notation(tmp_path):
    from common.schema import Config as Full

    (tmp_path / "exp.yaml").write_text("train:\n  lr: 5e-5\n")  # PyYAML reads this as a string
    assert config.load(Full, tmp_path / "exp.yaml", ["train.grad_clip=1e-1"]).train.lr == 5e-5
    with pytest.raises(ConfigError, match=r"train.lr must be a number, got 'fast' \(str\)"):
        config.load(Full, tmp_path / "exp.yaml", ["train.lr=fast"])


@pytest.mark.parametrize("override, message", [
    ("eval.block_videos=0", r"eval.block_videos = 0 is out of range; allowed: \[1, inf\)"),
    ("eval.block_videos=-5", r"eval.block_videos = -5 is out of range; allowed: \[1, inf\)"),
    ("extract.batch_size=0", r"extract.batch_size = 0 is out of range; allowed: \[1, inf\)"),
    ("extract.batch_size=-2", r"extract.batch_size = -2 is out of range"),
    ("extract.chunk_size=0", r"extract.chunk_size = 0 is out of range"),
    ("extract.num_workers=-1", r"extract.num_workers = -1 is out of range; allowed: \[0, inf\)"),
    ("train.batch_size=0", r"train.batch_size = 0 is out of range"),
    ("train.lr=-1", r"train.lr = -1.0 is out of range; allowed: \(0, inf\)"),
    ("train.lr=0", r"train.lr = 0.0 is out of range"),
    ("train.grad_clip=-1", r"train.grad_clip = -1.0 is out of range; allowed: \(0, inf\)"),
    ("train.grad_clip=0", r"train.grad_clip = 0.0 is out of range"),
    ("train.epochs=-1", r"train.epochs = -1 is out of range"),
    ("train.epochs=0", r"train.epochs = 0 is out of range"),
    ("temporal.dropout=1.5", r"temporal.dropout = 1.5 is out of range; allowed: \[0, 1\)"),
    ("temporal.num_heads=3", r"temporal.num_heads: 3 heads do not divide attn_dim 256"),
    ("temporal.num_layers=0", r"temporal.num_layers = 0 is out of range"),
    ("device=tpu", r"device: 'tpu' is not a device; choose auto, cpu, cuda or cuda:<index>"),
    ("output.plot_videos=0", r"output.plot_videos = 0 is out of range"),
    ("encoder.family=clip", r"encoder.family = 'clip' is not allowed; choose one of 'imagebind', 'clip_clap'"),
])
def test_out_of_range_values_name_key_value_and_range(override, message):
    with pytest.raises(ConfigError, match=r"v1_fine_tuning.yaml \(with overrides\): " + message):
        config.load(Config, REPO_CONFIGS / "v1_fine_tuning.yaml", [override])


def test_grad_clip_null_disables_clipping_and_devices_parse():
    cfg = config.load(Config, REPO_CONFIGS / "v1_fine_tuning.yaml", ["train.grad_clip=null", "device=cuda:1"])
    assert cfg.train.grad_clip is None and cfg.device == "cuda:1"


@pytest.mark.parametrize("path", sorted(p for p in REPO_CONFIGS.rglob("*.yaml") if "sweeps" not in p.parts),
                         ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    cfg = config.load(Config, path)
    if "clip_clap" in path.name:
        assert cfg.encoder.family == "clip_clap" and cfg.train.audio_draws == 0
    if path.name == "v1_fine_tuning_published.yaml":
        assert (cfg.train.epochs, cfg.train.audio_draws, cfg.train.selection) == (10, 10, "test")
