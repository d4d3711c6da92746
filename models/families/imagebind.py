"""The ImageBind family: one model's vision, audio and text towers in one embedding space
(models/imagebind.py), the published preprocessing (data/preprocess.py), the official
``imagebind_huge.pth`` or seeded random weights. Both modalities are scored against the same
text tower. Its audio trunk has stochastic depth, so it can give the published training's
audio draws."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from data.audio_draws import draw_masks
from data.feature_cache import RANDOM_CHECKPOINT, checkpoint_identity
from data.preprocess import (AUDIO_SHAPE, PHASE_SHAPE, PREPROCESSING, audio_clips, audio_segments, frame_tensor,
                             phase_clips, ten_seconds, tokenize, video_frames)
from models.checkpoint import load_pretrained_imagebind, missing_checkpoint_message
from models.complex_fusion import instantaneous_frequency
from models.imagebind import ImageBindSize, build_imagebind
from models.segment_encoder import PRECISIONS, SegmentEncoder

SHARED_TEXT = True  # one text tower scores both modalities
AUDIO_DRAWS = True
RANDOM_INIT_SEED = 0
decode_audio = audio_segments
decode_frames = video_frames
AUDIO_INPUT = AUDIO_SHAPE[1:]  # one segment's audio-encoder input: what the phase generator writes
PHASE_INPUT = PHASE_SHAPE  # one segment's instantaneous frequency: what the phase generator reads


def audio_window(samples: np.ndarray) -> torch.Tensor:
    """``[n * 16000]`` mono 16 kHz float samples (a window of a streamed video) -> ``[n, 1, 128, 204]``."""
    return audio_clips(torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))[None])


def frame_window(images) -> torch.Tensor:
    """The window's pictures -> ``[n, 3, 224, 224]``."""
    return torch.stack([frame_tensor(image) for image in images])


def phase_settings() -> dict:
    """What the phase stream's input is made of (complex-valued fusion, 4 streams)."""
    return {"stft": "each 1 s segment tiled to 2 s, mean removed, channel 0; 25 ms symmetric Hann frames every "
                    "10 ms, FFT 512 (257 bins), zero-padded to 204 frames",
            "instantaneous_frequency": "((phase[t] - phase[t - 1]) mod 2 pi) - pi, first frame against 0",
            "input": list(PHASE_INPUT), "output": list(AUDIO_INPUT)}


def phase_window(samples: np.ndarray) -> torch.Tensor:
    """``[n * 16000]`` mono 16 kHz float samples -> ``[n, 1, 257, 204]`` instantaneous frequency."""
    return instantaneous_frequency(phase_clips(torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))[None]))


def decode_phase(wav) -> torch.Tensor:
    """One video's WAV -> ``[10, 1, 257, 204]`` instantaneous frequency of each segment (the same
    10 s as :func:`data.preprocess.audio_segments` reads)."""
    return instantaneous_frequency(phase_clips(ten_seconds(wav)))


def widths(config) -> dict[str, int]:
    width = ImageBindSize.named(config.encoder.size).out_embed_dim
    return {"audio": width, "vision": width}


def describe(config) -> str:
    return f"ImageBind-{config.encoder.size} ({config.encoder.precision})"


def identity(config) -> dict:
    return {"family": "imagebind", "size": config.encoder.size, "widths": widths(config),
            "precision": config.encoder.precision, "numerics": PRECISIONS[config.encoder.precision].record()}


def models(config, remembered: dict | None = None) -> dict:
    """The checkpoint's identity (None when the file is not here: a cache made elsewhere is
    then trusted for it)."""
    checkpoint = config.encoder.checkpoint
    if checkpoint != RANDOM_CHECKPOINT and not Path(checkpoint).is_file():
        return {"imagebind": None}
    return {"imagebind": checkpoint_identity(checkpoint, (remembered or {}).get("imagebind"))}


def preprocessing() -> dict:
    return PREPROCESSING


def missing_weights(config) -> list[str]:
    checkpoint = config.encoder.checkpoint
    if checkpoint != RANDOM_CHECKPOINT and not Path(checkpoint).is_file():
        return [missing_checkpoint_message(Path(checkpoint))]
    return []


class ImageBindEncoder(SegmentEncoder):
    """The segment encoder with ImageBind's own parts: its text tower and its audio draws."""

    def audio_draw(self, clips: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """``[B, 10, 1, 128, 204]`` -> ``[B, 10, D]`` on the device, with the audio trunk in train
        mode (stochastic depth) and ``masks`` (``[B * 10, branches, tokens]``) as its draws."""
        trunk = self.model.modality_trunks["audio"]
        trunk.train()
        try:
            return self._per_segment(lambda x: self.model.encode_audio(x, masks.to(self.device)), clips)
        finally:
            trunk.eval()

    def text(self, tokens: torch.Tensor) -> torch.Tensor:
        """``[K, 77]`` -> ``[K, D]``."""
        with self._context():
            return self.model.encode_text(tokens.to(self.device)).float()

    @property
    def widths(self) -> dict[str, int]:
        width = self.model.size.out_embed_dim
        return {"audio": width, "vision": width}

    def draw_masks(self, k: int, vid_names) -> torch.Tensor:
        """``[B * 10, branches, tokens]``: the masks of audio draw ``k`` of each video (data/audio_draws.py)."""
        keep = torch.tensor(self.model.modality_trunks["audio"].drop_keep_probabilities())
        return torch.cat([draw_masks(k, name, keep, self.model.audio_tokens) for name in vid_names])

    def class_names(self, names, template: str, modality: str) -> torch.Tensor:
        """``[K, D]`` on the CPU; one text tower serves both modalities."""
        return self.text(tokenize(names, template)).cpu()


def build(config, device: torch.device) -> ImageBindEncoder:
    """The configured ImageBind on ``device``. Random weights are drawn on the CPU, then moved:
    CPU and CUDA generators give different numbers for one seed, and "random" must name one
    model wherever it runs (a resumed extraction may run on another device type)."""
    rate = config.train.audio_drop_path  # active only for audio draws (train mode); eval mode ignores it
    if config.encoder.checkpoint == RANDOM_CHECKPOINT:
        torch.manual_seed(RANDOM_INIT_SEED)
        model = build_imagebind(config.encoder.size, "cpu", audio_drop_path=rate)
    else:
        model = load_pretrained_imagebind(config.encoder.size, config.encoder.checkpoint, device, audio_drop_path=rate)
    return ImageBindEncoder(model, device, config.encoder.precision)
