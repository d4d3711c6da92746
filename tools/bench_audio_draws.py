"""Benchmark: what the published training's stochastic audio costs here, measured in one run.

1. Extraction on synthetic media (random weights, --size): the eval-mode extraction of the
   train split (audio + frames) against one stochastic audio draw of it (audio only); plus,
   counted on the meta device, the same ratio of encoder work at ImageBind-Huge's size.
2. One training epoch of the default config on a synthetic cache of OV-AVEBench's real train
   split (1024-d float32): eval-mode audio against an audio draw (best of two runs each).

    python tools/bench_audio_draws.py            # annotations found as tools/annotation_files.py says
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import cli  # noqa: E402
from common import config as config_io  # noqa: E402
from common.schema import Config  # noqa: E402
from data.annotations import AnnotationIndex  # noqa: E402
from data.audio_draws import AudioDraws  # noqa: E402
from data.feature_cache import FeatureCache  # noqa: E402
from data.synthetic import SyntheticSpec, make_synthetic_benchmark  # noqa: E402
from models.temporal import TemporalModel  # noqa: E402
from pipeline import training  # noqa: E402
from pipeline.extraction import extract  # noqa: E402
from pipeline.synthetic_cache import make_synthetic_cache  # noqa: E402
from pipeline.trainable import TemporalLayers  # noqa: E402
from tools import annotation_files  # noqa: E402
from tools.bench_encoders import flops_per_segment  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def extraction_times(size: str, train_per_class: int, workers: int) -> tuple[float, float, int]:
    with tempfile.TemporaryDirectory() as work:
        paths = make_synthetic_benchmark(Path(work) / "bench", SyntheticSpec(train_per_class=train_per_class))
        config = config_io.load(Config, REPO / "configs" / "v1_fine_tuning.yaml", [
            f"data.meta_csv={paths['meta_csv']}", f"data.label_json={paths['label_json']}",
            f"data.media_root={paths['media_root']}", f"cache.dir={work}/cache", f"encoder.size={size}",
            "encoder.checkpoint=random", "device=cpu", f"extract.num_workers={workers}"])
        index = AnnotationIndex.load(paths["meta_csv"], paths["label_json"])
        start = time.perf_counter()
        extract(config, ["train"], index=index)
        eval_mode = time.perf_counter() - start
        start = time.perf_counter()
        extract(config, ["train"], index=index, audio_draws=1)
        draw = time.perf_counter() - start
        return eval_mode, draw, len(index.videos("train"))


def epoch_times(meta_csv, label_json) -> tuple[float, float, int]:
    with tempfile.TemporaryDirectory() as work:
        config = annotation_files.synthetic_cache_config("v1_fine_tuning.yaml", meta_csv, label_json, work,
                                                         "device=cpu", "train.audio_draws=1")
        index = AnnotationIndex.load(meta_csv, label_json)
        make_synthetic_cache(config, index, splits=("train",))
        cache = FeatureCache(config.cache.dir)
        data = training.load_split(cache, index, "train", index.seen_vocabulary)
        draws = AudioDraws(cache, "train", 1, config.train.audio_drop_path)
        text = torch.randn(len(index.seen_vocabulary), 1024)
        times = {False: [], True: []}
        for with_draws in (None, draws, None, draws):  # twice each, alternating: the best of two
            torch.manual_seed(0)
            model = TemporalModel(1024, config.temporal)
            optimizer = torch.optim.Adam(model.parameters(), lr=config.train.lr)
            batches = training.SegmentBatches(data, config.train.batch_size, 0, torch.device("cpu"), draws=with_draws)
            start = time.perf_counter()
            training.train_one_epoch(model, optimizer, batches.epoch(1), (text, text), TemporalLayers(config.temporal),
                                     config.train.grad_clip)
            times[with_draws is not None].append(time.perf_counter() - start)
        return min(times[False]), min(times[True]), len(data.rows)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="small", help="encoder size for the extraction part (random weights)")
    parser.add_argument("--train-per-class", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    args = annotation_files.parse_arguments(parser, argv)
    eval_mode, draw, videos = extraction_times(args.size, args.train_per_class, args.workers)
    huge = flops_per_segment("huge")
    plain, with_draw, train_videos = epoch_times(args.meta_csv, args.label_json)
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print(f"extraction, {videos} synthetic train videos, ImageBind-{args.size} (random weights), CPU:")
    print(f"  eval-mode audio + frames: {eval_mode:6.1f} s | one audio draw: {draw:6.1f} s | "
          f"ratio {draw / eval_mode:.2f}")
    print(f"  ImageBind-huge encoder work of one draw / eval-mode: {huge['audio'] / (huge['audio'] + huge['vision']):.3f} "
          "(FLOPs; decoding the audio only adds little)")
    print(f"training epoch, {train_videos} train videos (synthetic 1024-d float32 cache):")
    print(f"  eval-mode audio: {plain:6.1f} s | audio draw: {with_draw:6.1f} s | ratio {with_draw / plain:.2f}")


if __name__ == "__main__":
    cli.run(main)
