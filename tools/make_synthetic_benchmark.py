"""Write a small synthetic OV-AVEBench (meta CSV, label JSON, WAVs, PNG frames) in the real
layout: for the demo, and for trying the pipeline on a machine without the real data.

    python tools/make_synthetic_benchmark.py --output demo/ovavebench
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data.synthetic import SyntheticSpec, make_synthetic_benchmark  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", required=True)
    parser.add_argument("--train-per-class", type=int, default=8)
    parser.add_argument("--val-per-class", type=int, default=2)
    parser.add_argument("--test-per-class", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    spec = SyntheticSpec(train_per_class=args.train_per_class, val_per_class=args.val_per_class,
                         test_per_class=args.test_per_class, seed=args.seed)
    paths = make_synthetic_benchmark(args.output, spec)
    print(f"synthetic benchmark: {len(spec.seen_classes)} seen + {len(spec.unseen_classes)} unseen classes in "
          f"{paths['media_root']}")


if __name__ == "__main__":
    main()
