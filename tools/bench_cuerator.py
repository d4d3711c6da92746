"""Benchmark: CueRator's rule (models/cuerator.py) vectorised over videos against a per-video loop
of the same formula (the published code's shape: thresholds per video, then a vote per segment),
on the test split's shape (5,820 videos, 10 segments, 67 classes, random similarities), in one run.

    python tools/bench_cuerator.py
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models import cuerator  # noqa: E402


def per_video_loop(sim_audio, sim_visual, params) -> np.ndarray:
    """The same rule, one video and one segment at a time."""
    labels = np.empty(sim_audio.shape[:2], np.int64)
    for i in range(len(sim_audio)):
        audio, visual = cuerator.thresholds(sim_audio[i:i + 1], sim_visual[i:i + 1], params)
        for t in range(sim_audio.shape[1]):
            a_pass = np.flatnonzero(sim_audio[i, t] > audio[0, t])
            v_pass = np.flatnonzero(sim_visual[i, t] > visual[0, t])
            labels[i, t] = sim_audio.shape[2]
            if len(a_pass) and len(v_pass):
                a_vote = a_pass[np.argmax(sim_audio[i, t, a_pass])]
                if a_vote == v_pass[np.argmax(sim_visual[i, t, v_pass])]:
                    labels[i, t] = a_vote
    return labels


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
    start = time.perf_counter()
    fast = cuerator.decide(sim_audio, sim_visual, params)
    vectorised = time.perf_counter() - start
    start = time.perf_counter()
    slow = per_video_loop(sim_audio, sim_visual, params)
    looped = time.perf_counter() - start
    assert np.array_equal(fast, slow)
    print(f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"numpy {np.__version__}; {args.videos} videos x 10 segments x {args.classes} classes")
    print(f"vectorised: {vectorised:.3f} s | per-video loop: {looped:.2f} s | {looped / vectorised:.0f}x faster "
          "(same labels)")


if __name__ == "__main__":
    main()
