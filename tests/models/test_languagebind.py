"""LanguageBind's towers and preprocessing against the reference's numbers
(../shared/golden/languagebind_tiny_reference.pt: tiny random towers built by the reference
classes, their state dicts, inputs and outputs; the reference preprocessing; CLIP token ids)."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torchaudio
from PIL import Image

import eval_zero_shot
import train
import train_cuerator
from common import config as config_io
from common.errors import UserError
from common.schema import Config
from conftest import REPO, synthetic_overrides
from models import families, languagebind


@pytest.fixture(scope="module")
def golden(shared):
    return torch.load(shared / "golden" / "languagebind_tiny_reference.pt", weights_only=True)


def towers(golden) -> dict:
    configs = {name: json.loads(golden["config"][f"{name}_model_config_json"]) for name in ("audio", "image")}
    text_state = dict(golden["state_dict_text"])
    table = golden["text_token_embedding"]
    embedding = torch.zeros(table["num_embeddings"], table["embedding_dim"])
    embedding[table["indices"]] = table["rows"]
    text_state[table["key"]] = embedding
    built = {"audio": languagebind.vision_tower(configs["audio"]["vision_config"]),
             "image": languagebind.vision_tower(configs["image"]["vision_config"]),
             "text": languagebind.text_tower(configs["audio"]["text_config"])}
    states = {"audio": golden["state_dict_audio"], "image": golden["state_dict_image"], "text": text_state}
    for name, tower in built.items():
        state = {key: value for key, value in states[name].items() if key != "logit_scale"}
        tower.load_state_dict(state, strict=True)  # the reference's key names, one to one
    return built


def test_the_towers_give_the_reference_embeddings(golden):
    built = towers(golden)
    inputs = golden["inputs"]
    audio = torch.stack([golden["audio_preprocessing"][name]["output_ch0"].expand(3, -1, -1)
                         for name in inputs["audio_names"]])
    images = torch.stack([golden["image_preprocessing"][name]["output"] for name in inputs["image_names"]])
    text = golden["text_inputs"]
    tokens = {"input_ids": text["input_ids"], "attention_mask": text["attention_mask"]}
    with torch.no_grad():
        outputs = {"audio": built["audio"](pixel_values=audio), "image": built["image"](pixel_values=images),
                   "text": built["text"](**tokens)}
        pooled = {"audio": built["audio"].vision_model(pixel_values=audio).pooler_output,
                  "image": built["image"].vision_model(pixel_values=images).pooler_output,
                  "text": built["text"].text_model(**tokens).pooler_output}  # the EOS state
    for name, out in outputs.items():
        embeds = out.text_embeds if name == "text" else out.image_embeds
        reference = golden["outputs"][name]
        torch.testing.assert_close(pooled[name], reference["pooled"], rtol=0, atol=5e-5)
        torch.testing.assert_close(embeds, reference["embeds"], rtol=0, atol=5e-5)
        torch.testing.assert_close(torch.nn.functional.normalize(embeds, dim=-1), reference["embeds_normalized"],
                                   rtol=0, atol=5e-5)
    assert built["audio"].vision_model.embeddings.position_ids.shape == (1, 593)  # 8 x 74 patches + CLS


@pytest.mark.parametrize("name", ["rgb_228x256", "grey_250x170"])
def test_the_image_transform_is_the_references(golden, name):
    case = golden["image_preprocessing"][name]
    picture = Image.fromarray(case["pixels_uint8"].numpy())  # the greyscale one raises in the reference
    torch.testing.assert_close(languagebind.image_transform(picture), case["output"], rtol=0, atol=1e-4)


@pytest.mark.parametrize("name", ["mono16k_1s0", "mono16k_2s5", "mono16k_10s0"])
def test_the_audio_transform_is_the_references(golden, name):
    case = golden["audio_preprocessing"][name]
    waveform = case["pcm_int16"].float() / 32768
    kept = waveform.clone()
    out = languagebind.audio_transform(waveform, case["sample_rate"])
    assert out.shape == (3, 112, 1036) and torch.equal(out[0], out[2])  # tiled: three equal channels
    torch.testing.assert_close(out[0], case["output_ch0"], rtol=0, atol=1e-4)
    assert torch.equal(waveform, kept)  # the caller's waveform is left as it was (the reference's is not)


def reference_filterbank(waveform: np.ndarray) -> np.ndarray:
    """Written out here, not taken from the toolkit: float64, the mean over every channel removed,
    channel 0 only, Kaldi's filterbank with LanguageBind's settings, normalised by the released
    checkpoint's mean and twice its std."""
    centred = waveform.astype(np.float64) - waveform.astype(np.float64).mean()
    fbank = torchaudio.compliance.kaldi.fbank(torch.from_numpy(centred[:1]), htk_compat=True, sample_frequency=16000,
                                              use_energy=False, window_type="hanning", num_mel_bins=112, dither=0.0,
                                              frame_length=25, frame_shift=10).numpy()
    return (fbank - (-4.2677393)) / (2 * 4.5689974)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_long_clip_gives_a_crop_from_each_third_drawn_from_numpys_generator(seed):
    rng = np.random.default_rng(seed)
    waveform = rng.standard_normal((2, 16000 * 12)).astype(np.float32)  # 1198 frames, two channels
    waveform[1] += 3.0  # the other channel far from zero: its offset counts in the mean, never in the picture
    mel = reference_filterbank(waveform)
    np.random.seed(seed)
    thirds = np.array_split(np.arange(len(mel) - 1035), 3)
    starts = [int(third[np.random.randint(0, len(third))]) for third in thirds]  # what np.random.choice draws
    np.random.seed(seed)
    out = languagebind.audio_transform(torch.from_numpy(waveform), 16000)
    assert out.shape == (3, 112, 1036) and out.dtype == torch.float32
    for channel, start in enumerate(starts):
        np.testing.assert_allclose(out[channel].numpy(), mel[start:start + 1036].T, rtol=0, atol=2e-5)


