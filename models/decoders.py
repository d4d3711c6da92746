"""Turn audio-text and visual-text similarities into per-segment predictions.

All decoders take similarities ``[N, T, K]`` whose last column is the background class
``other`` and return a :class:`Decoded`: the per-segment labels that accuracy compares, and
the binary matrix ``[N, K, T]`` that the F1 metrics score. The two agree except for one quirk
of the published ``v01`` decoder, reproduced and explained in :func:`decode_training_free`.
Ties always resolve to the lowest class index (first maximum), as in the published code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metrics import labels_to_matrix


@dataclass(frozen=True)
class Decoded:
    segment_labels: np.ndarray  # [N, T] int64, background = K - 1
    pred_matrix: np.ndarray  # [N, K, T] bool, what the F1 metrics score
    is_event: np.ndarray | None = None  # [N, T] bool, training-free decoders only
    video_class: np.ndarray | None = None  # [N] int64, training-free decoders only


def check_similarities(sim_audio_text, sim_visual_text) -> tuple[np.ndarray, np.ndarray]:
    sim_a = np.asarray(sim_audio_text, dtype=np.float32)
    sim_v = np.asarray(sim_visual_text, dtype=np.float32)
    if sim_a.ndim != 3 or sim_a.shape != sim_v.shape:
        raise ValueError(f"similarities must both be [N, T, K]; got {sim_a.shape} and {sim_v.shape}")
    if sim_a.shape[2] < 2:
        raise ValueError("similarities need at least one class column plus the background column")
    return sim_a, sim_v


def decode_training_free(sim_audio_text, sim_visual_text, use_other: bool) -> Decoded:
    """The published training-free rule (``v0``: ``use_other=False``; ``v01``: True).

    A segment is an event when the audio's and the frame's top-1 classes agree. The video's
    class is the audio top-1 at the first agreeing segment; with no agreement the video is
    background. Event segments take the video's class, the others background.

    Quirk of ``v01`` (only it can rank ``other`` first): when the first agreement is on
    ``other``, every segment is labelled ``other`` for accuracy, but the F1 matrix sets the
    background row to *not* agreeing, leaving the agreeing segments with no positive row.
    """
    sim_a, sim_v = check_similarities(sim_audio_text, sim_visual_text)
    n, _, k = sim_a.shape
    background = k - 1
    columns = k if use_other else background
    audio_top = sim_a[:, :, :columns].argmax(axis=2)
    visual_top = sim_v[:, :, :columns].argmax(axis=2)
    is_event = audio_top == visual_top
    has_event = is_event.any(axis=1)
    first = is_event.argmax(axis=1)
    video_class = np.where(has_event, audio_top[np.arange(n), first], background)
    return training_free_prediction(video_class, is_event, k)


def training_free_prediction(video_class, is_event, num_classes: int) -> Decoded:
    """Labels and F1 matrix from a video class and a per-segment event mask, by the published
    rule: event segments take the video's class, the others background; the matrix's class
    row is the event mask and its background row the complement, written last (so a video
    class of ``other`` leaves the event segments without a positive row: the v01 quirk)."""
    video_class = np.asarray(video_class, dtype=np.int64)
    is_event = np.asarray(is_event, dtype=bool)
    n, t = is_event.shape
    background = num_classes - 1
    segment_labels = np.where(is_event, video_class[:, None], background)
    pred_matrix = np.zeros((n, num_classes, t), dtype=bool)
    pred_matrix[np.arange(n), video_class] = is_event
    pred_matrix[:, background] = ~is_event
    return Decoded(segment_labels.astype(np.int64), pred_matrix, is_event, video_class)


def fine_tuning_scores(sim_audio_text, sim_visual_text, fusion: str = "geometric") -> np.ndarray:
    """sqrt(relu(sim_a * sim_v)) (``fusion="arithmetic"``: their mean; ``"feature_mean"``: the
    mean embedding's cosine, ``sim_v``), min-max normalised over classes, in float32 as published.

    A segment whose products are all <= 0 normalises to 0/0 = NaN everywhere, and the
    published argmax then picks class 0; :func:`decode_fine_tuning` keeps that behaviour.
    """
    sim_a, sim_v = check_similarities(sim_audio_text, sim_visual_text)
    if fusion == "geometric":
        score = np.sqrt(np.maximum(sim_a * sim_v, np.float32(0)))
    elif fusion == "arithmetic":
        score = (sim_a + sim_v) / np.float32(2)
    elif fusion == "feature_mean":  # the temporal layers scored the mean embedding: one cosine
        score = sim_v
    else:
        raise ValueError(f"unknown fusion {fusion!r}; choose geometric, arithmetic or feature_mean")
    low = score.min(axis=2, keepdims=True)
    high = score.max(axis=2, keepdims=True)
    with np.errstate(invalid="ignore"):
        return (score - low) / (high - low)


def decode_fine_tuning(sim_audio_text, sim_visual_text, fusion: str = "geometric",
                       no_evidence: str = "first") -> Decoded:
    """The published fine-tuning decoder (``v1``): per-segment argmax of the fused score.
    ``no_evidence``: what a segment whose scores cannot be normalised (all <= 0) gets: ``first``,
    class 0 as published, or ``background``."""
    scores = fine_tuning_scores(sim_audio_text, sim_visual_text, fusion)
    # np.argmax returns the first NaN when there is one, like torch.argmax: class 0.
    labels = scores.argmax(axis=2).astype(np.int64)
    if no_evidence == "background":
        labels[np.isnan(scores).all(axis=2)] = scores.shape[2] - 1
    return Decoded(labels, labels_to_matrix(labels, scores.shape[2]))
