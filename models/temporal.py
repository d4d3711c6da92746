"""Light temporal layers over the ten frozen segment embeddings of each modality, and the
fused audio-visual-text score the fine-tuning baseline trains and decodes with.

The paper's best setting: per modality one post-norm block of single-head self-attention
(1024 -> 256 query / key / value, 256 -> 1024 output) and a 1024 -> 512 -> 1024 ReLU
feed-forward with dropout 0.1. Variants (more layers, heads, cross-modal attention, a linear
layer, arithmetic fusion) are config keys, not code changes. Every variant follows the
published module by default:

- one block is built and deep-copied for every layer, stack and modality, so all start equal
  (``init: independent`` draws each anew);
- attention logits are scaled by 1/sqrt(attn_dim) whatever the number of heads
  (``attention_scale: head``: 1/sqrt(attn_dim / heads), the usual choice);
- cross-attention stacks attend to the other modality's *original* segment embeddings
  (``cross_context: previous``: to its previous layer's output);
- ``both`` runs a self- and a cross-attention stack side by side from the same input and
  combines them by ``both_combine``: their sum, their mean, or a learned weight
  sigmoid(alpha) * self + (1 - sigmoid(alpha)) * cross with alpha starting at 0.

The published module's other options, off by default as in the paper's table: a learned
distance prior exp(-|w d^2 - b|) added to the attention logits (``distance_prior``), a second,
local attention over a window of segments blended in by a learned sigmoid(alpha)
(``local_window``), a signed square root and L2 normalisation over time of the attention output
(``power_norm``), cross stacks of their own depth (``cross_layers``), and ``feature_mean``
fusion (the mean of the audio and frame embeddings, one cosine with the text). Their learned
scalars exist only when their option is on, so other checkpoints keep their parameters.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from common.errors import UserError
from common.schema import Fusion, TemporalSettings
from models.attention import multi_head_attention

LAYOUT = 2  # parameter layout of TemporalModel, stored with every checkpoint


def local_window_mask(window: int, length: int, device=None) -> torch.Tensor:
    """``[length, length]`` bool: segment j attends to the ``window`` positions starting at
    j - window // 2, each clamped into the sequence (the published mask: at the edges a position
    repeats)."""
    rows = torch.arange(length, device=device)[:, None]
    columns = (rows - window // 2 + torch.arange(window, device=device)).clamp(0, length - 1)
    return torch.zeros(length, length, dtype=torch.bool, device=device).scatter_(1, columns, True)


class AttentionSublayer(nn.Module):
    """Attention from ``x`` to ``context`` through a narrower space, residual, post-LayerNorm;
    with the published options of ``settings`` (distance prior, local window, power norm)."""

    def __init__(self, dim: int, settings: TemporalSettings, context_dim: int | None = None):
        super().__init__()
        attn_dim, num_heads = settings.attn_dim, settings.num_heads
        if attn_dim % num_heads:
            raise ValueError(f"attn_dim {attn_dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.scale = settings.scale
        self.query = nn.Linear(dim, attn_dim)
        self.key_value = nn.Linear(context_dim or dim, 2 * attn_dim)
        self.out = nn.Linear(attn_dim, dim)
        self.norm = nn.LayerNorm(dim)
        if settings.distance_prior:
            self.distance_gamma = nn.Parameter(torch.tensor([settings.distance_gamma]))
            self.distance_bias = nn.Parameter(torch.tensor([settings.distance_bias]))
        self.local_window = settings.local_window
        if self.local_window is not None:
            self.local_alpha = nn.Parameter(torch.zeros(1))
        self.power_norm = settings.power_norm

    def _prior(self, length: int, device) -> torch.Tensor | None:
        if not hasattr(self, "distance_gamma"):
            return None
        positions = torch.arange(length, device=device, dtype=torch.float32)
        distance = (positions[:, None] - positions[None, :]).abs()
        return torch.exp(-torch.abs(self.distance_gamma * distance ** 2 - self.distance_bias))

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        key, value = self.key_value(context).chunk(2, dim=-1)
        query = self.query(x)
        prior = self._prior(x.shape[1], x.device)
        attended = multi_head_attention(query, key, value, self.num_heads, scale=self.scale, bias=prior)
        if self.local_window is not None:
            outside = ~local_window_mask(self.local_window, x.shape[1], x.device)
            local_bias = torch.zeros(outside.shape, device=x.device) if prior is None else prior
            local_bias = local_bias.masked_fill(outside, float("-inf"))
            local = multi_head_attention(query, key, value, self.num_heads, scale=self.scale, bias=local_bias)
            weight = torch.sigmoid(self.local_alpha)
            attended = weight * attended + (1 - weight) * local
        if self.power_norm:
            attended = torch.sqrt(torch.relu(attended)) - torch.sqrt(torch.relu(-attended))
            attended = F.normalize(attended, dim=1)  # over time, as published (their dim=1)
        return self.norm(x + self.out(attended))


class FeedForwardSublayer(nn.Module):
    def __init__(self, dim: int, ffn_dim: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, ffn_dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ffn_dim, dim))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x + self.net(x))


class TemporalBlock(nn.Module):
    """Attention (to itself or to another sequence of width ``context_dim``), then feed-forward."""

    def __init__(self, dim: int, settings: TemporalSettings, context_dim: int | None = None):
        super().__init__()
        self.attention = AttentionSublayer(dim, settings, context_dim)
        self.feed_forward = FeedForwardSublayer(dim, settings.ffn_dim, settings.dropout)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return self.feed_forward(self.attention(x, context))


class LinearBlock(nn.Module):
    """A per-segment linear map: the no-temporal-context ablation."""

    def __init__(self, dim: int, settings: TemporalSettings | None = None, context_dim: int | None = None):
        super().__init__()
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class TemporalModel(nn.Module):
    """Per modality a main stack (self-attention, or cross-attention when ``attention`` is
    cross) and, for ``both``, a cross-attention stack beside it. ``widths``: the audio and
    vision embedding widths (one int when they are equal)."""

    def __init__(self, widths: int | dict, settings: TemporalSettings):
        super().__init__()
        if settings.num_layers < 1:
            raise ValueError("temporal.num_layers must be at least 1")
        widths = {"audio": widths, "vision": widths} if isinstance(widths, int) else dict(widths)
        block_type = TemporalBlock if settings.kind == "transformer" else LinearBlock
        prototypes: dict = {}  # (width, context width) -> the block every copy starts from

        def make(dim: int, context_dim: int) -> nn.Module:
            if settings.init == "independent":
                return block_type(dim, settings, context_dim)
            if (dim, context_dim) not in prototypes:
                prototypes[dim, context_dim] = block_type(dim, settings, context_dim)
            return copy.deepcopy(prototypes[dim, context_dim])

        cross_depth = settings.cross_layers or settings.num_layers

        def stack(dim: int, context_dim: int, depth: int) -> nn.ModuleList:
            return nn.ModuleList(make(dim, context_dim) for _ in range(depth))

        audio, vision = widths["audio"], widths["vision"]
        if settings.fusion == "feature_mean" and audio != vision:
            raise ValueError(f"fusion feature_mean averages the audio and frame embeddings; their widths differ "
                             f"({audio} and {vision})")
        cross = settings.kind == "transformer" and settings.attention == "cross"
        self.settings = settings
        main_depth = cross_depth if cross else settings.num_layers
        self.audio_layers = stack(audio, vision if cross else audio, main_depth)
        self.visual_layers = stack(vision, audio if cross else vision, main_depth)
        self.parallel = settings.kind == "transformer" and settings.attention == "both"
        if self.parallel:
            self.audio_cross_layers = stack(audio, vision, cross_depth)
            self.visual_cross_layers = stack(vision, audio, cross_depth)
            if settings.both_combine == "learned":
                self.audio_alpha = nn.Parameter(torch.zeros(1))
                self.visual_alpha = nn.Parameter(torch.zeros(1))

    def _cross(self, audio_layers, visual_layers, audio, vision):
        """Cross-attention stacks of both modalities, reading the other's original input or its
        previous layer's output."""
        original_audio, original_vision = audio, vision
        for audio_layer, visual_layer in zip(audio_layers, visual_layers):
            if self.settings.cross_context == "original":
                audio, vision = audio_layer(audio, original_vision), visual_layer(vision, original_audio)
            else:
                audio, vision = audio_layer(audio, vision), visual_layer(vision, audio)
        return audio, vision

    @staticmethod
    def _self(layers, x):
        for layer in layers:
            x = layer(x, x)
        return x

    def _combine(self, own: torch.Tensor, cross: torch.Tensor, alpha: torch.Tensor | None) -> torch.Tensor:
        combine = self.settings.both_combine
        if combine == "sum":
            return own + cross
        if combine == "mean":
            return (own + cross) / 2
        weight = torch.sigmoid(alpha)
        return weight * own + (1 - weight) * cross

    def forward(self, audio: torch.Tensor, vision: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two modalities' new segment embeddings; with ``feature_mean`` fusion their mean,
        twice (what the text is scored against)."""
        audio, vision = self._layers(audio, vision)
        if self.settings.fusion == "feature_mean":
            mean = (audio + vision) * 0.5
            return mean, mean
        return audio, vision

    def _layers(self, audio: torch.Tensor, vision: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.settings.kind == "transformer" and self.settings.attention == "cross":
            return self._cross(self.audio_layers, self.visual_layers, audio, vision)
        own_audio, own_vision = self._self(self.audio_layers, audio), self._self(self.visual_layers, vision)
        if not self.parallel:
            return own_audio, own_vision
        cross_audio, cross_vision = self._cross(self.audio_cross_layers, self.visual_cross_layers, audio, vision)
        learned = self.settings.both_combine == "learned"
        return (self._combine(own_audio, cross_audio, self.audio_alpha if learned else None),
                self._combine(own_vision, cross_vision, self.visual_alpha if learned else None))


def fused_scores(sim_audio: torch.Tensor, sim_visual: torch.Tensor, fusion: Fusion, eps: float = 1e-8,
                 normalise: bool = True) -> torch.Tensor:
    """Per-segment class scores, min-max normalised over classes unless ``normalise`` is false.
    ``eps`` keeps a segment whose scores are all equal finite in training (the decoder keeps
    the published 0/0)."""
    if fusion == "geometric":
        score = torch.sqrt(torch.relu(sim_audio * sim_visual))
    elif fusion == "feature_mean":  # the model scored the mean embedding against the frames' text
        score = sim_visual
    else:
        score = (sim_audio + sim_visual) / 2
    if not normalise:
        return score
    low = score.min(dim=-1, keepdim=True).values
    high = score.max(dim=-1, keepdim=True).values
    return (score - low) / (high - low + eps)


def training_scores(sim_audio: torch.Tensor, sim_visual: torch.Tensor, settings: TemporalSettings) -> torch.Tensor:
    """The logits of the training loss: fused scores, min-max normalised except for arithmetic
    fusion, which the published code trains on the plain mean of the cosines, and feature_mean,
    trained on the plain cosine of the mean embedding."""
    normalise = settings.fusion == "geometric" or settings.arithmetic_minmax
    return fused_scores(sim_audio, sim_visual, settings.fusion, normalise=normalise)


CHECKPOINT_KEYS = ("model", "temporal", "widths")


def load_checkpoint(path) -> dict:
    """A fine-tuning checkpoint (what train.py writes); anything else is one clear message."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    what = (f"a fine-tuning checkpoint is a torch file that train.py writes (runs/<run>/checkpoints/best.pt), "
            f"holding {', '.join(CHECKPOINT_KEYS)} and the config it was trained with")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a damaged file can make the unpickler raise anything
        raise UserError(f"{path} is not a readable fine-tuning checkpoint ({type(err).__name__}); {what}") from None
    if not isinstance(checkpoint, dict) or not all(key in checkpoint for key in CHECKPOINT_KEYS):
        raise UserError(f"{path} is not a fine-tuning checkpoint (a bare state dict or another model's file); "
                        f"{what}")
    return checkpoint


