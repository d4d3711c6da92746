"""OV-AVEL metrics with the published definitions, vectorised over videos.

Every F1 is computed per video over the rows of its binary matrix ``[K, T]`` (classes plus
background) that are non-empty in the prediction or the truth, averaged over those rows, and
then averaged over videos. A video whose rows are all empty scores 1.0. Accuracy is pooled
over all segments. Nothing depends on how videos are batched.

Published numerics, kept here and nowhere else: the published evaluation feeds float32
tensors into the segment-level F1, so each per-row F1, the running sum over rows (in row
order) and the division by the row count are rounded to float32. ``PUBLISHED_SEGMENT_F1_DTYPE``
reproduces that to the last digit; called on integer matrices the same code ran in float64,
which is this module's default. Event-level counts are integers, so event F1 is float64.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

IOU_THRESHOLD = 0.5
PUBLISHED_SEGMENT_F1_DTYPE = np.float32
MAX_SEGMENTS = 53  # row codes go through float64 arithmetic, exact below 2**53
METRIC_NAMES = ("accuracy", "segment_f1", "event_f1", "average")


def _binary(x, name: str, ndim: int) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {arr.shape}")
    if arr.dtype != np.bool_:
        if not np.isin(arr, (0, 1)).all():
            raise ValueError(f"{name} must hold only 0 and 1")
        arr = arr.astype(bool)
    return arr


def _pair(pred, gt, ndim: int) -> tuple[np.ndarray, np.ndarray]:
    pred, gt = _binary(pred, "pred", ndim), _binary(gt, "gt", ndim)
    if pred.shape != gt.shape:
        raise ValueError(f"pred and gt shapes differ: {pred.shape} vs {gt.shape}")
    return pred, gt


def _mean_over_active_rows(f: np.ndarray, active: np.ndarray, dtype) -> np.ndarray:
    """Per-video ``sum(F) / len(F)`` over active rows (``f`` is 0 elsewhere), summed
    sequentially in row order like the published Python ``sum``."""
    columns = np.ascontiguousarray(f.T, dtype=dtype)
    total = np.zeros(f.shape[0], dtype=dtype)
    for column in columns:
        total += column
    count = active.sum(axis=1)
    out = np.ones(f.shape[0], dtype=dtype)
    has_rows = count > 0
    out[has_rows] = total[has_rows] / count[has_rows].astype(dtype)
    return out


def _row_codes(x: np.ndarray) -> np.ndarray:
    """``[N, K, T]`` bool -> ``[N, K]`` uint64 whose bit ``t`` is segment ``t``.

    One BLAS product instead of a reduction over a short last axis (about 10x faster).
    """
    num_segments = x.shape[-1]
    if num_segments > MAX_SEGMENTS:
        raise ValueError(f"at most {MAX_SEGMENTS} segments per video are supported, got {num_segments}")
    exact = np.float32 if num_segments <= 24 else np.float64
    weights = np.ldexp(exact(1), np.arange(num_segments)).astype(exact)
    return (x.reshape(-1, num_segments).astype(exact) @ weights).astype(np.uint64).reshape(x.shape[:-1])


def batch_segment_level_f1(pred, gt, dtype=np.float64) -> np.ndarray:
    """Segment-level F1 of each video of binary matrices ``[N, K, T]``; returns ``[N]``."""
    pred, gt = _pair(pred, gt, 3)
    return _segment_f1(_row_codes(pred), _row_codes(gt), dtype)


def _segment_f1(p: np.ndarray, g: np.ndarray, dtype) -> np.ndarray:
    tp = np.bitwise_count(p & g)
    errors = np.bitwise_count(p ^ g)  # false positives + false negatives
    active = (p | g) != 0
    f = (2 * tp).astype(dtype) / np.where(active, 2 * tp + errors, 1).astype(dtype)
    return _mean_over_active_rows(f, active, dtype)


@lru_cache(maxsize=8)
def _interval_masks(num_segments: int):
    """Bit masks of every interval [s, e] of T segments, and which pairs match (IoU >= 0.5)."""
    starts, ends = np.triu_indices(num_segments)
    lengths = ends - starts + 1
    masks = ((np.uint64(1) << lengths.astype(np.uint64)) - np.uint64(1)) << starts.astype(np.uint64)
    inter = np.minimum(ends[:, None], ends[None, :]) - np.maximum(starts[:, None], starts[None, :]) + 1
    inter = np.maximum(inter, 0)
    union = lengths[:, None] + lengths[None, :] - inter
    matches = (inter >= IOU_THRESHOLD * union).astype(np.float32)  # exact: small integers times 0.5
    return starts.astype(np.uint64), ends.astype(np.uint64), masks, matches


def _runs(codes: np.ndarray, num_segments: int) -> np.ndarray:
    """``[R, I]``: which intervals are events (maximal runs of ones) of each row code."""
    starts, ends, masks, _ = _interval_masks(num_segments)
    x = codes.astype(np.uint64)[:, None]
    one = np.uint64(1)
    run_starts = x & ~(x << one)
    run_ends = x & ~(x >> one)
    return (((x & masks) == masks) & ((run_starts >> starts) & one).astype(bool)
            & ((run_ends >> ends) & one).astype(bool))


def batch_event_level_f1(pred, gt) -> np.ndarray:
    """Event-level F1 of each video of binary matrices ``[N, K, T]``; returns ``[N]``.

    An event is a maximal run of positive segments in one row; a predicted event is a true
    positive when some true event of the same row overlaps it with IoU >= 0.5, and a true
    event is missed when no predicted event does.
    """
    pred, gt = _pair(pred, gt, 3)
    return _event_f1(_row_codes(pred), _row_codes(gt), pred.shape[2])


def _event_f1(p: np.ndarray, g: np.ndarray, num_segments: int) -> np.ndarray:
    active = (p | g) != 0
    # Work out events once per distinct row code, then gather per row.
    pred_codes, pred_row = np.unique(p[active], return_inverse=True)
    gt_codes, gt_row = np.unique(g[active], return_inverse=True)
    matches = _interval_masks(num_segments)[3]
    pred_runs, gt_runs = _runs(pred_codes, num_segments), _runs(gt_codes, num_segments)
    pred_reach = (pred_runs.astype(np.float32) @ matches) > 0  # intervals some predicted event matches
    gt_reach = (gt_runs.astype(np.float32) @ matches) > 0
    tp = (pred_runs[pred_row] & gt_reach[gt_row]).sum(axis=1)
    fp = pred_runs.sum(axis=1)[pred_row] - tp
    fn = (gt_runs[gt_row] & ~pred_reach[pred_row]).sum(axis=1)
    f = np.zeros(active.shape, dtype=np.float64)
    f[active] = 2 * tp / (2 * tp + fn + fp)
    return _mean_over_active_rows(f, active, np.float64)


def segment_level_f1(pred, gt, dtype=np.float64) -> float:
    """Segment-level F1 of one video's binary matrices ``[K, T]``."""
    pred, gt = _pair(pred, gt, 2)
    return float(batch_segment_level_f1(pred[None], gt[None], dtype)[0])


