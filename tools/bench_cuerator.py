"""Benchmark: CueRator's rule (models/cuerator.py) vectorised over videos against a per-video loop
of the same formula (the published code's shape: thresholds and vote for one video at a time),
on the test split's shape (5,820 videos, 10 segments, 67 classes, random similarities), in one run.
Both run the same torch operations (models/cuerator.py) and must give the same labels.

    python tools/bench_cuerator.py
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models import cuerator  # noqa: E402


def per_video_loop(sim_audio, sim_visual, params) -> np.ndarray:
    """The same rule and the same torch operations, one video per call (the published code's
    shape: thresholds and the vote for one video's [T, C] similarities at a time)."""
    labels = []
    with torch.inference_mode():
        p = torch.from_numpy(params)[:, None, None]
        for a, v in zip(torch.from_numpy(sim_audio), torch.from_numpy(sim_visual)):
            labels.append(cuerator.vote(a, v, *cuerator.combine(cuerator.cues(a, v), p)))
    return torch.stack(labels).numpy()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=5820)
    parser.add_argument("--classes", type=int, default=67)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    shape = (args.videos, 10, args.classes)
    sim_audio = (0.2 + 0.05 * rng.standard_normal(shape)).astype(np.float32)
    sim_visual = (0.2 + 0.05 * rng.standard_normal(shape)).astype(np.float32)
    params = cuerator.sobol_candidates(1)[0]
    cuerator.decide(sim_audio[:8], sim_visual[:8], params)  # warm-up: torch's first calls
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        fast = cuerator.decide(sim_audio, sim_visual, params)
        timings.append(time.perf_counter() - start)
    vectorised = sorted(timings)[1]  # the median of three
    start = time.perf_counter()
    slow = per_video_loop(sim_audio, sim_visual, params)
    looped = time.perf_counter() - start
    assert np.array_equal(fast, slow)
    print(f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}, torch "
          f"{torch.__version__} ({torch.get_num_threads()} threads); {args.videos} videos x 10 segments x "
          f"{args.classes} classes")
    print(f"vectorised: {vectorised:.3f} s | per-video loop: {looped:.2f} s | {looped / vectorised:.0f}x faster "
          "(same labels)")


if __name__ == "__main__":
    main()
