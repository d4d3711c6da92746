"""Light temporal layers over the ten frozen segment embeddings of each modality, and the
fused audio-visual-text score the fine-tuning baseline trains and decodes with.

The paper's best setting: per modality one post-norm block of single-head self-attention
(1024 -> 256 query / key / value, 256 -> 1024 output) and a 1024 -> 512 -> 1024 ReLU
feed-forward with dropout 0.1. Variants (more layers, heads, cross-modal attention, a linear
layer, arithmetic fusion) are config keys, not code changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import torch
from torch import nn

from common.config import InvalidValue, Range
from models.attention import multi_head_attention

Attention = Literal["self", "cross", "both"]
Fusion = Literal["geometric", "arithmetic"]


@dataclass(frozen=True)
class TemporalSettings:
    kind: Literal["transformer", "linear"] = "transformer"
    num_layers: Annotated[int, Range(1)] = 1
    attention: Attention = "self"  # self: within a modality; cross: queries from one, keys/values from the other
    num_heads: Annotated[int, Range(1)] = 1
    attn_dim: Annotated[int, Range(1)] = 256
    ffn_dim: Annotated[int, Range(1)] = 512
    dropout: Annotated[float, Range(0, 1, high_open=True)] = 0.1
    fusion: Fusion = "geometric"  # geometric: sqrt(relu(cos_a * cos_v)) as published; arithmetic: the mean

    def __post_init__(self):
        if self.attn_dim % self.num_heads:
            raise InvalidValue("num_heads", f"{self.num_heads} heads do not divide attn_dim {self.attn_dim}; "
                                            "choose a divisor of attn_dim")


class AttentionSublayer(nn.Module):
    """Attention from ``x`` to ``context`` through a narrower space, residual, post-LayerNorm."""

    def __init__(self, dim: int, attn_dim: int, num_heads: int):
        super().__init__()
        if attn_dim % num_heads:
            raise ValueError(f"attn_dim {attn_dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.query = nn.Linear(dim, attn_dim)
        self.key_value = nn.Linear(dim, 2 * attn_dim)
        self.out = nn.Linear(attn_dim, dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        key, value = self.key_value(context).chunk(2, dim=-1)
        return self.norm(x + self.out(multi_head_attention(self.query(x), key, value, self.num_heads)))


class FeedForwardSublayer(nn.Module):
    def __init__(self, dim: int, ffn_dim: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, ffn_dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ffn_dim, dim))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x + self.net(x))


class TemporalBlock(nn.Module):
    def __init__(self, dim: int, settings: TemporalSettings):
        super().__init__()
        s = settings
        attention = lambda: AttentionSublayer(dim, s.attn_dim, s.num_heads)  # noqa: E731
        self.self_attention = attention() if s.attention in ("self", "both") else None
        self.cross_attention = attention() if s.attention in ("cross", "both") else None
        self.feed_forward = FeedForwardSublayer(dim, s.ffn_dim, s.dropout)

    def forward(self, x: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        if self.self_attention is not None:
            x = self.self_attention(x, x)
        if self.cross_attention is not None:
            x = self.cross_attention(x, other)
        return self.feed_forward(x)


class LinearBlock(nn.Module):
    """A per-segment linear map: the no-temporal-context ablation."""

    def __init__(self, dim: int):
        super().__init__()
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class TemporalModel(nn.Module):
    """Each modality has its own stack; with cross attention the stacks read each other's
    previous layer's output."""

    def __init__(self, dim: int, settings: TemporalSettings):
        super().__init__()
        if settings.num_layers < 1:
            raise ValueError("temporal.num_layers must be at least 1")
        make = (lambda: TemporalBlock(dim, settings)) if settings.kind == "transformer" else (lambda: LinearBlock(dim))
        self.audio_layers = nn.ModuleList(make() for _ in range(settings.num_layers))
        self.visual_layers = nn.ModuleList(make() for _ in range(settings.num_layers))
        self.settings = settings

    def forward(self, audio: torch.Tensor, vision: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for audio_layer, visual_layer in zip(self.audio_layers, self.visual_layers):
            audio, vision = audio_layer(audio, vision), visual_layer(vision, audio)
        return audio, vision


def fused_scores(sim_audio: torch.Tensor, sim_visual: torch.Tensor, fusion: Fusion, eps: float = 1e-8) -> torch.Tensor:
    """Per-segment class scores, min-max normalised over classes. ``eps`` keeps a segment whose
    scores are all equal finite in training (the decoder keeps the published 0/0)."""
    if fusion == "geometric":
        score = torch.sqrt(torch.relu(sim_audio * sim_visual))
    else:
        score = (sim_audio + sim_visual) / 2
    low = score.min(dim=-1, keepdim=True).values
    high = score.max(dim=-1, keepdim=True).values
    return (score - low) / (high - low + eps)
