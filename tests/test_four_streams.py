"""The 4-stream path end to end on the synthetic benchmark's media with the small random ImageBind:
the phase generator trained (and resumed exactly), the companion streams extracted into the cache
with their provenance, the fusion trained and evaluated; files that do not fit are refused."""

import json

import numpy as np
import pytest
import torch

import train
import train_phase_gan
from common.errors import UserError
from conftest import REPO, interrupt_at_save, synthetic_overrides
from data import companions
from data.feature_cache import FeatureCache

FOUR = ["--config", str(REPO / "configs" / "complex_fusion_4stream.yaml")]
GAN = ["phase_gan.size=tiny", "phase_gan.epochs=2", "phase_gan.max_videos=2", "phase_gan.batch_size=4",
       "phase_gan.tensorboard=false"]
SMALL = ["temporal.attn_dim=8", "temporal.ffn_dim=8", "train.epochs=2", "train.tensorboard=false",
         "output.plots=false", "complex.hidden=4", "train.lr=1e-2"]


@pytest.fixture(scope="module")
def generator(synthetic_bench, tmp_path_factory):
    root = tmp_path_factory.mktemp("gan")
    overrides = synthetic_overrides(synthetic_bench, root / "cache", f"output.root={root / 'runs'}", *GAN)
    train_phase_gan.main([*FOUR, *overrides])
    return overrides, root


def test_the_phase_gan_writes_a_generator_for_its_family_and_resumes_exactly(generator, tmp_path, monkeypatch):
    overrides, root = generator
    folder = root / "runs" / "phase_gan"
    state = torch.load(folder / "generator.pt", weights_only=True)
    assert state["format"] == "phase-generator/1" and tuple(state["in_shape"]) == (1, 257, 204)
    assert tuple(state["out_shape"]) == (1, 128, 204) and state["family"]["family"] == "imagebind"
    history = (folder / "history.csv").read_text().splitlines()
    assert len(history) == 3  # header and two epochs
    from pipeline import phase_gan_training

    again = [o for o in overrides if not o.startswith("output.root")] + [f"output.root={tmp_path}"]
    interrupt_at_save(monkeypatch, phase_gan_training, "last.pt", 2)
    with pytest.raises(KeyboardInterrupt):
        train_phase_gan.main([*FOUR, *again])
    monkeypatch.undo()
    train_phase_gan.main([*FOUR, *again, "--resume"])
    resumed = torch.load(tmp_path / "phase_gan" / "generator.pt", weights_only=True)["state_dict"]
    for name, value in state["state_dict"].items():
        assert torch.equal(resumed[name], value), name


@pytest.fixture(scope="module")
def four_streams(generator, tmp_path_factory):
    overrides, root = generator
    runs = tmp_path_factory.mktemp("fusion")
    kept = [o for o in overrides if not o.startswith("output.root")]
    fusion = [*kept, f"complex.generator={root / 'runs' / 'phase_gan' / 'generator.pt'}", *SMALL,
              f"output.root={runs}"]
    train.main([*FOUR, *fusion])
    return fusion, runs / "complex_fusion_4stream"


def test_companions_are_extracted_with_their_provenance_and_the_fusion_trains(four_streams, synthetic_bench):
    fusion, folder = four_streams
    results = json.loads((folder / "results.json").read_text())
    assert results["method"] == "complex-valued fusion (4 streams, complex CNN)"
    cache = FeatureCache(next(o.split("=", 1)[1] for o in fusion if o.startswith("cache.dir=")))
    for split in ("train", "val", "test"):
        made = companions.provenance_of(cache, split)
        assert made["ihsv"]["negative"] == "shift" and made["phase"]["generator"]["sha256"]
        ihsv = np.load(cache.root / f"{split}_companions" / "ihsv.npy")
        vision = np.load(cache.root / split / "vision.npy")
        assert ihsv.shape == vision.shape and not np.allclose(ihsv, vision)  # another picture, the same encoder
    best = torch.load(folder / "checkpoints" / "best.pt", weights_only=True)
    assert set(k.split(".")[1] for k in best["model"] if k.startswith("heads.")) == {"vision", "ihsv", "audio",
                                                                                     "phase"}
    train.main([*FOUR, *fusion, "--evaluate", str(folder / "checkpoints" / "best.pt"), "output.name=again"])
    again = json.loads((folder.parent / "again" / "results.json").read_text())
    assert again["metrics"] == results["metrics"]


def test_companions_of_another_mapping_are_refused_not_mixed(four_streams):
    fusion, folder = four_streams
    with pytest.raises(UserError, match=r"holds companion streams made with another ihsv"):
        train.main([*FOUR, *fusion, "complex.ihsv_negative=abs", "output.name=abs"])


