"""ImageBind's vision, audio and text encoders, written for inference and for loading the
official ``imagebind_huge.pth`` without any key mapping.

Module and parameter names follow the official state dict
(``modality_preprocessors.*``, ``modality_trunks.*``, ``modality_heads.*``,
``modality_postprocessors.*``). Sizes are data: ``models/imagebind_sizes/<name>.json``.
The encoders are frozen in every OV-AVEL baseline. The one training-time behaviour that still
matters is the audio trunk's stochastic depth (``audio_drop_path``): the published fine-tuning
runs the frozen model in train mode, so its audio features are a fresh random draw every
epoch. It is active only in train mode and only in the audio trunk, as in the official model.
Attention runs through ``F.scaled_dot_product_attention`` (``models/attention.py``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from common.errors import UserError
from models.attention import multi_head_attention

SIZES_DIR = Path(__file__).resolve().parent / "imagebind_sizes"
MODALITIES = ("vision", "audio", "text")

IMAGE_SIZE = 224
PATCH_SIZE = 14
VIDEO_FRAMES = 2  # the vision stem is a 3D conv over an image repeated twice in time
AUDIO_MEL_BINS = 128
AUDIO_FRAMES = 204
AUDIO_KERNEL = 16
AUDIO_STRIDE = 10
CONTEXT_LENGTH = 77
VOCAB_SIZE = 49408
MLP_RATIO = 4
TEXT_LOGIT_SCALE = 1 / 0.07
AUDIO_LOGIT_SCALE = 20.0
MAX_LOGIT_SCALE = 100.0


@dataclass(frozen=True)
class ImageBindSize:
    vision_embed_dim: int
    vision_num_blocks: int
    vision_num_heads: int
    audio_embed_dim: int
    audio_num_blocks: int
    audio_num_heads: int
    text_embed_dim: int
    text_num_blocks: int
    text_num_heads: int
    out_embed_dim: int

    @classmethod
    def named(cls, name: str) -> "ImageBindSize":
        path = SIZES_DIR / f"{name}.json"
        if not path.is_file():
            known = sorted(p.stem for p in SIZES_DIR.glob("*.json"))
            raise UserError(f"unknown ImageBind size {name!r}; known sizes: {', '.join(known)} "
                            f"(add a JSON file to {SIZES_DIR.name}/ for a new one)")
        values = json.loads(path.read_text())
        expected = {f.name for f in fields(cls)}
        if set(values) != expected:
            raise UserError(f"{path}: keys must be exactly {', '.join(sorted(expected))}")
        return cls(**values)


class Attention(nn.Module):
    """Multi-head self-attention with ``nn.MultiheadAttention``'s parameter layout."""

    def __init__(self, dim: int, num_heads: int, bias_kv: bool):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embedding width {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        # A learned key/value appended to every sequence (the audio trunk has them).
        self.bias_k = nn.Parameter(torch.empty(1, 1, dim)) if bias_kv else None
        self.bias_v = nn.Parameter(torch.empty(1, 1, dim)) if bias_kv else None
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)
        if bias_kv:
            nn.init.xavier_normal_(self.bias_k)
            nn.init.xavier_normal_(self.bias_v)

    def forward(self, x: torch.Tensor, causal: bool) -> torch.Tensor:
        batch, length, dim = x.shape
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        if self.bias_k is not None:
            k = torch.cat([k, self.bias_k.expand(batch, 1, dim)], dim=1)
            v = torch.cat([v, self.bias_v.expand(batch, 1, dim)], dim=1)
        return self.out_proj(multi_head_attention(q, k, v, self.num_heads, causal))


