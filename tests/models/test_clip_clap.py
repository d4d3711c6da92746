"""The CLIP + CLAP family with tiny random models of both libraries (no downloads): inputs equal
the libraries' own processors, both baselines run end to end, families never mix."""

import json
import shutil

import numpy as np
import pytest
import soundfile
import torch

import eval_zero_shot
import train
from conftest import synthetic_config, synthetic_overrides
from data.annotations import AnnotationIndex
from data.feature_cache import CacheError
from data.loading import media_paths
from models.checkpoint import CheckpointError
from models.families import clip_clap
from pipeline.extraction import ensure_features, extract

FAMILY = ("encoder.family=clip_clap", "encoder.size=tiny", "encoder.audio_checkpoint=random", "train.audio_draws=0")


def test_frames_equal_open_clips_own_preprocessing(synthetic_bench):
    import open_clip
    from PIL import Image

    _, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32-quickgelu")  # the model's processor
    videos = AnnotationIndex.load(synthetic_bench["meta_csv"], synthetic_bench["label_json"]).videos("test")
    _, folder = media_paths(synthetic_bench["media_root"], "test", videos.categories[0], videos.vid_names[0])
    ours = clip_clap.decode_frames(folder)
    assert ours.shape == (10, 3, 224, 224)
    for k, path in enumerate(sorted(folder.glob("*.png"))):
        with Image.open(path) as image:
            torch.testing.assert_close(ours[k], preprocess(image), rtol=0, atol=0)


def test_audio_segments_equal_claps_own_feature_extractor(tmp_path):
    from transformers import ClapFeatureExtractor

    rng = np.random.default_rng(0)
    samples = (0.1 * rng.standard_normal(48000 * 10)).astype(np.float32)
    soundfile.write(tmp_path / "a.wav", samples, 48000, subtype="FLOAT")
    ours = clip_clap.decode_audio(tmp_path / "a.wav")
    assert ours.shape == (10, 1, 1001, 64)
    extractor = ClapFeatureExtractor()
    for k in (0, 4, 9):  # each second as the library prepares a clip for the unfused model
        theirs = extractor(samples[k * 48000:(k + 1) * 48000], sampling_rate=48000, truncation="rand_trunc",
                           return_tensors="pt")["input_features"]
        torch.testing.assert_close(ours[k], theirs[0], rtol=0, atol=0)
    short = samples[:48000 * 3]  # a 3 s file: the missing seconds are silence
    soundfile.write(tmp_path / "short.wav", short, 48000, subtype="FLOAT")
    silent = extractor(np.zeros(48000, np.float32), sampling_rate=48000, truncation="rand_trunc",
                       return_tensors="pt")["input_features"]
    torch.testing.assert_close(clip_clap.decode_audio(tmp_path / "short.wav")[7], silent[0], rtol=0, atol=0)


@pytest.mark.slow
def test_both_baselines_run_on_clip_clap(synthetic_bench, tmp_path, capsys):
    runs = tmp_path / "runs"
    base = synthetic_overrides(synthetic_bench, tmp_path / "cache", f"output.root={runs}", *FAMILY)
    for strategy in ("v0", "v01"):
        eval_zero_shot.main(base + ["--strategy", strategy])
        results = json.loads((runs / f"v0_training_free_{strategy}_test" / "results.json").read_text())
        assert results["encoder"].startswith("CLIP ViT-B/32 + CLAP HTSAT (tiny")
        assert results["cache"]["provenance"]["encoder"]["family"] == "clip_clap"
        assert results["videos"]["total"] == 4
    train.main(base + ["train.epochs=2", "temporal.attn_dim=8", "temporal.ffn_dim=16", "train.tensorboard=false"])
    results = json.loads((runs / "v1_fine_tuning" / "results.json").read_text())
    assert results["encoder"].startswith("CLIP ViT-B/32 + CLAP HTSAT") and len(results["history"]) == 2
    assert "| CLIP ViT-B/32 + CLAP HTSAT" in capsys.readouterr().out


