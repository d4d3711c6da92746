"""Complex-valued fusion (Praveen, Jerripothula, Joshi, Dayal, Sawant: "Open-Vocabulary
Audio-Visual Event Localization via Complex-Valued Fusion"): each stream's segment embeddings go
through their own temporal self-attention head, their cosine similarities to the class texts
(min-max normalised over classes) become the real and imaginary parts of complex channels, and a
small complex CNN whose kernels span time only (5 x 1: class-agnostic, so any class list works)
fuses them; the magnitude of its output, min-max rescaled over classes, is each segment's score.

- 2 streams: one channel, visual real and audio imaginary (``swap``: the other way round).
- 4 streams: two channels, Z0 = RGB frame + i iHSV companion, Z1 = mel + i translated phase.
- ``fusion: real``: the paper's ablation, the same stack on the real and imaginary parts as real
  channels, widened to the complex stack's parameter count.

Also the companions' pure parts: :func:`ihsv` (an RGB image to its iHSV companion) and
:func:`instantaneous_frequency` (STFT phase to IF).
"""

from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from common.errors import UserError
from common.schema import ComplexSettings, TemporalSettings
from data.companions import read_pictures
from models.similarity import cosine
from models.temporal import TemporalBlock

STREAMS = {2: ("vision", "audio"), 4: ("vision", "ihsv", "audio", "phase")}
FUSION_LAYOUT = "complex-fusion/1"  # parameter layout of ComplexFusion, stored with its checkpoints
TEXT_OF = {"vision": "vision", "ihsv": "vision", "audio": "audio", "phase": "audio"}  # which text table scores it
EPS = 1e-8  # keeps a min-max rescale finite when a segment's scores are all equal


class ComplexConv2d(nn.Module):
    """A complex convolution W = W_R + i W_I as two real ones: Re = W_R*x_R - W_I*x_I,
    Im = W_R*x_I + W_I*x_R (their biases make one complex bias)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, padding=0):
        super().__init__()
        self.real = nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding)
        self.imag = nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding)

    def forward(self, x_re: torch.Tensor, x_im: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.real(x_re) - self.imag(x_im), self.real(x_im) + self.imag(x_re)


class ComplexCNN(nn.Module):
    """``layers`` complex (kernel_t, 1) convolutions (in -> hidden -> ... -> hidden, time padded to
    keep its length), each followed by batch normalisation of the real and imaginary parts
    separately and CReLU, then a complex 1 x 1 convolution to one channel. ``forward(x_re, x_im)``
    on ``[B, C, T, K]`` gives the magnitude ``[B, T, K]``."""

    def __init__(self, in_channels: int = 1, hidden: int = 32, layers: int = 4, kernel_t: int = 5):
        super().__init__()
        widths = [in_channels] + [hidden] * layers
        self.convs = nn.ModuleList(ComplexConv2d(a, b, (kernel_t, 1), padding=(kernel_t // 2, 0))
                                   for a, b in zip(widths, widths[1:]))
        self.norms = nn.ModuleList(nn.ModuleList([nn.BatchNorm2d(hidden), nn.BatchNorm2d(hidden)])
                                   for _ in range(layers))
        self.out = ComplexConv2d(hidden, 1, 1)

    def forward(self, x_re: torch.Tensor, x_im: torch.Tensor) -> torch.Tensor:
        for conv, (norm_re, norm_im) in zip(self.convs, self.norms):
            x_re, x_im = conv(x_re, x_im)
            x_re, x_im = F.relu(norm_re(x_re)), F.relu(norm_im(x_im))
        y_re, y_im = self.out(x_re, x_im)
        return torch.abs(torch.complex(y_re, y_im))[:, 0]


class RealCNN(nn.Module):
    """The ablation: the real and imaginary parts as ``2 x in_channels`` real channels through the
    same stack of real (kernel_t, 1) convolutions, batch normalisation and ReLU, then a 1 x 1
    convolution to one channel, whose value is the score (a real network has no phase to drop)."""

    def __init__(self, in_channels: int = 1, hidden: int = 45, layers: int = 4, kernel_t: int = 5):
        super().__init__()
        widths = [2 * in_channels] + [hidden] * layers
        self.convs = nn.ModuleList(nn.Conv2d(a, b, (kernel_t, 1), padding=(kernel_t // 2, 0))
                                   for a, b in zip(widths, widths[1:]))
        self.norms = nn.ModuleList(nn.BatchNorm2d(hidden) for _ in range(layers))
        self.out = nn.Conv2d(hidden, 1, 1)

    def forward(self, x_re: torch.Tensor, x_im: torch.Tensor) -> torch.Tensor:
        x = torch.cat([x_re, x_im], dim=1)
        for conv, norm in zip(self.convs, self.norms):
            x = F.relu(norm(conv(x)))
        return self.out(x)[:, 0]


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def matched_real_width(in_channels: int, hidden: int, layers: int, kernel_t: int) -> int:
    """The RealCNN width whose parameter count is nearest the ComplexCNN's."""
    target = parameter_count(ComplexCNN(in_channels, hidden, layers, kernel_t))
    return min(range(1, 8 * hidden), key=lambda width: abs(parameter_count(RealCNN(in_channels, width, layers,
                                                                                   kernel_t)) - target))


