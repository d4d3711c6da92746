"""The published training-free rules (models/decoders.py): a segment is an event when the audio's
and the frame's best-matching class names agree."""

from __future__ import annotations

from functools import partial

from models.decoders import decode_training_free
from models.strategies import Strategy

STRATEGIES = (
    Strategy("v0", "training-free", "audio and frame top-1 agree, `other` column ignored", "similarities",
             partial(decode_training_free, use_other=False)),
    Strategy("v01", "training-free", "audio and frame top-1 agree, `other` a candidate (published default)",
             "similarities", partial(decode_training_free, use_other=True)),
)