def test_a_short_clip_is_tiled_from_channel_0_and_another_rate_resampled():
    rng = np.random.default_rng(3)
    waveform = rng.standard_normal((2, 16000 * 3)).astype(np.float32)  # 298 frames: tiled 4 times
    mel = reference_filterbank(waveform)
    tiled = np.concatenate([mel] * 4)[:1036]
    out = languagebind.audio_transform(torch.from_numpy(waveform), 16000)
    for channel in range(3):
        np.testing.assert_allclose(out[channel].numpy(), tiled.T, rtol=0, atol=2e-5)
    other = waveform.copy()
    other[1] = rng.standard_normal(other.shape[1])  # channel 1 plays no part
    torch.testing.assert_close(languagebind.audio_transform(torch.from_numpy(other), 16000), out, rtol=0, atol=1e-4)
    at_32k = torch.from_numpy(rng.standard_normal((1, 32000 * 2)).astype(np.float32))
    back = torchaudio.functional.resample(at_32k.double(), 32000, 16000).numpy()  # torchaudio's default, as documented
    expected = np.concatenate([reference_filterbank(back)] * 6)[:1036]
    np.testing.assert_allclose(languagebind.audio_transform(at_32k, 32000)[0].numpy(), expected.T, rtol=0, atol=1e-3)


def test_token_ids_are_the_references(golden):
    text = golden["text_inputs"]
    ids, mask = languagebind.tokenize(text["strings"])
    assert torch.equal(ids, text["input_ids"]) and torch.equal(mask, text["attention_mask"])


FAMILY = ["encoder.family=languagebind", "encoder.audio_checkpoint=random", "train.audio_draws=0"]


def released_folders(golden, root: Path, weights: str = "model.safetensors") -> dict:
    """The tiny reference towers as the released folders hold them: LanguageBind's composite
    config.json and one weights file with every tower's keys (text tower included)."""
    from safetensors.torch import save_file

    text = dict(golden["state_dict_text"])
    table = golden["text_token_embedding"]
    text[table["key"]] = torch.zeros(table["num_embeddings"], table["embedding_dim"]).index_copy(
        0, table["indices"], table["rows"])
    folders = {}
    for modality, folder in (("image", "LanguageBind_Image"), ("audio", "LanguageBind_Audio_FT")):
        path = root / folder
        path.mkdir(parents=True)
        (path / "config.json").write_text(golden["config"][f"{modality}_model_config_json"])
        state = {**golden[f"state_dict_{modality}"], **text}
        if weights == "model.safetensors":
            save_file({key: value.contiguous() for key, value in state.items()}, path / weights)
        else:
            torch.save(state, path / weights)
        folders[modality] = path
    return folders


@pytest.mark.parametrize("weights", ["model.safetensors", "pytorch_model.bin"])
def test_released_folders_load_and_encode_as_the_reference(golden, tmp_path, weights):
    folders = released_folders(golden, tmp_path, weights)
    config = config_io.load(Config, REPO / "configs" / "languagebind_training_free.yaml",
                            [f"encoder.checkpoint={folders['image']}", f"encoder.audio_checkpoint={folders['audio']}",
                             "device=cpu"])
    family = families.family("languagebind")
    assert family.widths(config) == {"audio": 16, "vision": 16} and not family.missing_weights(config)
    encoder = family.build(config, torch.device("cpu"))
    inputs = golden["inputs"]
    audio = torch.stack([golden["audio_preprocessing"][name]["output_ch0"].expand(3, -1, -1)
                         for name in inputs["audio_names"]])
    images = torch.stack([golden["image_preprocessing"][name]["output"] for name in inputs["image_names"]])
    with torch.no_grad():
        torch.testing.assert_close(encoder.model.encode_audio(audio), golden["outputs"]["audio"]["embeds"], rtol=0,
                                   atol=5e-5)
        torch.testing.assert_close(encoder.model.encode_vision(images), golden["outputs"]["image"]["embeds"], rtol=0,
                                   atol=5e-5)
    text = golden["text_inputs"]["strings"]
    torch.testing.assert_close(encoder.class_names(text, "{}", "audio"), golden["outputs"]["text"]["embeds"], rtol=0,
                               atol=5e-5)  # the image folder's text tower, for both modalities
    provenance = family.models(config)
    assert set(provenance) == {"image", "audio"} and provenance["audio"]["file_name"] == weights


