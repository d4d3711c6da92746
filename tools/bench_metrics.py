"""Benchmark: score every OV-AVEBench test video, vectorised vs. a straightforward per-video loop.

Real segment labels from the annotation files, random similarities decoded with ``v01``.
Prints both times and their ratio, measured in this one run.

    python tools/bench_metrics.py --meta-csv ../shared/ovavebench/ovave_dataset_meta.csv \
        --label-json ../shared/ovavebench/released_ovavel_dataset_anno.json
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import metrics  # noqa: E402
from common import cli  # noqa: E402
from data.annotations import AnnotationIndex  # noqa: E402
from models.strategies import decode  # noqa: E402
from tools import annotation_files  # noqa: E402


def _events(row: np.ndarray) -> list[tuple[int, int]]:
    events, start = [], None
    for t, on in enumerate(list(row) + [0]):
        if on and start is None:
            start = t
        elif not on and start is not None:
            events.append((start, t - 1))
            start = None
    return events


def _iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    inter = max(0, min(a[1], b[1]) - max(a[0], b[0]) + 1)
    return inter / ((a[1] - a[0] + 1) + (b[1] - b[0] + 1) - inter)


def loop_scores(pred, gt, pred_labels, gt_labels) -> metrics.VideoScores:
    """The definitions written out one video and one row at a time (the published style)."""
    pred, gt = np.asarray(pred, bool), np.asarray(gt, bool)
    seg, eve = [], []
    for p_video, g_video in zip(pred, gt):
        seg_rows, eve_rows = [], []
        for p, g in zip(p_video, g_video):
            if not (p.any() or g.any()):
                continue
            tp, fp, fn = np.float32((p & g).sum()), np.float32((p & ~g).sum()), np.float32((~p & g).sum())
            seg_rows.append(np.float32(2 * tp / (2 * tp + fn + fp)))
            p_events, g_events = _events(p), _events(g)
            e_tp = sum(any(_iou(x, y) >= 0.5 for y in g_events) for x in p_events)
            e_fn = sum(not any(_iou(x, y) >= 0.5 for y in p_events) for x in g_events)
            e_fp = len(p_events) - e_tp
            eve_rows.append(2 * e_tp / (2 * e_tp + e_fn + e_fp))
        total = np.float32(0)
        for value in seg_rows:
            total = np.float32(total + value)
        seg.append(float(total / np.float32(len(seg_rows))) if seg_rows else 1.0)
        eve.append(sum(eve_rows) / len(eve_rows) if eve_rows else 1.0)
    correct = (np.asarray(pred_labels) == np.asarray(gt_labels)).sum(axis=1)
    return metrics.VideoScores(np.array(seg), np.array(eve), correct, np.asarray(gt_labels).shape[1])


def _best_time(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = annotation_files.parse_arguments(parser, argv)

    videos = AnnotationIndex.load(args.meta_csv, args.label_json).videos("test")
    num_classes = len(videos.vocabulary)
    gt_labels = videos.segment_classes
    gt_matrix = metrics.labels_to_matrix(gt_labels, num_classes)
    rng = np.random.default_rng(0)
    sims = rng.standard_normal((2, len(videos), gt_labels.shape[1], num_classes)).astype(np.float32)
    decoded = decode("v01", sims[0], sims[1])

    def vectorised():
        scores = metrics.score_videos(decoded.pred_matrix, gt_matrix, decoded.segment_labels, gt_labels)
        return [scores.summary(mask) for mask in (videos.seen, ~videos.seen, None)]

    def loop():
        scores = loop_scores(decoded.pred_matrix, gt_matrix, decoded.segment_labels, gt_labels)
        return [scores.summary(mask) for mask in (videos.seen, ~videos.seen, None)]

    assert np.allclose([list(s.values()) for s in vectorised()], [list(s.values()) for s in loop()], atol=1e-9)
    fast = _best_time(vectorised, args.repeats)
    slow = _best_time(loop, 1)
    decode_time = _best_time(lambda: decode("v01", sims[0], sims[1]), args.repeats)
    print(f"machine: {platform.processor() or platform.machine()}, {platform.python_version()}, "
          f"numpy {np.__version__}")
    print(f"videos scored: {len(videos)} (seen/unseen/total summaries), {num_classes} classes")
    print(f"decode v01:           {decode_time * 1e3:8.1f} ms")
    print(f"vectorised metrics:   {fast * 1e3:8.1f} ms (best of {args.repeats})")
    print(f"per-video loop:       {slow * 1e3:8.1f} ms")
    print(f"speed-up:             {slow / fast:8.1f}x")
    print(batched_f1_difference(videos, gt_labels, gt_matrix, num_classes, rng))


def batched_f1_difference(videos, gt_labels, gt_matrix, num_classes: int, rng) -> str:
    """How far the published F1 aggregation (per-batch means of 32 test videos, eval.f1_batch)
    lies from the per-video mean, for predictions that are the truth with a third of the
    segments relabelled at random (F1s spread over the whole range, as real ones do)."""
    labels = np.where(rng.random(gt_labels.shape) < 1 / 3, rng.integers(0, num_classes, gt_labels.shape), gt_labels)
    scores = metrics.score_videos(metrics.labels_to_matrix(labels, num_classes), gt_matrix, labels, gt_labels)
    lines = ["F1 per batch of 32 (published) minus per video, in points:"]
    for name, mask in (("seen", videos.seen), ("unseen", ~videos.seen), ("total", np.ones(len(videos), bool))):
        plain, batched = scores.summary(mask), scores.summary(mask, f1_batch=32)
        lines.append(f"  {name:<7}{int(mask.sum()):>5} videos ({int(mask.sum()) % 32:>2} in the last batch): "
                     f"Seg-F1 {100 * (batched['segment_f1'] - plain['segment_f1']):+.3f}, "
                     f"Eve-F1 {100 * (batched['event_f1'] - plain['event_f1']):+.3f}")
    return "\n".join(lines)


if __name__ == "__main__":
    cli.run(main)
