import json

import pytest
import torch

from common.errors import UserError
from models.checkpoint import CheckpointError, load_pretrained_imagebind, read_state_dict
from models.imagebind import ImageBind, ImageBindSize, build_imagebind
from models.families.imagebind import ImageBindEncoder
from models.segment_encoder import SegmentEncoder


@pytest.fixture(scope="module")
def small_reference(shared):
    return torch.load(shared / "golden" / "imagebind_small_reference.pt", weights_only=True)


def _reference_size(reference) -> ImageBindSize:
    config = dict(reference["config"])
    assert config.pop("audio_drop_path") > 0  # training-time only: our encoders are frozen
    return ImageBindSize(**config)


def test_small_reference_outputs(small_reference):
    model = build_imagebind(_reference_size(small_reference))
    model.load_state_dict(small_reference["state_dict"], strict=True)
    inputs, outputs = small_reference["inputs"], small_reference["outputs"]
    with torch.inference_mode():
        ours = {"vision": model.encode_vision(inputs["vision"]), "audio": model.encode_audio(inputs["audio"]),
                "text": model.encode_text(inputs["text"])}
    for modality, expected in outputs.items():
        torch.testing.assert_close(ours[modality], expected, rtol=0, atol=1e-5)


def test_huge_state_dict_matches_official_manifest(shared):
    manifest = json.loads((shared / "golden" / "imagebind_huge_manifest.json").read_text())["entries"]
    with torch.device("meta"):
        model = ImageBind(ImageBindSize.named("huge"))
    assert {name: list(t.shape) for name, t in model.state_dict().items()} == manifest


def test_checkpoint_round_trip_keeps_other_modalities_out(tmp_path, small_reference):
    path = tmp_path / "imagebind.pth"
    state = dict(small_reference["state_dict"])
    state["modality_trunks.depth.blocks.0.norm_1.weight"] = torch.ones(3)  # other modalities are ignored
    torch.save(state, path)
    model = load_pretrained_imagebind(_reference_size(small_reference), path)
    with torch.inference_mode():
        out = model.encode_audio(small_reference["inputs"]["audio"])
    torch.testing.assert_close(out, small_reference["outputs"]["audio"], rtol=0, atol=1e-5)
    assert not any(p.requires_grad for p in model.parameters())


def test_checkpoint_errors(tmp_path, small_reference):
    size = _reference_size(small_reference)
    state = small_reference["state_dict"]
    cases = {
        "missing": ({k: v for k, v in state.items() if k != "modality_heads.audio.2.weight"},
                    r"missing key 'modality_heads.audio.2.weight'"),
        "shape": ({**state, "modality_preprocessors.text.pos_embed": torch.zeros(1, 77, 8)},
                  r"key 'modality_preprocessors.text.pos_embed' has shape \(1, 77, 8\) but the model expects \(1, 77, 32\)"),
        "extra": ({**state, "modality_trunks.vision.blocks.9.norm_1.weight": torch.ones(64)},
                  r"unexpected key 'modality_trunks.vision.blocks.9.norm_1.weight'"),
        "not_a_state_dict": ([1, 2, 3], r"is not a state dict"),
        "non_tensor_values": ({"a": 1}, r"is not a state dict"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / f"{name}.pth"
        torch.save(content, path)
        with pytest.raises(CheckpointError, match=message):
            load_pretrained_imagebind(size, path)


def test_missing_and_corrupt_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match=r"not found at .*absent.pth.*dl.fbaipublicfiles.com/imagebind"):
        read_state_dict(tmp_path / "absent.pth")
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"this is not a checkpoint" * 100)
    with pytest.raises(CheckpointError, match=r"corrupt.pth cannot be read as a PyTorch checkpoint"):
        read_state_dict(corrupt)


def test_unknown_size_lists_known_ones():
    with pytest.raises(UserError, match=r"unknown ImageBind size 'giant'; known sizes: huge, small, tiny"):
        ImageBindSize.named("giant")


