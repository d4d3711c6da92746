"""LanguageBind's towers (Zhu et al., ICLR 2024) on transformers' own CLIP classes: the image and
audio towers are ``CLIPVisionModelWithProjection`` (the audio one reads filterbank "images" of
112 mel bins x 1036 frames through its own non-square patch grid), the text tower
``CLIPTextModelWithProjection`` (EOS pooling). State-dict keys are the released checkpoints' own,
one to one, and every size is read from a checkpoint's ``config.json`` (LanguageBind's composite
format: ``vision_config`` and ``text_config``), so no reference code is needed to run them.

Preprocessing as the reference's: ``image_transform`` (to tensor, bicubic antialiased resize of
the short side to 224, centre crop, CLIP mean / std; greyscale converted to RGB first, where the
reference raises), ``audio_transform`` (16 kHz, the waveform's mean over all channels removed,
Kaldi filterbank of channel 0, tiled to 1036 frames or three crops, one from each third, normalised
by the checkpoint's mean and twice its std) and ``tokenize`` (CLIP's BPE from open_clip, padded with
the EOS id, 77 tokens).

Not yet a backbone family (``encoder.family``): the towers and their parity come first.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torchaudio
import torchvision.transforms.functional as TF
from PIL import Image
from torch import nn
from transformers import CLIPTextConfig, CLIPTextModelWithProjection, CLIPVisionConfig, CLIPVisionModelWithProjection

SAMPLE_RATE = 16000
MEL_BINS, FRAMES = 112, 1036
AUDIO_MEAN, AUDIO_STD = -4.2677393, 4.5689974  # the released audio checkpoint's
IMAGE_SIZE = 224
CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
CONTEXT, EOS = 77, 49407

VISION_KEYS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "patch_size",
               "hidden_act", "projection_dim", "num_channels", "layer_norm_eps", "attention_dropout")
TEXT_KEYS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
             "max_position_embeddings", "hidden_act", "projection_dim", "layer_norm_eps", "attention_dropout",
             "bos_token_id", "eos_token_id", "pad_token_id")


class GridPatchEmbedding(nn.Module):
    """CLIP's patch embedding for a ``height x width`` input that need not be square: a class
    token, non-overlapping patches, one learned position per token (no interpolation). Its
    parameters and buffer carry the stock embedding's names."""

    def __init__(self, config: CLIPVisionConfig, height: int, width: int):
        super().__init__()
        patch = config.patch_size
        self.grid = (height // patch, width // patch)
        positions = 1 + self.grid[0] * self.grid[1]
        self.class_embedding = nn.Parameter(torch.zeros(config.hidden_size))
        self.patch_embedding = nn.Conv2d(config.num_channels, config.hidden_size, patch, stride=patch, bias=False)
        self.position_embedding = nn.Embedding(positions, config.hidden_size)
        self.register_buffer("position_ids", torch.arange(positions)[None], persistent=True)

    def forward(self, pixel_values: torch.Tensor, interpolate_pos_encoding: bool = False) -> torch.Tensor:
        patches = self.patch_embedding(pixel_values.to(self.patch_embedding.weight.dtype)).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.class_embedding.expand(len(patches), 1, -1), patches], dim=1)
        return tokens + self.position_embedding(self.position_ids)


def vision_tower(vision_config: dict) -> CLIPVisionModelWithProjection:
    """An image tower (square ``image_size``) or the audio tower (``image_size`` [mel bins,
    frames]) from a checkpoint's ``vision_config``."""
    size = vision_config["image_size"]
    height, width = (size, size) if isinstance(size, int) else size
    config = CLIPVisionConfig(image_size=max(height, width) if height == width else 224,
                              **{key: vision_config[key] for key in VISION_KEYS if key in vision_config})
    tower = CLIPVisionModelWithProjection(config)
    if height != width:
        tower.vision_model.embeddings = GridPatchEmbedding(config, height, width)
    return tower.eval()


def text_tower(text_config: dict) -> CLIPTextModelWithProjection:
    config = CLIPTextConfig(**{key: text_config[key] for key in TEXT_KEYS if key in text_config})
    return CLIPTextModelWithProjection(config).eval()


def image_transform(image: Image.Image) -> torch.Tensor:
    """``[3, 224, 224]`` for a PIL picture of any size and mode."""
    pixels = TF.to_tensor(image.convert("RGB"))
    pixels = TF.resize(pixels, IMAGE_SIZE, interpolation=TF.InterpolationMode.BICUBIC, antialias=True)
    return TF.normalize(TF.center_crop(pixels, IMAGE_SIZE), CLIP_MEAN, CLIP_STD)


def filterbank(waveform: torch.Tensor) -> torch.Tensor:
    """``[frames, 112]`` Kaldi filterbank (Hanning, 25 ms / 10 ms, no dither) of channel 0 of a
    16 kHz waveform whose mean over all channels is removed, computed in float64 (the reference's
    float32 arithmetic differs from ours by up to 1.5e-4 in the lowest bins; in float64 the
    difference is below 1e-4)."""
    waveform = waveform.to(torch.float64)
    waveform = waveform - waveform.mean()
    return torchaudio.compliance.kaldi.fbank(waveform[:1], htk_compat=True, sample_frequency=SAMPLE_RATE,
                                             use_energy=False, window_type="hanning", num_mel_bins=MEL_BINS,
                                             dither=0.0, frame_length=25, frame_shift=10)


def audio_transform(waveform: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """``[3, 112, 1036]`` for a waveform ``[channels, samples]`` at any rate: a clip shorter than
    1036 frames is tiled (three equal channels), a longer one gives three crops, one starting in
    each third of the possible starts, drawn from numpy's global generator as the reference does."""
    waveform = torch.as_tensor(waveform, dtype=torch.float32)
    if sample_rate != SAMPLE_RATE:
        waveform = torchaudio.functional.resample(waveform, sample_rate, SAMPLE_RATE)
    mel = filterbank(waveform)
    if len(mel) <= FRAMES:
        tiled = mel.repeat(math.ceil(FRAMES / len(mel)), 1)[:FRAMES]
        channels = torch.stack([tiled] * 3)
    else:
        thirds = np.array_split(np.arange(len(mel) - FRAMES + 1), 3)
        starts = [int(np.random.choice(third)) if len(third) else 0 for third in thirds]
        channels = torch.stack([mel[start:start + FRAMES] for start in starts])
    return ((channels - AUDIO_MEAN) / (2 * AUDIO_STD)).transpose(1, 2).to(torch.float32)


def tokenize(texts) -> tuple[torch.Tensor, torch.Tensor]:
    """``(input_ids, attention_mask)`` ``[N, 77]``: CLIP's BPE (open_clip's copy, no download),
    truncated with EOS last, padded with the EOS id; the mask covers the tokens up to the EOS."""
    import open_clip

    ids = open_clip.get_tokenizer("ViT-L-14")(list(texts))
    mask = torch.arange(CONTEXT)[None] <= (ids == EOS).int().argmax(dim=1)[:, None]
    return torch.where(mask, ids, torch.full_like(ids, EOS)), mask.long()
