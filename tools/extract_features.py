"""Extract the feature cache: per-segment ImageBind embeddings of every video, once.

    python tools/extract_features.py --config configs/v0_training_free.yaml --splits test
    torchrun --nproc_per_node=8 tools/extract_features.py --config ...   # one shard per GPU

    python tools/extract_features.py --config ... --splits test --refresh   # again, e.g. after fixing media

With train in --splits, train.audio_draws stochastic audio draws of it are extracted too
(data/audio_draws.py). Killed runs resume where they stopped. Across nodes, cache.dir must be a shared folder. One
extraction job owns a cache folder at a time; a second one stops at once.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import cli  # noqa: E402
from common.distributed import init_process, shutdown  # noqa: E402
from data.annotations import SPLITS  # noqa: E402
from pipeline.extraction import extract, wanted_provenance  # noqa: E402

DEFAULT_CONFIG = "configs/v1_fine_tuning.yaml"


def main(argv=None) -> None:
    parser = cli.parser_with_config(__doc__, DEFAULT_CONFIG)
    parser.add_argument("--splits", nargs="+", choices=SPLITS, default=list(SPLITS))
    parser.add_argument("--refresh", action="store_true",
                        help="drop the --splits from the cache and extract them again (e.g. after fixing videos "
                             "that extract.skip_bad_media left out)")
    parser.add_argument("--print-provenance", action="store_true",
                        help="print the provenance.json this config expects (to write a cache by hand) and exit")
    args = cli.parse(parser, argv)
    config = cli.load_config(args)
    if args.print_provenance:
        print(json.dumps(wanted_provenance(config), indent=2, sort_keys=True))
        return
    process = init_process()
    try:
        cache = extract(config, args.splits, process, refresh=args.splits if args.refresh else (),
                        audio_draws=config.train.audio_draws)
        if process.is_main:
            print(f"feature cache ready: {cache.root}")
    finally:
        shutdown(process)


if __name__ == "__main__":
    cli.run(main)
