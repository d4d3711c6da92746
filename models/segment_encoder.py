"""Run the frozen encoders on per-segment inputs: inference mode, explicit numerics, no averaging.

Each of a video's ten 1-second segments is encoded on its own (audio clip, frame), so the
outputs keep the time axis: ``[B, 10, D]``. Outputs stay on the device as float32; the
caller copies them back once per batch.

Precisions (``encoder.precision``), each with its float32 matmul / convolution mode set
explicitly for the duration of every call (PyTorch's own defaults differ between the two:
IEEE matmuls but TF32 convolutions on Ampere and newer GPUs):

- ``fp32``: IEEE float32 everywhere, the published precision;
- ``tf32``: float32 tensors, matmuls and convolutions on TF32 tensor cores (GPU only; the
  CPU has no TF32 and computes IEEE float32);
- ``bf16`` / ``fp16``: autocast to that type (what autocast leaves in float32 stays IEEE).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from common.errors import UserError
from models.imagebind import ImageBind


@dataclass(frozen=True)
class Numerics:
    autocast: torch.dtype | None
    fp32_matmul: str  # "ieee" or "tf32": torch.backends.cuda.matmul.fp32_precision
    fp32_conv: str  # "ieee" or "tf32": torch.backends.cudnn.conv.fp32_precision

    def record(self) -> dict:
        """What the feature cache's provenance keeps."""
        return {"autocast": str(self.autocast).removeprefix("torch.") if self.autocast else None,
                "fp32_matmul": self.fp32_matmul, "fp32_conv": self.fp32_conv}


PRECISIONS = {
    "fp32": Numerics(None, "ieee", "ieee"),
    "tf32": Numerics(None, "tf32", "tf32"),
    "bf16": Numerics(torch.bfloat16, "ieee", "ieee"),
    "fp16": Numerics(torch.float16, "ieee", "ieee"),
}


@contextlib.contextmanager
def fp32_math(numerics: Numerics):
    """Set PyTorch's float32 matmul and convolution modes for a block, then restore them."""
    matmul, conv = torch.backends.cuda.matmul, torch.backends.cudnn.conv
    before = (matmul.fp32_precision, conv.fp32_precision)
    matmul.fp32_precision, conv.fp32_precision = numerics.fp32_matmul, numerics.fp32_conv
    try:
        yield
    finally:
        matmul.fp32_precision, conv.fp32_precision = before


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> CUDA when present, else CPU. A CUDA device without an index is GPU
    ``local_rank % GPUs`` (torchrun ranks spread over the node's GPUs and may share one). The
    GPU becomes the current device, so pinned-memory threads and synchronisation act on it."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type != "cuda":
        return device
    if not torch.cuda.is_available():
        raise UserError(f"device {name!r} was asked for but no CUDA GPU is visible; use device: cpu or auto")
    count = torch.cuda.device_count()
    index = local_rank % count if device.index is None else device.index
    if index >= count:
        raise UserError(f"device {name!r} does not exist: this machine has {count} GPU(s), cuda:0 to "
                        f"cuda:{count - 1}; use one of those, or cuda / auto")
    device = torch.device("cuda", index)
    torch.cuda.set_device(device)
    return device


class SegmentEncoder:
    def __init__(self, model: ImageBind, device: torch.device, precision: str = "fp32"):
        if precision not in PRECISIONS:
            raise UserError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
        self.model = model.to(device).eval().requires_grad_(False)
        self.device = device
        self.precision = precision
        self.numerics = PRECISIONS[precision]

    def _context(self):
        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        stack.enter_context(fp32_math(self.numerics))
        if self.numerics.autocast is not None:
            stack.enter_context(torch.autocast(self.device.type, dtype=self.numerics.autocast))
        return stack

    def _per_segment(self, encode, x: torch.Tensor) -> torch.Tensor:
        batch, segments = x.shape[:2]
        with self._context():
            out = encode(x.to(self.device, non_blocking=True).flatten(0, 1))
        return out.float().unflatten(0, (batch, segments))

    def audio(self, clips: torch.Tensor) -> torch.Tensor:
        """``[B, 10, 1, 128, 204]`` -> ``[B, 10, D]`` on the device."""
        return self._per_segment(self.model.encode_audio, clips)

    def vision(self, frames: torch.Tensor) -> torch.Tensor:
        """``[B, 10, 3, 224, 224]`` -> ``[B, 10, D]`` on the device."""
        return self._per_segment(self.model.encode_vision, frames)

    def segments(self, clips: torch.Tensor, frames: torch.Tensor) -> tuple:
        """Both modalities of a batch with one copy back: the GPU runs the audio and the vision
        passes back to back, then ``[B, 10, D_a]`` audio and ``[B, 10, D_v]`` vision arrive on the
        CPU together (flattened into one copy: the widths may differ)."""
        audio, vision = self.audio(clips), self.vision(frames)
        both = torch.cat([audio.flatten(), vision.flatten()]).cpu()
        return both[:audio.numel()].view(audio.shape), both[audio.numel():].view(vision.shape)
