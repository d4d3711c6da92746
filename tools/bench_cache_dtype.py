"""Benchmark: how many decisions a float16 feature cache changes against float32.

A synthetic float32 cache of OV-AVEBench's test split (1024-d, class directions plus noise,
see data/synthetic.py) is decoded as it is and after a round trip through float16 (segment
and text embeddings, as a float16 cache stores them); prints how many segment labels and
videos change for each decoder and how much the metrics move.

    python tools/bench_cache_dtype.py --separation 0.1
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import cli  # noqa: E402
from data.annotations import AnnotationIndex  # noqa: E402
from models.similarity import cosine  # noqa: E402
from models.strategies import decode  # noqa: E402
from pipeline.evaluate import score  # noqa: E402
from pipeline.synthetic_cache import make_synthetic_cache  # noqa: E402
from tools import annotation_files  # noqa: E402


def similarities(audio: np.ndarray, vision: np.ndarray, text_audio: np.ndarray, text_vision: np.ndarray):
    return (cosine(torch.from_numpy(audio), torch.from_numpy(text_audio)).numpy(),
            cosine(torch.from_numpy(vision), torch.from_numpy(text_vision)).numpy())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--separation", type=float, default=0.1,
                        help="class signal against unit noise; small = many near ties")
    args = annotation_files.parse_arguments(parser, argv)
    index = AnnotationIndex.load(args.meta_csv, args.label_json)
    with tempfile.TemporaryDirectory() as work:
        config = annotation_files.synthetic_cache_config("v0_training_free.yaml", args.meta_csv, args.label_json,
                                                         work, "cache.dtype=float32")
        cache = make_synthetic_cache(config, index, separation=args.separation, splits=("test",))
        features = cache.split("test")
        audio, vision = np.array(features.audio), np.array(features.vision)
        text_audio, text_vision = (cache.text(index.all_vocabulary.names, "{}", m) for m in ("audio", "vision"))
    videos = index.videos("test", vocabulary=index.all_vocabulary)
    full = similarities(audio, vision, text_audio, text_vision)
    half = similarities(*(x.astype(np.float16).astype(np.float32) for x in (audio, vision, text_audio, text_vision)))
    print(f"test split: {len(videos)} videos x 10 segments, {len(index.all_vocabulary)} classes, "
          f"separation {args.separation}")
    print(f"{'decoder':<8}{'segments changed':>20}{'videos changed':>18}{'largest metric change (points)':>34}")
    nothing = videos.select(np.zeros(len(videos), bool))
    for strategy in ("v0", "v01", "v1"):
        a, b = decode(strategy, *full), decode(strategy, *half)
        changed = a.segment_labels != b.segment_labels
        if a.is_event is not None:
            changed |= a.is_event != b.is_event
        metrics_a = score(videos, a, strategy, nothing).summaries
        metrics_b = score(videos, b, strategy, nothing).summaries
        largest = max(abs(metrics_a[s][k] - metrics_b[s][k]) for s in metrics_a for k in metrics_a[s])
        print(f"{strategy:<8}{int(changed.sum()):>12} ({100 * changed.mean():.3f}%){int(changed.any(1).sum()):>10} "
              f"({100 * changed.any(1).mean():.2f}%){100 * largest:>26.3f}")


if __name__ == "__main__":
    cli.run(main)
