"""Run the frozen ImageBind encoders on per-segment inputs: inference mode, autocast, no averaging.

Each of a video's ten 1-second segments is encoded on its own (audio clip, frame), so the
outputs keep the time axis: ``[B, 10, D]``. Outputs come back as float32 on the CPU side of
the caller's choosing; the autocast precision only affects the matrix products inside.
"""

from __future__ import annotations

import contextlib

import torch

from common.errors import UserError
from models.imagebind import ImageBind

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when present, else CPU; anything else must exist here."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {name!r} was asked for but no CUDA GPU is visible; use device: cpu or auto")
    return device


class SegmentEncoder:
    def __init__(self, model: ImageBind, device: torch.device, precision: str = "fp32"):
        if precision not in PRECISIONS:
            raise UserError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
        self.model = model.to(device).eval().requires_grad_(False)
        self.device = device
        self.precision = precision

    @property
    def embed_dim(self) -> int:
        return self.model.size.out_embed_dim

    def _context(self):
        dtype = PRECISIONS[self.precision]
        autocast = (torch.autocast(self.device.type, dtype=dtype) if dtype != torch.float32
                    else contextlib.nullcontext())
        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        stack.enter_context(autocast)
        return stack

    def _per_segment(self, encode, x: torch.Tensor) -> torch.Tensor:
        batch, segments = x.shape[:2]
        with self._context():
            out = encode(x.to(self.device, non_blocking=True).flatten(0, 1))
        return out.float().unflatten(0, (batch, segments))

    def audio(self, clips: torch.Tensor) -> torch.Tensor:
        """``[B, 10, 1, 128, 204]`` -> ``[B, 10, D]``."""
        return self._per_segment(self.model.encode_audio, clips)

    def vision(self, frames: torch.Tensor) -> torch.Tensor:
        """``[B, 10, 3, 224, 224]`` -> ``[B, 10, D]``."""
        return self._per_segment(self.model.encode_vision, frames)

    def text(self, tokens: torch.Tensor) -> torch.Tensor:
        """``[K, 77]`` -> ``[K, D]``."""
        with self._context():
            return self.model.encode_text(tokens.to(self.device)).float()
