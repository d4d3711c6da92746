"""Write video files from the synthetic benchmark's test clips (and one longer video of several
clips in a row), for trying localize.py and the web app on the demo data.

    python tools/make_demo_videos.py --benchmark demo/ovavebench --output demo/videos
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data.synthetic import write_demo_videos  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmark", required=True, help="a folder written by tools/make_synthetic_benchmark.py")
    parser.add_argument("--output", required=True)
    args = parser.parse_args(argv)
    try:
        written = write_demo_videos(args.benchmark, args.output)
    except FileNotFoundError as err:
        sys.exit(f"error: {err}")
    print(f"{len(written)} videos in {args.output}")


if __name__ == "__main__":
    main()
