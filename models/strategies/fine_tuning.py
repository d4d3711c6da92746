"""The fine-tuning baseline's decoding: a checkpoint's temporal layers turn the segment embeddings,
then the published ``v1`` scoring labels each segment (models/decoders.py)."""

from __future__ import annotations

from models.decoders import decode_fine_tuning
from models.strategies import Decoder, Strategy
from models.temporal import checkpoint_settings, load_checkpoint, model_from_checkpoint


def load(checkpoint, device) -> Decoder:
    """The checkpoint's temporal layers in eval mode, decoded with the fusion it was trained with."""
    state = load_checkpoint(checkpoint)
    model = model_from_checkpoint(state, device, checkpoint).eval()
    fusion = checkpoint_settings(state, checkpoint).fusion
    return Decoder(V1, str(checkpoint), model, widths=state.get("widths"), options={"fusion": fusion},
                   encoder=state.get("config", {}).get("encoder"))


V1 = Strategy("v1", "fine-tuning", "temporal layers of a checkpoint, then sqrt(relu(cos_a * cos_v)) min-max "
              "normalised, per-segment argmax (published)", "checkpoint", decode_fine_tuning, load)
STRATEGIES = (V1,)
