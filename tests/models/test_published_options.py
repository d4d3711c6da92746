"""The published fine-tuning module's options (distance prior, local window, power norm, cross
stacks of their own depth, feature-mean fusion) against numbers it computed
(tests/fixtures/published_temporal_options.npz, written by tools/make_published_temporal_fixture.py):
forward outputs, the training loss and one Adam step, within 1e-5 in float32."""

import ast
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from common.schema import TemporalSettings
from models.similarity import cosine
from models.temporal import TemporalModel, local_window_mask, training_scores

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "published_temporal_options.npz"
STACKS = {"audio_layers": "a_sa_blocks", "visual_layers": "v_sa_blocks", "audio_cross_layers": "a_xa_blocks",
          "visual_cross_layers": "v_xa_blocks"}
BASE = TemporalSettings(attn_dim=16, ffn_dim=24, dropout=0.0)
SETTINGS = {
    "distance_prior": dataclasses.replace(BASE, num_heads=2, distance_prior=True),
    "local_window_3": dataclasses.replace(BASE, local_window=3),
    "local_window_4": dataclasses.replace(BASE, num_heads=2, local_window=4),
    "power_norm": dataclasses.replace(BASE, power_norm=True),
    "all_three": dataclasses.replace(BASE, num_layers=2, distance_prior=True, local_window=5, power_norm=True),
    "cross_layers": dataclasses.replace(BASE, attention="both", cross_layers=2),
    "feature_mean": dataclasses.replace(BASE, fusion="feature_mean"),
}


@pytest.fixture(scope="module")
def fixture():
    with np.load(FIXTURE) as data:
        return {key: data[key] for key in data.files}


def published_weights(model: TemporalModel, state: dict) -> dict:
    """Our state dict from the published module's (its key names)."""
    ours = {}
    for stack, prefix in STACKS.items():
        for i, _ in enumerate(getattr(model, stack, [])):
            theirs = lambda name: torch.from_numpy(state[f"{prefix}.{i}.{name}"])  # noqa: E731
            at = f"{stack}.{i}"
            for mine, name in (("attention.query", "self_attn.q"), ("attention.out", "self_attn.o"),
                               ("attention.norm", "norm1"), ("feed_forward.net.0", "ffn.w_1"),
                               ("feed_forward.net.3", "ffn.w_2"), ("feed_forward.norm", "norm2")):
                for part in ("weight", "bias"):
                    ours[f"{at}.{mine}.{part}"] = theirs(f"{name}.{part}")
            for part in ("weight", "bias"):
                ours[f"{at}.attention.key_value.{part}"] = torch.cat([theirs(f"self_attn.k.{part}"),
                                                                      theirs(f"self_attn.v.{part}")])
            optional = {"attention.distance_gamma": "loc_adj.w", "attention.distance_bias": "loc_adj.b",
                        "attention.local_alpha": "self_attn.alpha"}
            ours.update({f"{at}.{mine}": theirs(name) for mine, name in optional.items()
                         if f"{at}.{mine}" in model.state_dict()})
    return ours


@pytest.mark.parametrize("case", list(SETTINGS))
def test_each_published_option_gives_the_published_numbers(fixture, case):
    data = {key.split("/", 1)[1]: value for key, value in fixture.items() if key.startswith(f"{case}/")}
    state = {key.split("/", 1)[1]: value for key, value in data.items() if key.startswith("state/")}
    settings = SETTINGS[case]
    model = TemporalModel(data["audio"].shape[-1], settings).train()
    model.load_state_dict(published_weights(model, state), strict=True)  # every parameter has its published twin
    audio, vision, text = (torch.from_numpy(data[k]) for k in ("audio", "vision", "text"))
    out_a, out_v = model(audio, vision)
    if settings.fusion == "feature_mean":  # ours returns the mean twice; theirs the two embeddings
        expected = (data["out_audio"] + data["out_vision"]) * 0.5
        np.testing.assert_allclose(out_a.detach().numpy(), expected, rtol=0, atol=1e-5)
    else:
        np.testing.assert_allclose(out_a.detach().numpy(), data["out_audio"], rtol=0, atol=1e-5)
        np.testing.assert_allclose(out_v.detach().numpy(), data["out_vision"], rtol=0, atol=1e-5)
    scores = training_scores(cosine(out_a, text), cosine(out_v, text), settings)
    loss = F.cross_entropy(scores.flatten(0, 1), torch.from_numpy(data["labels"]).flatten())
    assert abs(loss.item() - float(data["loss"])) < 1e-5
    optimizer = torch.optim.Adam(model.parameters(), lr=float(fixture["meta/lr"]))
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        after_a, after_v = model(audio, vision)
    if settings.fusion != "feature_mean":
        np.testing.assert_allclose(after_a.numpy(), data["after_audio"], rtol=0, atol=1e-5)
        np.testing.assert_allclose(after_v.numpy(), data["after_vision"], rtol=0, atol=1e-5)
    else:
        np.testing.assert_allclose(after_a.numpy(), (data["after_audio"] + data["after_vision"]) * 0.5, rtol=0,
                                   atol=1e-5)
    options = ast.literal_eval(str(data["options"]))
    if options.get("xa_layer_num"):
        assert len(model.audio_cross_layers) == options["xa_layer_num"] != len(model.audio_layers)


def test_options_add_parameters_only_when_on():
    plain = TemporalModel(32, BASE).state_dict()
    assert not any(key.endswith(("distance_gamma", "distance_bias", "local_alpha")) for key in plain)
    full = TemporalModel(32, SETTINGS["all_three"]).state_dict()
    assert full["audio_layers.0.attention.distance_gamma"].item() == pytest.approx(0.6)
    assert full["audio_layers.1.attention.distance_bias"].item() == pytest.approx(0.2)
    assert full["visual_layers.0.attention.local_alpha"].item() == 0.0


def test_the_local_window_is_the_published_mask_clamped_at_the_edges():
    mask = local_window_mask(4, 6).int().tolist()
    assert mask[0] == [1, 1, 0, 0, 0, 0]  # positions -2, -1, 0, 1: the first three clamp to 0
    assert mask[3] == [0, 1, 1, 1, 1, 0]
    assert mask[5] == [0, 0, 0, 1, 1, 1]