def event_level_f1(pred, gt) -> float:
    """Event-level F1 of one video's binary matrices ``[K, T]``."""
    pred, gt = _pair(pred, gt, 2)
    return float(batch_event_level_f1(pred[None], gt[None])[0])


def labels_to_matrix(labels, num_classes: int) -> np.ndarray:
    """One-hot ``[N, K, T]`` of per-segment class labels ``[N, T]`` (background is a class)."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be [N, T], got shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}), got {labels.min()}..{labels.max()}")
    return labels[:, None, :] == np.arange(num_classes)[None, :, None]


def _mean_f1(values: np.ndarray, batch: int | None) -> float:
    if batch is None:
        return float(np.mean(values, dtype=np.float64))
    return float(np.mean([np.mean(values[start:start + batch], dtype=np.float64)
                          for start in range(0, len(values), batch)]))


@dataclass(frozen=True)
class VideoScores:
    """Per-video results; summaries over any subset of videos are pure reductions of these."""

    segment_f1: np.ndarray  # [N]
    event_f1: np.ndarray  # [N]
    correct_segments: np.ndarray  # [N] number of segments whose label is right
    num_segments: int  # T

    def summary(self, mask=None, f1_batch: int | None = None) -> dict[str, float]:
        """Accuracy (pooled over segments), mean F1s and their average over the masked videos.
        ``f1_batch``: the published script's aggregation instead, each F1 the mean of per-batch
        means over consecutive batches of that many of the masked videos (a partial last batch
        weighs as much as a full one)."""
        keep = np.ones(len(self.segment_f1), bool) if mask is None else np.asarray(mask, bool)
        count = int(keep.sum())
        if count == 0:
            raise ValueError("cannot summarise an empty set of videos")
        result = {
            "accuracy": float(self.correct_segments[keep].sum() / (count * self.num_segments)),
            "segment_f1": _mean_f1(self.segment_f1[keep], f1_batch),
            "event_f1": _mean_f1(self.event_f1[keep], f1_batch),
        }
        result["average"] = (result["accuracy"] + result["segment_f1"] + result["event_f1"]) / 3
        return result


def score_videos(pred_matrix, gt_matrix, pred_labels, gt_labels,
                 segment_f1_dtype=PUBLISHED_SEGMENT_F1_DTYPE) -> VideoScores:
    """Score ``N`` videos from binary matrices ``[N, K, T]`` and per-segment labels ``[N, T]``."""
    pred_labels, gt_labels = np.asarray(pred_labels), np.asarray(gt_labels)
    if pred_labels.shape != gt_labels.shape or pred_labels.ndim != 2:
        raise ValueError(f"label shapes must be equal [N, T]: {pred_labels.shape} vs {gt_labels.shape}")
    pred_matrix, gt_matrix = _pair(pred_matrix, gt_matrix, 3)
    p, g = _row_codes(pred_matrix), _row_codes(gt_matrix)
    return VideoScores(
        segment_f1=_segment_f1(p, g, segment_f1_dtype).astype(np.float64),
        event_f1=_event_f1(p, g, gt_matrix.shape[2]),
        correct_segments=(pred_labels == gt_labels).sum(axis=1),
        num_segments=gt_labels.shape[1],
    )
