"""Localize audible and visible events in your own videos with your own words: per-second labels,
a confidence per second and the events, from the training-free rule or a fine-tuning checkpoint.

    python localize.py clip.mp4 --classes "dog barking,car horn"
    python localize.py videos/ --classes-file my_classes.txt --checkpoint runs/v1_fine_tuning/checkpoints/best.pt
    python localize.py clip.mkv --benchmark-classes encoder.size=tiny encoder.checkpoint=random  # no weights needed
    torchrun --nproc_per_node=4 localize.py videos/ --classes "..."      # videos shared out, one merged output

Writes events.json, segments.csv and a timeline per video to --output (default: a new folder
under runs/localize/). Exit status 0 when every video was localized, 1 when some were not
(each named), 2 for a usage error.
"""

from __future__ import annotations

import sys
from pathlib import Path

from common import cli
from common.distributed import init_process, shutdown
from data.annotations import AnnotationIndex
from models import strategies
from models.families import family
from pipeline.localize import Localizer, UsageError, class_list, find_videos
from pipeline.localize_outputs import write_outputs
from pipeline.outputs import RunWriter

DEFAULT_CONFIG = "configs/localize.yaml"


def class_names(args, config) -> list[str]:
    given = [bool(args.classes), bool(args.classes_file), args.benchmark_classes]
    if sum(given) != 1:
        raise UsageError("give the class names one way: --classes \"a,b\", --classes-file F or --benchmark-classes")
    if args.classes:
        return args.classes.split(",")
    if args.classes_file:
        path = Path(args.classes_file)
        if not path.is_file():
            raise UsageError(f"--classes-file {path}: no such file")
        return [line for line in path.read_text().splitlines() if line.strip()]
    return list(AnnotationIndex.load(config.data.meta_csv, config.data.label_json).all_vocabulary.names[:-1])


def main(argv=None) -> None:
    parser = cli.parser_with_config(__doc__, DEFAULT_CONFIG, list_overrides=False)
    parser.add_argument("videos", nargs="+", metavar="VIDEO_OR_FOLDER")
    parser.add_argument("--classes", help="comma-separated class names")
    parser.add_argument("--classes-file", help="one class name per line")
    parser.add_argument("--benchmark-classes", action="store_true", help="OV-AVEBench's 67 class names")
    parser.add_argument("--checkpoint", help="a fine-tuning checkpoint (temporal layers + v1 scoring)")
    parser.add_argument("--strategy", default=strategies.DEFAULT, choices=strategies.names("similarities"),
                        help=f"training-free rule (default {strategies.DEFAULT})")
    parser.add_argument("--threshold", type=float, default=0.0, help="drop events scoring below this")
    parser.add_argument("--output", help="output folder (default: a new folder under runs/localize/)")
    args = cli.parse(parser, argv)
    config = cli.load_config(args)
    names = class_list(class_names(args, config))  # stripped and checked, as the localizer uses them
    process = init_process()
    try:
        localizer = Localizer(config, args.checkpoint, args.strategy, args.threshold, process)
        mine = localizer.localize(args.videos, names)
        everything = process.gather(mine)
        if not process.is_main:
            return
        order = {str(path): i for i, path in enumerate(find_videos(args.videos))}
        results = sorted((r for share in everything for r in share), key=lambda r: order[r.path])
        output = Path(args.output) if args.output else None
        root, derived = (output.parent, output.name) if output else (Path(config.output.root) / "localize", "localize")
        with RunWriter.for_evaluation(root, output.name if output else None, derived, "events.json") as writer, \
                writer.log():
            encoder = family(config.encoder.family).describe(config)
            lines = write_outputs(writer.folder, results, names + ["other"], localizer.method, encoder,
                                  config.output.plots)
            writer.write_config(config)
            print("\n".join(lines))
            print(f"outputs: {writer.folder}")
        failed = [r for r in results if r.status != "ok"]
        if failed:
            print(f"{len(failed)} of {len(results)} videos could not be localized", file=sys.stderr)
            sys.exit(1)
    finally:
        shutdown(process)


if __name__ == "__main__":
    cli.run(main)
