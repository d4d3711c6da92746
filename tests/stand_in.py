"""A stand-in family whose embeddings are known in advance, and videos for it: the localizer's
and the web app's tests get exact labels without real weights."""

import sys
import types

import numpy as np
import torch

import localize
from common import config as config_io
from common.schema import Config
from conftest import REPO
from data.synthetic import write_video
from pipeline import localize as localize_lib

CLASSES = ["dog barking", "car horn"]
PITCH = {"dog barking": 440, "car horn": 880}  # what the stand-in encoder hears
COLOUR = {"dog barking": (220, 30, 30), "car horn": (30, 30, 220), "other": (30, 200, 30)}  # and sees
FPS = 5


def write_scene(path, script, codec="libx264", audio_codec="aac", audio=True, frames_per_second=FPS):
    """A video following ``script``: per second, a class name (its colour and pitch), ``"other"``
    (green and silence) or None (grey and silence)."""
    t = np.arange(48000) / 48000
    pictures = (np.full((48, 64, 3), COLOUR.get(label, (128, 128, 128)), np.uint8)
                for label in script for _ in range(frames_per_second))
    sound = ((0.3 * np.sin(2 * np.pi * PITCH[label] * t) if label in PITCH else np.zeros(48000))
             .astype(np.float32)[None] for label in script)
    write_video(path, pictures, sound if audio else None, FPS, 48000, codec=codec, audio_codec=audio_codec)


AUDIO_WIDTH, VISION_WIDTH = 4, 6  # unequal, so that audio and vision swapped anywhere cannot pass unseen


class StandIn:
    """A family whose 'encoder' maps a second's pitch and colour to known embeddings: one axis
    per class and one for ``other``; silence lies on ``other``, a grey frame on a fourth axis no
    class name has, so background seconds never agree and event seconds agree on their class:
    the right labels are known in advance. A green frame lies on ``other`` (where the rules
    ``v0`` and ``v01`` part). Audio and vision live in spaces of different widths."""

    AUDIO_DRAWS = False
    SHARED_TEXT = False
    names = CLASSES + ["other"]

    @staticmethod
    def audio_window(samples):
        seconds = samples.reshape(-1, 16000)
        peaks = np.abs(np.fft.rfft(seconds, axis=1)).argmax(axis=1).astype(np.float32)  # 1 Hz bins
        loud = np.sqrt((seconds ** 2).mean(axis=1)) > 0.1  # most of the second (codecs shift audio by ms)
        return torch.from_numpy(np.where(loud, peaks, 0.0))[:, None]

    @staticmethod
    def frame_window(images):
        return torch.from_numpy(np.array([np.asarray(image.convert("RGB"), np.float32).mean(axis=(0, 1))
                                          for image in images]))

    @staticmethod
    def _axis(match, default: int) -> int:
        return next((StandIn.names.index(c) for c in CLASSES if match(c)), default)

    @staticmethod
    def _seen(rgb) -> int:
        """A class's colour lies on its axis, green on ``other``'s, anything else on a fourth axis."""
        return next((StandIn.names.index(c) for c in StandIn.names if np.allclose(COLOUR[c], rgb, atol=25)), 3)

    def widths(self, config):
        return {"audio": AUDIO_WIDTH, "vision": VISION_WIDTH}

    def describe(self, config):
        return "stand-in"

    def identity(self, config):
        return {"family": "stand-in"}

    def models(self, config, remembered=None):
        return {}

    def preprocessing(self):
        return {}

    def missing_weights(self, config):
        return []

    def build(self, config, device):
        return StandInEncoder()


class StandInEncoder:
    widths = {"audio": AUDIO_WIDTH, "vision": VISION_WIDTH}

    def segments(self, clips, frames):
        audio = torch.stack([torch.eye(AUDIO_WIDTH)[StandIn._axis(lambda c: abs(PITCH[c] - float(p)) < 5, 2)]
                             for p in clips[0, :, 0]])
        vision = torch.stack([torch.eye(VISION_WIDTH)[StandIn._seen(rgb.numpy())] for rgb in frames[0]])
        return audio[None], vision[None]

    def class_names(self, names, template, modality):
        width = AUDIO_WIDTH if modality == "audio" else VISION_WIDTH
        return torch.stack([torch.eye(width)[StandIn.names.index(name)] for name in names])


def stand_in_config(monkeypatch, tmp_path):
    """The localize config with the stand-in family patched in wherever a family is looked up."""
    module = types.SimpleNamespace(**{name: getattr(StandIn(), name) for name in (
        "AUDIO_DRAWS", "SHARED_TEXT", "audio_window", "frame_window", "widths", "describe", "identity", "models",
        "preprocessing", "missing_weights", "build")})
    for target in (localize_lib, localize, "pipeline.extraction"):
        monkeypatch.setattr(target if not isinstance(target, str) else sys.modules[target], "family",
                            lambda name: module)
    return config_io.load(Config, REPO / "configs" / "localize.yaml",
                          [f"cache.dir={tmp_path / 'cache'}", "extract.num_workers=0", "device=cpu",
                           f"output.root={tmp_path / 'runs'}"])


SCRIPT = [None] * 3 + ["dog barking"] * 4 + [None] * 3 + [None, None] + ["car horn"] * 4 + [None] * 4  # 20 s