class Mlp(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, MLP_RATIO * dim)
        self.fc2 = nn.Linear(MLP_RATIO * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block, with stochastic depth (``drop_path``) in train mode."""

    def __init__(self, dim: int, num_heads: int, bias_kv: bool, drop_path: float = 0.0):
        super().__init__()
        self.attn = Attention(dim, num_heads, bias_kv)
        self.norm_1 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim)
        self.norm_2 = nn.LayerNorm(dim, eps=1e-6)
        self.drop_path = drop_path

    @property
    def drops(self) -> bool:
        return self.training and self.drop_path > 0

    def _drop(self, branch: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Stochastic depth of a ``[B, L, D]`` branch. The official trunk runs sequence-first
        (``[L, B, D]``), so timm's per-"sample" ``DropPath`` draws one Bernoulli(keep) per
        *token*, shared by the whole batch, from the global generator, divided by keep (pinned
        by the golden train-mode outputs). ``mask`` (``[B, L]`` multipliers) replaces the draw."""
        if not self.drops:
            return branch
        if mask is None:
            keep = 1 - self.drop_path
            mask = branch.new_empty((branch.shape[1], 1)).bernoulli_(keep).div_(keep)
            return branch * mask
        return branch * mask[..., None]

    def forward(self, x: torch.Tensor, causal: bool, masks: torch.Tensor | None = None) -> torch.Tensor:
        """``masks``: ``[B, 2, L]`` token multipliers of the attention and MLP branches (drawn when None)."""
        x = x + self._drop(self.attn(self.norm_1(x), causal), None if masks is None else masks[:, 0])
        return x + self._drop(self.mlp(self.norm_2(x)), None if masks is None else masks[:, 1])


def drop_path_rates(rate: float, num_blocks: int) -> list[float]:
    """The official progressive rates: linspace(0, rate, blocks) in float32, as Python floats."""
    return [r.item() for r in torch.linspace(0, rate, num_blocks, device="cpu")]


class Trunk(nn.Module):
    def __init__(self, dim: int, num_blocks: int, num_heads: int, pre_norm: bool, bias_kv: bool, causal: bool,
                 drop_path: float = 0.0):
        super().__init__()
        self.pre_transformer_layer = nn.Sequential(nn.LayerNorm(dim, eps=1e-6)) if pre_norm else None
        self.blocks = nn.ModuleList(Block(dim, num_heads, bias_kv, rate)
                                    for rate in drop_path_rates(drop_path, num_blocks))
        self.causal = causal

    def drop_keep_probabilities(self) -> list[float]:
        """Keep probability of each mask column :meth:`forward` takes: attention then MLP of
        every block with a drop rate above 0, blocks in order."""
        return [1 - block.drop_path for block in self.blocks if block.drop_path > 0 for _ in range(2)]

    def forward(self, x: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
        """``masks``: ``[B, len(drop_keep_probabilities()), L]`` token multipliers for train mode
        (None: drawn from the global generator, as the official model)."""
        if self.pre_transformer_layer is not None:
            x = self.pre_transformer_layer(x)
        column = 0
        for block in self.blocks:
            block_masks = None
            if masks is not None and block.drop_path > 0:
                block_masks, column = masks[:, column:column + 2], column + 2
            x = block(x, self.causal, block_masks)
        return x


class PositionalEmbedding(nn.Module):
    def __init__(self, num_tokens: int, dim: int):
        super().__init__()
        self.pos_embed = nn.Parameter(torch.randn(1, num_tokens, dim) * dim ** -0.5)


class ImagePatchStem(nn.Module):
    """Patchify an image. The official stem is a Conv3d over the image repeated in time;
    summing its kernel over time gives the same result with one Conv2d."""

    def __init__(self, dim: int):
        super().__init__()
        kernel = (VIDEO_FRAMES, PATCH_SIZE, PATCH_SIZE)
        # proj.0 was the weightless image-to-clip step; an Identity keeps proj.1's name.
        self.proj = nn.Sequential(nn.Identity(), nn.Conv3d(3, dim, kernel, stride=kernel, bias=False))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        weight = self.proj[1].weight.sum(dim=2)
        return F.conv2d(images, weight, stride=PATCH_SIZE).flatten(2).transpose(1, 2)


class AudioPatchStem(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(1, dim, AUDIO_KERNEL, stride=AUDIO_STRIDE, bias=False)
        self.norm_layer = nn.LayerNorm(dim)

    def forward(self, spectrograms: torch.Tensor) -> torch.Tensor:
        return self.norm_layer(self.proj(spectrograms).flatten(2).transpose(1, 2))


class PatchTokenizer(nn.Module):
    """Patches plus a class token plus learned positions."""

    def __init__(self, stem: nn.Module, num_patches: int, dim: int):
        super().__init__()
        self.rgbt_stem = stem
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * dim ** -0.5)
        self.pos_embedding_helper = PositionalEmbedding(num_patches + 1, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.rgbt_stem(x)
        tokens = torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        return tokens + self.pos_embedding_helper.pos_embed


class TextTokenizer(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.token_embedding = nn.Embedding(VOCAB_SIZE, dim)
        self.pos_embed = nn.Parameter(torch.randn(1, CONTEXT_LENGTH, dim) * 0.01)
        # Kept only because the official state dict holds it; attention uses is_causal.
        self.register_buffer("mask", torch.full((CONTEXT_LENGTH, CONTEXT_LENGTH), float("-inf")).triu(1))
        nn.init.normal_(self.token_embedding.weight, std=0.02)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.token_embedding(tokens) + self.pos_embed


class SelectFirstToken(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 0]


class TextHead(nn.Module):
    """Project the end-of-text token, found as the largest token id, like CLIP."""

    def __init__(self, dim: int, out_dim: int):
        super().__init__()
        self.proj = nn.Sequential(nn.LayerNorm(dim, eps=1e-6), nn.Linear(dim, out_dim, bias=False))

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return self.proj(x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)])


class Normalize(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=-1)


class LogitScale(nn.Module):
    """Multiply by exp(log_logit_scale), clipped at 100 (frozen here)."""

    def __init__(self, scale: float):
        super().__init__()
        self.register_buffer("log_logit_scale", torch.tensor(math.log(scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clip(self.log_logit_scale.exp(), max=MAX_LOGIT_SCALE) * x


def _cls_head(dim: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.LayerNorm(dim, eps=1e-6), SelectFirstToken(), nn.Linear(dim, out_dim, bias=False))


class ImageBind(nn.Module):
    """The vision, audio and text towers of ImageBind. Outputs are what the official model
    returns: vision unit-norm, audio unit-norm x 20, text unit-norm x its logit scale."""

    def __init__(self, size: ImageBindSize, audio_drop_path: float = 0.0):
        super().__init__()
        self.size = size
        self.audio_drop_path = audio_drop_path
        s = size
        audio_patches = ((AUDIO_MEL_BINS - AUDIO_KERNEL) // AUDIO_STRIDE + 1) * (
            (AUDIO_FRAMES - AUDIO_KERNEL) // AUDIO_STRIDE + 1)
        self.modality_preprocessors = nn.ModuleDict({
            "vision": PatchTokenizer(ImagePatchStem(s.vision_embed_dim), (IMAGE_SIZE // PATCH_SIZE) ** 2,
                                     s.vision_embed_dim),
            "text": TextTokenizer(s.text_embed_dim),
            "audio": PatchTokenizer(AudioPatchStem(s.audio_embed_dim), audio_patches, s.audio_embed_dim),
        })
        self.modality_trunks = nn.ModuleDict({
            "vision": Trunk(s.vision_embed_dim, s.vision_num_blocks, s.vision_num_heads,
                            pre_norm=True, bias_kv=False, causal=False),
            "text": Trunk(s.text_embed_dim, s.text_num_blocks, s.text_num_heads,
                          pre_norm=False, bias_kv=False, causal=True),
            "audio": Trunk(s.audio_embed_dim, s.audio_num_blocks, s.audio_num_heads,
                           pre_norm=False, bias_kv=True, causal=False, drop_path=audio_drop_path),
        })
        self.modality_heads = nn.ModuleDict({
            "vision": _cls_head(s.vision_embed_dim, s.out_embed_dim),
            "text": TextHead(s.text_embed_dim, s.out_embed_dim),
            "audio": _cls_head(s.audio_embed_dim, s.out_embed_dim),
        })
        self.modality_postprocessors = nn.ModuleDict({
            "vision": Normalize(),
            "text": nn.Sequential(Normalize(), LogitScale(TEXT_LOGIT_SCALE)),
            "audio": nn.Sequential(Normalize(), LogitScale(AUDIO_LOGIT_SCALE)),
        })

    def _encode(self, modality: str, x: torch.Tensor, drop_masks: torch.Tensor | None = None) -> torch.Tensor:
        tokens = self.modality_trunks[modality](self.modality_preprocessors[modality](x), drop_masks)
        head = self.modality_heads[modality]
        embedded = head(tokens, x) if modality == "text" else head(tokens)
        return self.modality_postprocessors[modality](embedded)

    def encode_vision(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, 3, 224, 224]`` normalised frames -> ``[B, D]``."""
        return self._encode("vision", images)

    def encode_audio(self, spectrograms: torch.Tensor, drop_masks: torch.Tensor | None = None) -> torch.Tensor:
        """``[B, 1, 128, 204]`` normalised fbank clips -> ``[B, D]``. In train mode with
        ``audio_drop_path`` > 0, stochastic depth is applied; ``drop_masks`` (``[B, columns,
        audio_tokens]``, see :meth:`Trunk.forward`) replaces its draws from the global generator."""
        return self._encode("audio", spectrograms, drop_masks)

    @property
    def audio_tokens(self) -> int:
        """Tokens in the audio trunk (patches + class token): the length of a drop mask."""
        return self.modality_preprocessors["audio"].pos_embedding_helper.pos_embed.shape[1]

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """``[K, 77]`` CLIP BPE tokens -> ``[K, D]``."""
        return self._encode("text", tokens)


def build_imagebind(size: str | ImageBindSize, device: str | torch.device = "cpu",
                    audio_drop_path: float = 0.0) -> ImageBind:
    """A randomly initialised ImageBind of a named size, in eval mode (frozen)."""
    size = ImageBindSize.named(size) if isinstance(size, str) else size
    with torch.device(device):
        model = ImageBind(size, audio_drop_path)
    return model.eval().requires_grad_(False)
