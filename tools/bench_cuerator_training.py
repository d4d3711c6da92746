"""Benchmark: CueRator's policy training at the real size, on a synthetic 1024-d feature cache of
OV-AVEBench's videos (13,182 train / 5,798 val / 5,820 test), with configs/cuerator_policy.yaml.

Times one REINFORCE epoch (and where its time goes: reading embeddings, the policy's forward and
backward, the rule's rewards), one validation pass, and extrapolates the published 20 epochs.

    python tools/bench_cuerator_training.py
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
from models import cuerator  # noqa: E402
from pipeline.cuerator_training import CueRatorRun  # noqa: E402
from pipeline.synthetic_cache import make_synthetic_cache  # noqa: E402
from tools import annotation_files  # noqa: E402

BUDGET_MINUTES = 15


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    args = annotation_files.parse_arguments(parser, argv)

    with tempfile.TemporaryDirectory() as work:
        config = annotation_files.synthetic_cache_config("cuerator_policy.yaml", args.meta_csv, args.label_json, work,
                                                         f"device={args.device}", "cuerator.tensorboard=false",
                                                         "cache.dtype=float16")
        index = AnnotationIndex.load(args.meta_csv, args.label_json)
        start = time.perf_counter()
        make_synthetic_cache(config, index, separation=0.3)
        print(f"synthetic cache written in {time.perf_counter() - start:.1f} s")
        start = time.perf_counter()
        run = CueRatorRun(config, Path(work) / "run")
        print(f"splits read and similarities computed in {time.perf_counter() - start:.1f} s")
        print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
              f"{torch.get_num_threads()} threads, device {run.device}")
        print("videos: " + ", ".join(f"{split} {len(data.rows)}" for split, data in run.data.items()))
        torch.manual_seed(0)
        policy = run._policy()
        print(f"policy: {sum(p.numel() for p in policy.parameters()) / 1e6:.2f} M parameters")
        optimizer = torch.optim.AdamW(policy.parameters(), lr=config.cuerator.lr)
        start = time.perf_counter()
        run._train_epoch(policy, optimizer, 1)
        epoch = time.perf_counter() - start
        start = time.perf_counter()
        run.evaluate_policy(policy, config.cuerator.selection)
        validation = time.perf_counter() - start
        start = time.perf_counter()
        train = run.data["train"]
        cuerator.candidate_accuracies(*train.rule_inputs(), train.truth, cuerator.sobol_candidates(64),
                                      device=run.device)
        per_candidate = (time.perf_counter() - start) / 64

    steps = -(-len(train.rows) // config.cuerator.batch_size)
    print(f"one REINFORCE epoch ({steps} steps of {config.cuerator.batch_size} videos x K = "
          f"{config.cuerator.samples}): {epoch:6.1f} s  (" + ", ".join(
              f"{stage} {seconds:.1f} s" for stage, seconds in run.timings.items()) + ")")
    print(f"one validation pass:            {validation:6.1f} s")
    total = config.cuerator.epochs * (epoch + validation)
    print(f"{config.cuerator.epochs} epochs with validation:    {total / 60:6.1f} min "
          f"({'within' if total <= BUDGET_MINUTES * 60 else 'over'} the {BUDGET_MINUTES}-minute budget)")
    candidates = config.cuerator.oracle_candidates
    print(f"global rule: {per_candidate * 1000:.1f} ms per candidate on the training split; the published "
          f"{candidates} candidates: {per_candidate * candidates / 60:.0f} min")


if __name__ == "__main__":
    cli.run(main)