def _bad_folder(golden, tmp_path, fault: str) -> tuple[str, str]:
    folders = released_folders(golden, tmp_path)
    audio = folders["audio"]
    if fault == "missing":
        return f"encoder.audio_checkpoint={tmp_path / 'nowhere'}", "no such folder; it is the LanguageBind_Audio_FT"
    if fault == "no weights":
        (audio / "model.safetensors").unlink()
        return f"encoder.audio_checkpoint={audio}", "has no model.safetensors or pytorch_model.bin"
    config = json.loads((audio / "config.json").read_text())
    if fault == "other model type":
        config["model_type"] = "LanguageBindVideo"
        message = "is a 'LanguageBindVideo' config; encoder.audio_checkpoint needs the LanguageBind_Audio_FT folder"
    elif fault == "lora":
        config["vision_config"]["lora_r"] = 16
        message = "is a LoRA checkpoint (lora_r = 16, LanguageBind_Audio)"
    else:
        config["vision_config"]["hidden_size"] = 48
        message = "its weights are not the architecture its config.json describes (size mismatch"
    (audio / "config.json").write_text(json.dumps(config))
    return f"encoder.audio_checkpoint={audio}", message


@pytest.mark.parametrize("fault", ["missing", "no weights", "other model type", "lora", "other architecture"])
def test_bad_folders_are_one_line_naming_the_folder(golden, tmp_path, fault):
    override, message = _bad_folder(golden, tmp_path, fault)
    config = config_io.load(Config, REPO / "configs" / "languagebind_training_free.yaml",
                            [f"encoder.checkpoint={tmp_path / 'LanguageBind_Image'}", override, "device=cpu"])
    with pytest.raises(UserError, match=re.escape(message)) as error:
        families.family("languagebind").build(config, torch.device("cpu"))
    assert "\n" not in str(error.value) and str(Path(override.split("=", 1)[1])) in str(error.value)


def test_each_second_of_audio_is_one_transformed_segment(tmp_path):
    import soundfile

    rng = np.random.default_rng(0)
    samples = (0.1 * rng.standard_normal((44100 * 10, 2))).astype(np.float32)
    soundfile.write(tmp_path / "clip.wav", samples, 44100)
    from data.preprocess import read_waveform
    from models.families import languagebind as family

    segments = family.decode_audio(tmp_path / "clip.wav")
    assert segments.shape == (10, 3, 112, 1036)
    waveform, rate = read_waveform(tmp_path / "clip.wav")  # both channels, at the file's own rate
    torch.testing.assert_close(segments[2], languagebind.audio_transform(waveform[:, 2 * rate:3 * rate], rate),
                               rtol=0, atol=0)


def test_both_baselines_and_cuerator_run_on_languagebind(synthetic_bench, tmp_path, capsys):
    runs = tmp_path / "runs"
    base = synthetic_overrides(synthetic_bench, tmp_path / "cache", f"output.root={runs}", *FAMILY)
    eval_zero_shot.main(base)
    results = json.loads((runs / "v0_training_free_v01_test" / "results.json").read_text())
    provenance = results["cache"]["provenance"]
    assert results["encoder"] == "LanguageBind (tiny, fp32)" and provenance["encoder"]["family"] == "languagebind"
    assert set(provenance["models"]) == {"image", "audio"} and provenance["preprocessing"]["audio"]["frames"] == 1036
    train.main(base + ["train.epochs=1", "temporal.attn_dim=8", "temporal.ffn_dim=16", "train.tensorboard=false"])
    assert len(json.loads((runs / "v1_fine_tuning" / "results.json").read_text())["history"]) == 1
    with pytest.raises(UserError, match="the languagebind family has none. Set train.audio_draws: 0"):
        train.main([*base[:-1], "train.audio_draws=2", "output.name=draws"])
    train_cuerator.main([*base, "--fit-rule", "cuerator.oracle_candidates=16", "cuerator.tensorboard=false"])
    rule = json.loads((runs / "cuerator_policy" / "rule.json").read_text())
    assert rule["encoder"]["family"] == "languagebind"
    assert "| LanguageBind (tiny, fp32)" in capsys.readouterr().out


def test_the_localizer_runs_on_languagebind(tmp_path):
    from pipeline.localize import Localizer
    from stand_in import SCRIPT, write_scene

    write_scene(tmp_path / "clip.mp4", SCRIPT[:12])  # 12 s: a 10 s window and a 2 s one
    config = config_io.load(Config, REPO / "configs" / "localize.yaml", [*FAMILY, "encoder.size=tiny",
                            "encoder.checkpoint=random", f"cache.dir={tmp_path / 'cache'}", "extract.num_workers=0",
                            "device=cpu"])
    [result] = Localizer(config).localize([tmp_path / "clip.mp4"], ["dog barking", "car horn"])
    assert result.status == "ok" and len(result.labels) == 12 and result.audio_probability.shape == (12, 3)
