"""The unpaired CycleGAN of complex-valued fusion's phase stream: G_IF->mel translates an audio
clip's instantaneous frequency (models/complex_fusion.instantaneous_frequency of its STFT phase)
into the family's audio-encoder input, G_mel->IF the other way, each judged by a PatchGAN.

As the paper describes them: ResNet-9 generators (7 x 7 reflection-padded stem, two stride-2
downsampling convolutions, nine residual blocks, two transposed-convolution upsamplers, 7 x 7
output convolution with tanh; instance norm and ReLU), PatchGAN discriminators (5 convolutions
of 4 x 4, instance norm, LeakyReLU 0.2, spectral normalisation on every convolution). Open
choices, stated: the two domains differ in their frequency extent, so a generator first resizes
its input (bilinear) to its output's shape; the IF domain enters as IF / pi (in [-1, 1)) and the
mel domain as the encoder's input / ``MEL_SCALE``, so the tanh covers both; only G_IF->mel is kept
after training (its file: :func:`save_generator`).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from common.errors import UserError

MEL_SCALE = 4.0  # the audio encoder's normalised input over this lies in [-1, 1] (ImageBind's fbank: -1.0 to 2.7)
GENERATOR_FORMAT = "phase-generator/1"
SIZES = {"paper": {"filters": 64, "blocks": 9, "disc_filters": 64}, "tiny": {"filters": 4, "blocks": 1,
                                                                          "disc_filters": 4}}


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), nn.InstanceNorm2d(channels),
                                  nn.ReLU(True), nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3),
                                  nn.InstanceNorm2d(channels))

    def forward(self, x):
        return x + self.body(x)


class Generator(nn.Module):
    """``[B, C_in, F_in, T]`` -> ``[B, C_out, F_out, T]`` (the input first resized to ``F_out x T``)."""

    def __init__(self, in_shape, out_shape, filters: int = 64, blocks: int = 9):
        super().__init__()
        self.in_shape, self.out_shape = tuple(in_shape), tuple(out_shape)
        c_in, c_out = in_shape[0], out_shape[0]
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(c_in, filters, 7), nn.InstanceNorm2d(filters), nn.ReLU(True)]
        for k in (1, 2):  # downsampling
            layers += [nn.Conv2d(filters * k, filters * 2 * k, 3, stride=2, padding=1),
                       nn.InstanceNorm2d(filters * 2 * k), nn.ReLU(True)]
        layers += [ResidualBlock(filters * 4) for _ in range(blocks)]
        for k in (4, 2):  # upsampling
            layers += [nn.ConvTranspose2d(filters * k, filters * k // 2, 3, stride=2, padding=1, output_padding=1),
                       nn.InstanceNorm2d(filters * k // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(filters, c_out, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = self.out_shape[1:]
        padded = (math.ceil(height / 4) * 4, math.ceil(width / 4) * 4)  # two stride-2 steps and back
        x = F.interpolate(x, size=padded, mode="bilinear", align_corners=False)
        return self.net(x)[..., :height, :width]


class Discriminator(nn.Module):
    """PatchGAN: five 4 x 4 convolutions (64, 128, 256, 512, 1 filters at full size), spectral norm on
    each, instance norm between, LeakyReLU 0.2; one realness value per patch."""

    def __init__(self, channels: int, filters: int = 64):
        super().__init__()
        widths = [channels, filters, filters * 2, filters * 4, filters * 8]
        layers = []
        for i, (a, b) in enumerate(zip(widths, widths[1:])):
            layers.append(spectral_norm(nn.Conv2d(a, b, 4, stride=2 if i < 3 else 1, padding=1)))
            if i > 0:
                layers.append(nn.InstanceNorm2d(b))
            layers.append(nn.LeakyReLU(0.2, True))
        layers.append(spectral_norm(nn.Conv2d(widths[-1], 1, 4, stride=1, padding=1)))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def to_if_domain(instantaneous: torch.Tensor) -> torch.Tensor:
    return instantaneous / math.pi


def to_mel_domain(encoder_input: torch.Tensor) -> torch.Tensor:
    return encoder_input / MEL_SCALE


def from_mel_domain(translated: torch.Tensor) -> torch.Tensor:
    """A generator's output as the audio encoder's input."""
    return translated * MEL_SCALE


def moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-frequency-bin mean and std over the batch and time ``[C, F]``, and the global skewness and
    kurtosis after standardisation."""
    mean, std = x.mean(dim=(0, 3)), x.std(dim=(0, 3))
    z = (x - x.mean()) / (x.std() + 1e-8)
    return mean, std, (z ** 3).mean(), (z ** 4).mean()


def distribution_loss(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """L_dist = |mu_f(fake) - mu_f(real)|_1 + |sigma_f(fake) - sigma_f(real)|_1 + (|skew diff| + |kurt diff|) / 2,
    the per-bin terms averaged over bins."""
    f_mean, f_std, f_skew, f_kurt = moments(fake)
    r_mean, r_std, r_skew, r_kurt = moments(real)
    return ((f_mean - r_mean).abs().mean() + (f_std - r_std).abs().mean()
            + 0.5 * ((f_skew - r_skew).abs() + (f_kurt - r_kurt).abs()))


def save_generator(path, generator: Generator, identity: dict, settings: dict) -> None:
    """G_IF->mel as complex fusion reads it: its weights, shapes, size and the family it was trained for."""
    torch.save({"format": GENERATOR_FORMAT, "state_dict": generator.state_dict(), "in_shape": generator.in_shape,
                "out_shape": generator.out_shape, "settings": settings, "family": identity}, path)


def read_generator_file(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"complex.generator {path} not found: 4 streams need the phase generator that "
                        "train_phase_gan.py writes (runs/<run>/generator.pt)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a damaged or foreign file can make the unpickler raise anything
        raise UserError(f"complex.generator {path} is not a readable phase generator ({type(err).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != GENERATOR_FORMAT:
        raise UserError(f"complex.generator {path} is not a phase generator that train_phase_gan.py writes")
    return state


def check_generator(state: dict, path, identity: dict, in_shape, out_shape) -> None:
    """A generator trained for this family's encoder and input shapes, or one line saying what differs."""
    if state["family"].get("family") != identity.get("family") or state["family"] != identity:
        raise UserError(f"complex.generator {path} was trained for {state['family']}, but the configured encoder is "
                        f"{identity}; train a phase generator for this encoder (train_phase_gan.py)")
    if tuple(state["in_shape"]) != tuple(in_shape) or tuple(state["out_shape"]) != tuple(out_shape):
        raise UserError(f"complex.generator {path} maps {tuple(state['in_shape'])} to {tuple(state['out_shape'])}, "
                        f"but this encoder's phase input is {tuple(in_shape)} and its audio input {tuple(out_shape)}")


def load_generator(path, device, identity: dict, in_shape, out_shape) -> Generator:
    """G_IF->mel from its file, checked against the encoder it serves, in eval mode on ``device``."""
    state = read_generator_file(path)
    check_generator(state, path, identity, in_shape, out_shape)
    size = state["settings"]["size"]
    generator = Generator(in_shape, out_shape, SIZES[size]["filters"], SIZES[size]["blocks"])
    generator.load_state_dict(state["state_dict"])
    return generator.to(device).eval().requires_grad_(False)
