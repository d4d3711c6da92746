"""Load the official ImageBind checkpoint into our encoders, refusing anything that does not fit.

Only the vision, audio and text entries are taken; every one the model expects must be
present with the right shape. The model is built on the ``meta`` device and the checkpoint
tensors are assigned to it, so no memory or time goes into a random initialisation.
"""

from __future__ import annotations

from pathlib import Path

import torch

from common.errors import UserError
from models.imagebind import MODALITIES, ImageBind, ImageBindSize

DEFAULT_CHECKPOINT = ".checkpoints/imagebind_huge.pth"
OFFICIAL_URL = "https://dl.fbaipublicfiles.com/imagebind/imagebind_huge.pth"


class CheckpointError(UserError):
    """The checkpoint is absent, unreadable or does not fit the model."""


def missing_checkpoint_message(path: Path) -> str:
    return (f"ImageBind checkpoint not found at {path}. The official weights (imagebind_huge.pth, "
            f"about 4.5 GB) are published at {OFFICIAL_URL}: download them there yourself, or run "
            f"`python tools/download_imagebind.py --output {path}`, or point encoder.checkpoint in "
            "your config at an existing copy.")


def read_state_dict(path) -> dict[str, torch.Tensor]:
    """The checkpoint's tensors, memory-mapped where the file format allows."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(missing_checkpoint_message(path))
    try:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as err:
            if "mmap" not in str(err):
                raise
            state = torch.load(path, map_location="cpu", weights_only=True)  # legacy (non-zip) format
    except Exception as err:  # the unpickler raises anything on a damaged file
        raise CheckpointError(f"{path} cannot be read as a PyTorch checkpoint ({err}); "
                              "re-download it or check the path") from None
    if not isinstance(state, dict) or not state or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise CheckpointError(f"{path} is not a state dict (a mapping of parameter names to tensors); "
                              "use the official imagebind_huge.pth as released")
    return state


def _belongs_to_our_modalities(name: str) -> bool:
    parts = name.split(".")
    return len(parts) > 1 and parts[0].startswith("modality_") and parts[1] in MODALITIES


def select_encoder_weights(state: dict, expected: dict, source: str) -> dict[str, torch.Tensor]:
    """The vision/audio/text entries of ``state``, checked against the model's ``expected``."""
    for name, tensor in expected.items():
        if name not in state:
            raise CheckpointError(f"{source}: missing key {name!r}; this is not an ImageBind checkpoint "
                                  "with vision, audio and text encoders of the configured size")
        if tuple(state[name].shape) != tuple(tensor.shape):
            raise CheckpointError(f"{source}: key {name!r} has shape {tuple(state[name].shape)} but the model "
                                  f"expects {tuple(tensor.shape)}; does encoder.size match the checkpoint?")
    extra = [name for name in state if _belongs_to_our_modalities(name) and name not in expected]
    if extra:
        raise CheckpointError(f"{source}: unexpected key {extra[0]!r} (and {len(extra) - 1} more); the checkpoint "
                              "holds a bigger model than encoder.size describes")
    return {name: state[name] for name in expected}


def load_pretrained_imagebind(size: str | ImageBindSize, checkpoint, device="cpu",
                              audio_drop_path: float = 0.0) -> ImageBind:
    """ImageBind of ``size`` with the checkpoint's weights, frozen, in eval mode, on ``device``."""
    size = ImageBindSize.named(size) if isinstance(size, str) else size
    with torch.device("meta"):
        model = ImageBind(size, audio_drop_path)
    weights = select_encoder_weights(read_state_dict(checkpoint), model.state_dict(), str(checkpoint))
    model.load_state_dict(weights, strict=True, assign=True)
    return model.to(device).eval().requires_grad_(False)
