"""Complex-valued fusion's decoding: a checkpoint's temporal heads and complex CNN score every
class of every segment from the streams it was trained on (models/complex_fusion.py); each
segment takes its best score."""

from __future__ import annotations

import numpy as np

from metrics import labels_to_matrix
from models.complex_fusion import FUSION_LAYOUT, fusion_from_checkpoint
from models.decoders import Decoded
from models.strategies import Decoder, Strategy


def decode_fused(scores) -> Decoded:
    """Each segment's best fused score ``[N, T, K]`` (the first on ties)."""
    scores = np.asarray(scores)
    labels = scores.argmax(axis=-1).astype(np.int64)
    return Decoded(labels, labels_to_matrix(labels, scores.shape[-1]))


def load(checkpoint, state: dict, device) -> Decoder:
    model = fusion_from_checkpoint(state, device, checkpoint)
    return Decoder(FUSION, str(checkpoint), fuse=model, streams=model.streams, settings=model.settings,
                   widths=state.get("widths"), encoder=state.get("config", {}).get("encoder"))


def recognizes(state) -> bool:
    return isinstance(state, dict) and state.get("layout") == FUSION_LAYOUT


FUSION = Strategy("complex_fusion", "complex-valued fusion", "temporal heads and a complex CNN of a checkpoint fuse "
                  "each stream's similarities; per-segment argmax of the fused score", "checkpoint", decode_fused,
                  load, recognizes, reads="a complex-valued fusion checkpoint that train.py writes with train.model: "
                                          "complex_fusion (runs/<run>/checkpoints/best.pt)")
STRATEGIES = (FUSION,)
