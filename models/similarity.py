"""Cosine similarities between segment embeddings and class-name embeddings, streamed from the
memory-mapped cache in blocks so memory stays flat however large the corpus. Both baselines
use it: the training-free one on the cached embeddings, the fine-tuning one on what its
temporal layers make of them."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def cosine(x: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
    """``[B, T, D]`` x ``[K, D]`` -> ``[B, T, K]`` cosine similarities."""
    return F.normalize(x, dim=-1) @ F.normalize(text, dim=-1).T


def segment_similarities(features, rows, text_audio: torch.Tensor, text_vision: torch.Tensor,
                         block_videos: int = 2048, transform=None) -> tuple[np.ndarray, np.ndarray]:
    """``features.gather(rows)`` -> audio and vision ``[n, T, D_a]`` / ``[n, T, D_v]`` float32
    arrays (a cached split), ``rows`` ``[N]``, the class names' text embeddings as scored against
    each modality, ``[K, D_a]`` and ``[K, D_v]``, on the device to compute on -> audio-text and
    visual-text similarities, each ``[N, T, K]`` float32. ``transform(audio, vision)`` (e.g.
    temporal layers) is applied to each block first."""
    rows = np.asarray(rows, dtype=np.int64)
    sims_a, sims_v = [], []
    with torch.inference_mode():
        for start in range(0, len(rows), block_videos):
            block = rows[start:start + block_videos]
            a, v = (torch.from_numpy(x).to(text_audio.device, non_blocking=True) for x in features.gather(block))
            if transform is not None:
                a, v = transform(a, v)
            sims_a.append(cosine(a, text_audio).cpu().numpy())
            sims_v.append(cosine(v, text_vision).cpu().numpy())
    if not sims_a:
        empty = np.zeros((0, features.audio.shape[1], text_audio.shape[0]), np.float32)
        return empty, empty.copy()
    return np.concatenate(sims_a), np.concatenate(sims_v)