def test_each_modality_is_scored_against_its_own_text_tower(synthetic_bench, tmp_path):
    config = synthetic_config(synthetic_bench, tmp_path / "cache", *FAMILY)
    cache = extract(config, ["val"])
    encoder = clip_clap.build(config, torch.device("cpu"))
    names = ["dog barking", "other"]
    np.testing.assert_allclose(cache.text(names, "{}", "vision"), encoder.class_names(names, "{}", "vision").numpy(),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(cache.text(names, "{}", "audio"), encoder.class_names(names, "{}", "audio").numpy(),
                               rtol=1e-5, atol=1e-5)
    assert not np.allclose(cache.text(names, "{}", "vision"), cache.text(names, "{}", "audio"))
    provenance = cache.provenance()
    assert provenance["encoder"]["widths"] == {"audio": 16, "vision": 16}
    assert set(provenance["models"]) == {"clip", "clap"}
    assert provenance["preprocessing"]["audio"]["sampling_rate"] == 48000


def test_caches_of_two_families_never_mix(synthetic_bench, tmp_path):
    imagebind = synthetic_config(synthetic_bench, tmp_path / "cache")
    extract(imagebind, ["val"])
    other = synthetic_config(synthetic_bench, tmp_path / "cache", *FAMILY)
    index = AnnotationIndex.load(other.data.meta_csv, other.data.label_json)
    with pytest.raises(CacheError, match=r"(?s)made differently.*encoder.family: 'imagebind' -> 'clip_clap'"):
        ensure_features(other, ["val"], index)


def test_missing_or_foreign_weights_are_named(synthetic_bench, tmp_path):
    index = AnnotationIndex.load(synthetic_bench["meta_csv"], synthetic_bench["label_json"])
    absent = synthetic_config(synthetic_bench, tmp_path / "cache", "encoder.family=clip_clap", "encoder.size=base",
                              f"encoder.checkpoint={tmp_path / 'clip.bin'}",
                              f"encoder.audio_checkpoint={tmp_path / 'clap'}", "train.audio_draws=0")
    with pytest.raises(Exception, match=r"(?s)CLIP weights not found at .*clip.bin \(encoder.checkpoint\).*"
                                        r"CLAP weights not found in .*clap \(encoder.audio_checkpoint\)"):
        ensure_features(absent, ["val"], index)

    tiny_clip = clip_clap._load_clip(clip_clap.size(synthetic_config(synthetic_bench, tmp_path, *FAMILY))["clip"],
                                     "random")
    torch.save(tiny_clip.state_dict(), tmp_path / "clip.bin")  # a CLIP, but not ViT-B/32
    with pytest.raises(CheckpointError, match=r"clip.bin cannot be loaded as ViT-B-32-quickgelu"):
        clip_clap.build(absent, torch.device("cpu"))

    from transformers import ClapConfig, ClapModel

    spec = clip_clap.size(synthetic_config(synthetic_bench, tmp_path, *FAMILY))["clap"]
    fused = ClapConfig(text_config=spec["text_config"], audio_config={**spec["audio_config"], "enable_fusion": True},
                       projection_dim=spec["projection_dim"])
    ClapModel(fused).save_pretrained(tmp_path / "clap")
    clip_clap.byte_level_tokenizer().save_pretrained(tmp_path / "clap")
    tiny = synthetic_config(synthetic_bench, tmp_path / "cache", "encoder.family=clip_clap", "encoder.size=tiny",
                            "encoder.checkpoint=random", f"encoder.audio_checkpoint={tmp_path / 'clap'}",
                            "train.audio_draws=0")
    with pytest.raises(CheckpointError, match=r"holds the fused CLAP; this family uses the unfused model"):
        clip_clap.build(tiny, torch.device("cpu"))
    shutil.rmtree(tmp_path / "clap")
    (tmp_path / "clap").mkdir()
    (tmp_path / "clap" / "model.safetensors").write_bytes(b"not weights")
    with pytest.raises(CheckpointError, match=r"clap cannot be loaded as a CLAP model"):
        clip_clap.build(tiny, torch.device("cpu"))


def test_audio_draws_need_an_imagebind_audio_trunk(synthetic_bench, tmp_path):
    config = synthetic_config(synthetic_bench, tmp_path / "cache", *FAMILY[:-1], "train.audio_draws=2")
    with pytest.raises(Exception, match=r"train.audio_draws: 2 needs an audio encoder with stochastic depth; the "
                                        r"clip_clap family has none. Set train.audio_draws: 0"):
        extract(config, ["train"], audio_draws=2)
