"""The fine-tuning baseline's decoding: a checkpoint's temporal layers turn the segment embeddings,
then the published ``v1`` scoring labels each segment (models/decoders.py)."""

from __future__ import annotations

from models.decoders import decode_fine_tuning
from models.strategies import Decoder, Strategy
from models.temporal import CHECKPOINT_KEYS, checkpoint_settings, model_from_checkpoint


def load(checkpoint, state: dict, device) -> Decoder:
    """The checkpoint's temporal layers in eval mode, decoded with the fusion it was trained with."""
    model = model_from_checkpoint(state, device, checkpoint).eval()
    fusion = checkpoint_settings(state, checkpoint).fusion
    return Decoder(V1, str(checkpoint), transform=model, widths=state.get("widths"), options={"fusion": fusion},
                   encoder=state.get("config", {}).get("encoder"))


def recognizes(state) -> bool:
    return isinstance(state, dict) and all(key in state for key in CHECKPOINT_KEYS) and "complex" not in state


V1 = Strategy("v1", "fine-tuning", "temporal layers of a checkpoint, then sqrt(relu(cos_a * cos_v)) min-max "
              "normalised, per-segment argmax (published)", "checkpoint", decode_fine_tuning, load, recognizes,
              reads="a fine-tuning checkpoint that train.py writes (runs/<run>/checkpoints/best.pt)",
              # A second with no evidence for any class is background for other videos (the benchmark
              # keeps the published rule: class 0).
              localizer_options={"no_evidence": "background"})
STRATEGIES = (V1,)
