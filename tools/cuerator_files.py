"""Move features between a feature cache and CueRator's file layout (pipeline/cuerator_files.py).

    python tools/cuerator_files.py export --output ../cuerator            # the configured cache -> their files
    python tools/cuerator_files.py import --input ../cuerator cache.dir=cache/from_cuerator
    python tools/cuerator_files.py import --input ../cuerator cache.dir=cache/from_cuerator \\
        --train-categories meta_anno_files/ovave_train_close_categories.csv \\
        --test-categories meta_anno_files/ovave_total_close_open_categories.csv

Export writes data/embeddings/<encoder>/ and data/similarities/<encoder>/ under --output (their
loaders read them as they are); import makes a new cache at cache.dir from such a folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import cli  # noqa: E402
from pipeline import cuerator_files  # noqa: E402

DEFAULT_CONFIG = "configs/cuerator_policy.yaml"


def main(argv=None) -> None:
    parser = cli.parser_with_config(__doc__, DEFAULT_CONFIG)
    parser.add_argument("direction", choices=("export", "import"))
    parser.add_argument("--output", help="export: the folder to write data/ under")
    parser.add_argument("--input", help="import: the folder holding data/embeddings and data/similarities")
    parser.add_argument("--encoder-name", default=None,
                        help="the <encoder> folder name in their layout (default: encoder.family, e.g. imagebind)")
    parser.add_argument("--splits", nargs="+", choices=cuerator_files.SPLITS, default=list(cuerator_files.SPLITS),
                        help="export: the splits to write")
    parser.add_argument("--train-categories", help="import: their CSV of the train classes, when the files do not "
                                                   "name their classes")
    parser.add_argument("--test-categories", help="import: their CSV of all classes (val and test)")
    args = cli.parse(parser, argv)
    config = cli.load_config(args)
    encoder = args.encoder_name or config.encoder.family
    if args.direction == "export":
        if not args.output:
            parser.error("export needs --output")
        for path in cuerator_files.export(config, args.output, encoder, args.splits):
            print(f"wrote {path}")
    else:
        if not args.input:
            parser.error("import needs --input")
        categories = {"train": args.train_categories, "test": args.test_categories}
        cache = cuerator_files.import_files(config, args.input, encoder, categories)
        print(f"feature cache imported: {cache.root}")


if __name__ == "__main__":
    cli.run(main)
