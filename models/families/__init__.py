"""Backbone families: the encoders that turn a segment's audio and frame, and class names, into
embeddings. Everything downstream (feature cache, similarities, decoders, temporal layers)
takes its embedding widths and per-modality text embeddings from the family, so a new
backbone is one module here (plus its size files), chosen by ``encoder.family``.

A family module provides:

- ``widths(config)`` -> ``{"audio": int, "vision": int}``: embedding width of each modality;
- ``describe(config)`` -> a short name for titles, e.g. ``ImageBind-huge (fp32)``;
- ``identity(config)`` -> what the cache's provenance records as the encoder (family, sizes,
  widths, precision and its numerics);
- ``models(config, remembered)`` -> ``{model: file identity, or None where the file is absent}``;
- ``preprocessing()`` -> ``{"audio": {...}, "vision": {...}, "text": {...}}``;
- ``missing_weights(config)`` -> why the weights cannot be loaded here (empty when they can);
- ``SHARED_TEXT``: one text tower scores both modalities (its text embeddings are computed once);
- ``build(config, device)`` -> an encoder with ``segments(clips, frames)`` (``[B, 10, D_a]``,
  ``[B, 10, D_v]`` on the CPU), ``class_names(names, template, modality)`` (``[K, D_m]``) and,
  where ``AUDIO_DRAWS``, ``draw_masks(k, vid_names)`` and ``audio_draw(clips, masks)`` (see
  data/audio_draws.py);
- ``decode_audio(wav)`` / ``decode_frames(folder)``: one prepared video's encoder inputs, and
  ``audio_window(samples)`` / ``frame_window(images)``: the same for a window of a streamed
  video (16 kHz mono samples, pictures); all picklable: they run in the decoding workers.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from types import ModuleType

from common.errors import UserError

FAMILIES = ("imagebind", "clip_clap", "languagebind")


def family(name: str) -> ModuleType:
    if name not in FAMILIES:
        raise UserError(f"encoder.family {name!r} does not exist; known families: {', '.join(FAMILIES)}")
    return importlib.import_module(f"models.families.{name}")


def size_file(folder: Path, name: str, size: str) -> dict:
    """A family's size file ``<folder>/<size>.json``; an unknown size lists the known ones."""
    path = Path(folder) / f"{size}.json"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in Path(folder).glob("*.json")))
        raise UserError(f"unknown {name} size {size!r}; known sizes: {known}")
    return json.loads(path.read_text())