def minmax(scores: torch.Tensor) -> torch.Tensor:
    """Rescaled to [0, 1] along the class (last) axis."""
    low = scores.min(dim=-1, keepdim=True).values
    high = scores.max(dim=-1, keepdim=True).values
    return (scores - low) / (high - low + EPS)


class ComplexFusion(nn.Module):
    """Per stream a one-block temporal self-attention head (``temporal``), cosine similarities to
    its modality's class texts, min-max normalised, packed into complex channels (``settings``),
    fused by the CNN. ``forward(streams, texts)`` gives the min-max rescaled scores ``[B, T, K]``."""

    def __init__(self, widths: dict, settings: ComplexSettings, temporal: TemporalSettings):
        super().__init__()
        self.settings, self.temporal = settings, temporal
        self.streams = STREAMS[settings.streams]
        self.heads = nn.ModuleDict({name: TemporalBlock(widths[TEXT_OF[name]], temporal, widths[TEXT_OF[name]])
                                    for name in self.streams})
        channels = settings.streams // 2
        if settings.fusion == "complex":
            self.cnn = ComplexCNN(channels, settings.hidden, settings.layers, settings.kernel_t)
        else:
            width = matched_real_width(channels, settings.hidden, settings.layers, settings.kernel_t)
            self.cnn = RealCNN(channels, width, settings.layers, settings.kernel_t)

    def similarities(self, streams: dict, texts: dict) -> dict:
        """Each stream's min-max normalised similarities ``[B, T, K]`` after its head."""
        return {name: minmax(cosine(self.heads[name](streams[name], streams[name]), texts[TEXT_OF[name]]))
                for name in self.streams}

    def channels(self, sims: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Real and imaginary parts ``[B, C, T, K]``."""
        if self.settings.streams == 2:
            real, imag = ("audio", "vision") if self.settings.swap else ("vision", "audio")
            return sims[real][:, None], sims[imag][:, None]
        return (torch.stack([sims["vision"], sims["audio"]], dim=1),
                torch.stack([sims["ihsv"], sims["phase"]], dim=1))

    def forward(self, streams: dict, texts: dict) -> torch.Tensor:
        return minmax(self.cnn(*self.channels(self.similarities(streams, texts))))

    def record(self) -> dict:
        return {"complex": asdict(self.settings), "temporal": asdict(self.temporal)}


def fusion_from_checkpoint(state: dict, device, path="checkpoint") -> ComplexFusion:
    """The fusion a train.py checkpoint holds, in eval mode on ``device``."""
    if state.get("layout") != FUSION_LAYOUT:
        raise UserError(f"{path} holds complex-valued fusion of another layout ({state.get('layout')!r}); train it "
                        "again with this version")
    model = ComplexFusion(state["widths"], ComplexSettings(**state["complex"]),
                          TemporalSettings(**state["temporal"])).to(device)
    model.load_state_dict(state["model"])
    return model.eval()


# --- the companions' pure parts ---------------------------------------------------------

def rgb_to_hsv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``[..., 3]`` RGB in [0, 1] -> H in [0, 2 pi), S and V in [0, 1] (the usual hexcone)."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    value = rgb.max(axis=-1).astype(np.float64)
    chroma = value - rgb.min(axis=-1)
    saturation = np.where(value > 0, chroma / np.where(value > 0, value, 1), 0.0)
    safe = np.where(chroma > 0, chroma, 1)
    sector = np.where(value == r, ((g - b) / safe) % 6, np.where(value == g, (b - r) / safe + 2, (r - g) / safe + 4))
    hue = np.where(chroma > 0, sector * (math.pi / 3), 0.0) % (2 * math.pi)
    return hue, saturation, value


def hsv_to_rgb(hue: np.ndarray, saturation: np.ndarray, value: np.ndarray) -> np.ndarray:
    """H in radians (any), S and V in [0, 1] -> ``[..., 3]`` RGB in [0, 1]."""
    sector = (hue % (2 * math.pi)) / (math.pi / 3)
    chroma = value * saturation
    x = chroma * (1 - np.abs(sector % 2 - 1))
    zero = np.zeros_like(chroma)
    choices = [(chroma, x, zero), (x, chroma, zero), (zero, chroma, x), (zero, x, chroma), (x, zero, chroma),
               (chroma, zero, x)]
    index = np.minimum(sector.astype(int), 5)
    rgb = np.stack([np.choose(index, [c[i] for c in choices]) for i in range(3)], axis=-1)
    return rgb + (value - chroma)[..., None]


def ihsv(rgb: np.ndarray, negative: str = "shift") -> np.ndarray:
    """An RGB image (``[H, W, 3]`` uint8 or floats in [0, 1]) -> its iHSV companion, ``[H, W, 3]``
    floats in [0, 1]: the triplet (V, S sin H, S) read as an HSV image (hue = V of a full turn,
    saturation = S sin H, value = S) and converted back to RGB. S sin H lies in [-1, 1]; how it
    becomes a saturation in [0, 1] is ``negative``: ``shift`` ((x + 1) / 2, keeps the sign),
    ``abs`` or ``clip`` (negatives to 0)."""
    rgb = np.asarray(rgb)
    rgb = rgb.astype(np.float64) / 255 if rgb.dtype == np.uint8 else rgb.astype(np.float64)
    hue, saturation, value = rgb_to_hsv(rgb)
    signed = saturation * np.sin(hue)
    mapped = {"shift": (signed + 1) / 2, "abs": np.abs(signed), "clip": np.clip(signed, 0, 1)}[negative]
    return hsv_to_rgb(value * 2 * math.pi, mapped, saturation)


def ihsv_pictures(pictures, negative: str = "shift") -> list[Image.Image]:
    """Each picture's iHSV companion as an 8-bit RGB picture (what a family's frame transform reads)."""
    return [Image.fromarray(np.round(ihsv(np.asarray(p.convert("RGB")), negative) * 255).astype(np.uint8))
            for p in pictures]


def ihsv_frames(folder, frame_window, negative: str = "shift") -> torch.Tensor:
    """A prepared video's frames as their iHSV companions, through a family's ``frame_window``."""
    return frame_window(ihsv_pictures(read_pictures(folder), negative))


def instantaneous_frequency(phase: torch.Tensor) -> torch.Tensor:
    """STFT phase ``[..., F, T]`` -> IF[f, t] = ((phase[f, t] - phase[f, t - 1]) mod 2 pi) - pi, the
    first frame taken against a phase of 0."""
    previous = F.pad(phase[..., :-1], (1, 0))
    return torch.remainder(phase - previous, 2 * math.pi) - math.pi
