"""Cosine similarities between cached segment embeddings and class-name embeddings, streamed
from the memory-mapped cache in blocks so memory stays flat however large the corpus."""

from __future__ import annotations

import numpy as np


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def cosine_similarities(audio, vision, rows, text, block_videos: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """``audio``/``vision`` ``[M, T, D]`` (memmaps), ``rows`` ``[N]``, ``text`` ``[K, D]`` ->
    audio-text and visual-text cosine similarities, each ``[N, T, K]`` float32."""
    rows = np.asarray(rows, dtype=np.int64)
    text_t = _unit(text).T
    sim_a = np.empty((len(rows), audio.shape[1], text_t.shape[1]), np.float32)
    sim_v = np.empty_like(sim_a)
    for start in range(0, len(rows), block_videos):
        block = rows[start:start + block_videos]
        sim_a[start:start + len(block)] = _unit(audio[block]) @ text_t
        sim_v[start:start + len(block)] = _unit(vision[block]) @ text_t
    return sim_a, sim_v