def checkpoint_settings(checkpoint: dict, path) -> TemporalSettings:
    """The temporal settings a checkpoint was trained with; a checkpoint of the earlier layout
    (before the published forms) is refused rather than read with other semantics."""
    if checkpoint.get("layout") != LAYOUT:
        raise UserError(f"{path} holds temporal layers of an earlier layout (before the published cross/both "
                        "forms, attention scale and shared initialisation); train it again with this version")
    return TemporalSettings(**checkpoint["temporal"])


def model_from_checkpoint(checkpoint: dict, device, path="checkpoint") -> TemporalModel:
    model = TemporalModel(checkpoint["widths"], checkpoint_settings(checkpoint, path)).to(device)
    model.load_state_dict(checkpoint["model"])
    return model


def check_fits(path, trained_encoder: dict | None, trained_widths: dict | None, config, backbone,
               error=UserError) -> None:
    """A checkpoint's layers take the configured encoder's embeddings: the family it was trained
    on (``trained_encoder``, its config's encoder keys) and its widths, checked before any work.
    ``backbone``: the configured family's module."""
    trained_on = (trained_encoder or {}).get("family")
    if trained_on is not None and trained_on != config.encoder.family:
        raise error(f"{path} was trained on the {trained_on} family's embeddings, but encoder.family is "
                    f"{config.encoder.family}; use a checkpoint trained on this encoder")
    widths = backbone.widths(config)
    if trained_widths != widths:
        raise error(f"{path} was trained on embeddings of widths {trained_widths}, but {backbone.describe(config)} "
                    f"gives {widths}; use a checkpoint trained on this encoder")
