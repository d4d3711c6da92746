"""Benchmark: the fine-tuning baseline on a synthetic feature cache of the real size
(OV-AVEBench's 13,182 train / 5,798 val / 5,820 test videos, 1024-d float16 features).

Times one training epoch, one validation pass and the full default run (5 epochs with
selection on val, then test), with the default config, on this machine.

    python tools/bench_training.py --meta-csv ../shared/ovavebench/ovave_dataset_meta.csv \
        --label-json ../shared/ovavebench/released_ovavel_dataset_anno.json
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
from data.annotations import AnnotationIndex  # noqa: E402
from pipeline import training  # noqa: E402
from pipeline.synthetic_cache import make_synthetic_cache  # noqa: E402
from tools import annotation_files  # noqa: E402

PUBLISHED_EPOCH_MINUTES = 26  # reported by a user of the published code, on a GPU


def one_epoch(trainer: training.Trainer, config) -> tuple[torch.nn.Module, float]:
    """A fresh model of the trainer's kind after one training epoch, and the epoch's seconds."""
    torch.manual_seed(0)
    model = trainer.kind.build(trainer.widths).to(trainer.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.train.lr)
    batches = training.SegmentBatches(trainer.train_data, config.train.batch_size, 0, trainer.device)
    start = time.perf_counter()
    training.train_one_epoch(model, optimizer, batches.epoch(1), trainer.text_seen, trainer.kind,
                             config.train.grad_clip)
    return model, time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    args = annotation_files.parse_arguments(parser, argv)

    with tempfile.TemporaryDirectory() as work:
        config = annotation_files.synthetic_cache_config("v1_fine_tuning.yaml", args.meta_csv, args.label_json, work,
                                                         f"device={args.device}", "train.tensorboard=false")
        index = AnnotationIndex.load(args.meta_csv, args.label_json)
        start = time.perf_counter()
        make_synthetic_cache(config, index)
        print(f"synthetic cache written in {time.perf_counter() - start:.1f} s")

        trainer = training.Trainer(config, Path(work) / "run")
        print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
              f"{torch.get_num_threads()} threads, device {trainer.device}")
        print(f"videos: train {len(trainer.train_data.rows)}, val {len(trainer.selection_data.rows)}, "
              f"test {len(trainer.test_data.rows)}")
        model, epoch = one_epoch(trainer, config)
        start = time.perf_counter()
        trainer.kind.evaluate(model, trainer.selection_data, trainer.text_all, config)
        validation = time.perf_counter() - start
        start = time.perf_counter()
        trainer.fit()
        full = time.perf_counter() - start

    steps = -(-len(trainer.train_data.rows) // config.train.batch_size)
    print(f"one training epoch ({steps} steps of {config.train.batch_size}): {epoch:6.1f} s")
    print(f"one validation pass:                       {validation:6.1f} s")
    print(f"full default run ({config.train.epochs} epochs + selection + test):   {full:6.1f} s")
    print(f"published pipeline, reported: ~{PUBLISHED_EPOCH_MINUTES} min per epoch on a GPU "
          f"({PUBLISHED_EPOCH_MINUTES * 60 / epoch:.0f}x this epoch)")


if __name__ == "__main__":
    cli.run(main)