def test_segment_encoder_keeps_segments_apart():
    torch.manual_seed(0)
    model = build_imagebind("tiny")
    encoder = ImageBindEncoder(model, torch.device("cpu"))
    frames = torch.randn(2, 10, 3, 224, 224)
    clips = torch.randn(2, 10, 1, 128, 204)
    vision, audio = encoder.vision(frames), encoder.audio(clips)
    assert vision.shape == audio.shape == (2, 10, 16)
    with torch.inference_mode():
        torch.testing.assert_close(vision[1, 3], model.encode_vision(frames[1, 3:4])[0], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(audio[0, 9], model.encode_audio(clips[0, 9:10])[0], rtol=1e-5, atol=1e-5)
    assert encoder.text(torch.randint(0, 49407, (5, 77))).shape == (5, 16)


def test_bf16_autocast_stays_close_to_fp32():
    torch.manual_seed(0)
    model = build_imagebind("tiny")
    clips = torch.randn(1, 10, 1, 128, 204)
    fp32 = SegmentEncoder(model, torch.device("cpu"), "fp32").audio(clips)
    bf16 = SegmentEncoder(model, torch.device("cpu"), "bf16").audio(clips)
    assert bf16.dtype == torch.float32
    assert torch.nn.functional.cosine_similarity(fp32, bf16, dim=-1).min() > 0.99
    with pytest.raises(UserError, match="unknown precision 'fp8'"):
        SegmentEncoder(model, torch.device("cpu"), "fp8")


@pytest.fixture(scope="module")
def train_mode_reference(shared):
    return torch.load(shared / "golden" / "imagebind_small_audio_train_mode.pt", weights_only=True)


def test_audio_stochastic_depth_equals_the_reference_in_train_mode(small_reference, train_mode_reference):
    golden = train_mode_reference
    rate = golden["config"]["audio_drop_path"]
    model = build_imagebind(_reference_size(small_reference), audio_drop_path=rate)
    model.load_state_dict(small_reference["state_dict"], strict=True)
    trunk = model.modality_trunks["audio"]
    assert [block.drop_path for block in trunk.blocks] == golden["drop_path_rates"]
    assert all(block.drop_path == 0 for name in ("vision", "text") for block in model.modality_trunks[name].blocks)
    clips = golden["inputs"]["audio"]
    with torch.no_grad():
        torch.testing.assert_close(model.encode_audio(clips), golden["eval_output"], rtol=1e-5, atol=1e-5)
        model.train()
        draws = {}
        for seed, expected in golden["train_outputs"].items():
            torch.manual_seed(seed)
            draws[seed] = model.encode_audio(clips)
            torch.testing.assert_close(draws[seed], expected, rtol=1e-5, atol=1e-5)
        assert not torch.allclose(draws[0], draws[1])  # the draws differ: stochastic depth is active
        model.eval()
        torch.testing.assert_close(model.encode_audio(clips), golden["eval_output"], rtol=1e-5, atol=1e-5)


def test_given_drop_masks_replace_the_draws(small_reference, train_mode_reference):
    model = build_imagebind(_reference_size(small_reference), audio_drop_path=0.1)
    model.load_state_dict(small_reference["state_dict"], strict=True)
    keep = model.modality_trunks["audio"].drop_keep_probabilities()
    assert keep == [1 - train_mode_reference["drop_path_rates"][1]] * 2  # block 0 has rate 0: no columns
    clips = train_mode_reference["inputs"]["audio"]
    shape = (len(clips), len(keep), model.audio_tokens)
    with torch.no_grad():
        model.eval()
        plain = model.encode_audio(clips)
        model.train()
        torch.manual_seed(0)
        first = torch.rand(1)
        torch.manual_seed(0)
        ones = model.encode_audio(clips, torch.ones(shape))
        assert torch.equal(torch.rand(1), first)  # given masks consume no random numbers
        dropped = model.encode_audio(clips, torch.zeros(shape))
        one_clip = torch.ones(shape)
        one_clip[2] = 0
        mixed = model.encode_audio(clips, one_clip)
    torch.testing.assert_close(ones, plain, rtol=1e-5, atol=1e-5)  # every branch kept, unscaled
    assert not torch.allclose(dropped, plain)
    torch.testing.assert_close(mixed[2], dropped[2], rtol=1e-5, atol=1e-5)  # masks are per clip
    torch.testing.assert_close(mixed[[0, 1, 3, 4, 5]], plain[[0, 1, 3, 4, 5]], rtol=1e-5, atol=1e-5)


def test_given_masks_equal_the_models_own_train_mode_draws(monkeypatch):
    """The masks path (cached audio draws) and the model's own stochastic depth are one
    computation: the masks the model draws itself, given back, give the same output."""
    from models import imagebind

    model = build_imagebind("small", audio_drop_path=0.5).train()
    clips = torch.randn(3, 1, 128, 204, generator=torch.Generator().manual_seed(0))
    drawn, original = [], imagebind.Block._drop

    def recording(self, branch, mask):
        out = original(self, branch, mask)
        if mask is None and self.drops:
            drawn.append(torch.where(branch != 0, out / branch, torch.zeros_like(out))[0, :, 0].clone())
        return out

    monkeypatch.setattr(imagebind.Block, "_drop", recording)
    with torch.no_grad():
        torch.manual_seed(7)
        own = model.encode_audio(clips)
        given = torch.stack(drawn)[None].expand(len(clips), -1, -1)  # [B, branches, tokens]
        torch.testing.assert_close(model.encode_audio(clips, given), own, rtol=1e-5, atol=1e-5)
    keep = torch.tensor(model.modality_trunks["audio"].drop_keep_probabilities())
    assert set(torch.unique(torch.round(given * keep[None, :, None], decimals=4)).tolist()) <= {0.0, 1.0}


def test_cached_draw_masks_are_bernoulli_keep_over_keep():
    from data.audio_draws import draw_masks

    keep = torch.tensor([0.9, 0.9, 0.6, 0.6])
    masks = torch.cat([draw_masks(k, f"video{v}", keep, 500) for k in range(4) for v in range(5)])
    torch.testing.assert_close(torch.unique(masks), torch.tensor([0.0, 1 / 0.9, 1 / 0.6]))  # kept: scaled by 1/keep
    dropped = (masks == 0).float().mean(dim=(0, 2))
    torch.testing.assert_close(dropped, 1 - keep, atol=0.02, rtol=0)  # each branch dropped at its rate
    torch.testing.assert_close(masks.mean(dim=(0, 2)), torch.ones(4), atol=0.03, rtol=0)  # unbiased: E = 1
    assert torch.equal(masks[0], masks[9])  # one video's ten segments share the draw
