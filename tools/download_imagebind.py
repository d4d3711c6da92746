"""Download the official ImageBind-Huge checkpoint. Nothing else in the toolkit downloads;
this runs only when you call it.

    python tools/download_imagebind.py --output .checkpoints/imagebind_huge.pth
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.checkpoint import DEFAULT_CHECKPOINT, OFFICIAL_URL  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default=DEFAULT_CHECKPOINT, help=f"where to save it (default {DEFAULT_CHECKPOINT})")
    parser.add_argument("--url", default=OFFICIAL_URL)
    args = parser.parse_args(argv)
    output = Path(args.output)
    if output.exists():
        print(f"{output} already exists; delete it first to download again")
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    import torch.hub  # writes to a temporary file and renames it at the end: no half files

    print(f"downloading {args.url} -> {output} (about 4.5 GB)")
    torch.hub.download_url_to_file(args.url, str(output), progress=True)


if __name__ == "__main__":
    main()
