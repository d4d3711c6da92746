"""LanguageBind's towers and preprocessing against the reference's numbers
(../shared/golden/languagebind_tiny_reference.pt: tiny random towers built by the reference
classes, their state dicts, inputs and outputs; the reference preprocessing; CLIP token ids)."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from models import languagebind


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


def test_a_long_clip_gives_a_crop_from_each_third():
    np.random.seed(0)
    waveform = torch.randn(2, 16000 * 12)  # 1198 frames, two channels
    mel = (languagebind.filterbank(waveform) - languagebind.AUDIO_MEAN) / (2 * languagebind.AUDIO_STD)
    out = languagebind.audio_transform(waveform, 16000)
    starts = [next(s for s in range(len(mel) - 1035) if torch.allclose(out[c].T, mel[s:s + 1036].float(), atol=1e-6))
              for c in range(3)]
    thirds = np.array_split(np.arange(len(mel) - 1035), 3)
    assert all(start in third for start, third in zip(starts, thirds))


def test_token_ids_are_the_references(golden):
    text = golden["text_inputs"]
    ids, mask = languagebind.tokenize(text["strings"])
    assert torch.equal(ids, text["input_ids"]) and torch.equal(mask, text["attention_mask"])