def test_generators_that_do_not_fit_are_refused_before_any_work(four_streams, tmp_path):
    fusion, folder = four_streams
    generator = next(o.split("=", 1)[1] for o in fusion if o.startswith("complex.generator="))
    state = torch.load(generator, weights_only=True)
    state["family"] = {**state["family"], "family": "clip_clap"}
    torch.save(state, tmp_path / "other_family.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "not_a_generator.pt")
    for path, message in ((tmp_path / "other_family.pt", "was trained for"),
                          (tmp_path / "not_a_generator.pt", "is not a phase generator"),
                          (tmp_path / "absent.pt", "not found")):
        with pytest.raises(UserError, match=message):
            train.main([*FOUR, *fusion, f"complex.generator={path}", f"output.root={tmp_path}", "output.name=x"])
        assert not (tmp_path / "x").exists()
    with pytest.raises(UserError, match="the clip_clap family does not define"):
        train.main([*FOUR, *fusion, "encoder.family=clip_clap", "encoder.size=tiny", "encoder.audio_checkpoint=random",
                    f"output.root={tmp_path}", "output.name=y"])


@pytest.mark.parametrize("key, value", [("batch_size", 8), ("lr_generator", 1e-3), ("lr_discriminator", 1e-3),
                                        ("cycle_weight", 1.0), ("identity_weight", 0.0), ("distribution_weight", 0.0),
                                        ("real_label", 1.0), ("instance_noise", 0.5),
                                        ("skip_discriminator_below", 10.0), ("seed", 3)])
def test_each_phase_gan_setting_changes_the_generator_it_trains(key, value, tmp_path, monkeypatch):
    import dataclasses
    import types

    from common.schema import Config, PhaseGanConfig
    from pipeline import phase_gan_training

    def trained(settings: PhaseGanConfig) -> dict:
        run = phase_gan_training.PhaseGanRun.__new__(phase_gan_training.PhaseGanRun)
        run.config = dataclasses.replace(Config(device="cpu"), phase_gan=settings)
        run.settings, run.device, run.folder = settings, torch.device("cpu"), tmp_path
        run.backbone = types.SimpleNamespace(PHASE_INPUT=(1, 65, 32), AUDIO_INPUT=(1, 32, 32))  # small: quick
        generator = torch.Generator().manual_seed(0)
        batches = [(torch.rand(16, 1, 65, 32, generator=generator) * 6 - 3,
                    torch.randn(16, 1, 32, 32, generator=generator)) for _ in range(2)]
        monkeypatch.setattr(run, "_batches", lambda epoch: ((p[:settings.batch_size], a[:settings.batch_size])
                                                            for p, a in batches))
        nets = run._models()
        optim_g = torch.optim.Adam(list(nets["if_to_mel"].parameters()) + list(nets["mel_to_if"].parameters()),
                                   lr=settings.lr_generator, betas=(0.5, 0.999))
        optim_d = torch.optim.Adam(list(nets["judge_mel"].parameters()) + list(nets["judge_if"].parameters()),
                                   lr=settings.lr_discriminator, betas=(0.5, 0.999))
        torch.manual_seed(1)
        run._epoch(1, nets, optim_g, optim_d)
        return nets["if_to_mel"].state_dict()

    base = PhaseGanConfig(size="tiny")
    before = trained(base)
    after = trained(dataclasses.replace(base, **{key: value}))
    assert any(not torch.equal(before[name], after[name]) for name in before), f"phase_gan.{key} changed nothing"


def test_a_four_stream_checkpoint_is_evaluated_and_localizes_a_new_video(four_streams, synthetic_bench, tmp_path):
    import eval_zero_shot
    import localize
    from data.synthetic import write_demo_videos

    fusion, folder = four_streams
    checkpoint = folder / "checkpoints" / "best.pt"
    kept = [o for o in fusion if not o.startswith(("output.", "complex.generator", "train.", "temporal."))]
    eval_zero_shot.main([*kept, "--checkpoint", str(checkpoint), f"output.root={tmp_path}", "output.name=eval"])
    evaluated = json.loads((tmp_path / "eval" / "results.json").read_text())
    trained = json.loads((folder / "results.json").read_text())
    assert evaluated["metrics"] == trained["metrics"] and evaluated["strategy"] == "complex_fusion"
    [video, *_] = write_demo_videos(synthetic_bench["media_root"], tmp_path / "videos", long_video_clips=2)
    localize.main([str(video), "--classes", "dog barking,cat purring", "--checkpoint", str(checkpoint), *kept,
                   "--output", str(tmp_path / "out")])
    events = json.loads((tmp_path / "out" / "events.json").read_text())
    assert events["method"].endswith("(complex_fusion)")
    assert events["videos"][0]["status"] == "ok" and events["videos"][0]["segments"] == 10
