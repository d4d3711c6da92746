"""Localize audible and visible events in your own videos with your own words: per-second labels,
a confidence per second and the events, from the training-free rule, CueRator's rule, a fine-tuning
checkpoint or a CueRator policy.

    python localize.py clip.mp4 --classes "dog barking,car horn"
    python localize.py videos/ --classes-file my_classes.txt --checkpoint runs/v1_fine_tuning/checkpoints/best.pt
    python localize.py clip.mp4 --classes "dog barking,car horn" --checkpoint runs/cuerator_policy/checkpoints/best.ckpt
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
from common.errors import UserError
from data.annotations import AnnotationIndex
from data.embedding_store import STORE_DIR
from models import strategies
from models.families import family
from pipeline.localize import Localizer, UsageError, class_list, find_videos, parse_class_text
from pipeline.localize_outputs import write_outputs
from pipeline.outputs import RunWriter

DEFAULT_CONFIG = "configs/localize.yaml"


def class_names(args, config) -> list[str]:
    given = [bool(args.classes), bool(args.classes_file), args.benchmark_classes]
    if sum(given) != 1:
        raise UsageError("give the class names one way: --classes \"a,b\", --classes-file F or --benchmark-classes")
    if args.classes:  # a name holding a comma is quoted: --classes '"hello, world",dog'
        return parse_class_text(args.classes)
    if args.classes_file:
        return read_class_file(Path(args.classes_file))
    return list(AnnotationIndex.load(config.data.meta_csv, config.data.label_json).all_vocabulary.names[:-1])


def read_class_file(path: Path) -> list[str]:
    """UTF-8 (a byte-order mark is allowed), one name per line; blank lines and lines starting
    with ``#`` are left out."""
    if not path.is_file():
        raise UsageError(f"--classes-file {path}: no such file")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise UsageError(f"--classes-file {path} is not UTF-8 (byte {err.start} is {err.object[err.start]:#04x}); "
                         "save it as UTF-8") from None
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def check_strategy(args) -> None:
    """A checkpoint goes with a checkpoint strategy (or none: the file names it), and a checkpoint
    strategy with a checkpoint."""
    if not args.strategy:
        return
    needs = strategies.registry()[args.strategy].needs
    checkpointed = ", ".join(strategies.names("checkpoint"))
    if args.checkpoint and needs != "checkpoint":
        raise UsageError(f"--strategy {args.strategy} decodes the frozen embeddings; a --checkpoint is decoded by "
                         f"{checkpointed}: leave one of them out")
    if not args.checkpoint and needs == "checkpoint":
        raise UsageError(f"--strategy {args.strategy} decodes with a trained model: give its --checkpoint")


def open_output(args, config) -> RunWriter:
    """The output folder, checked and taken before any work: not a file, writable, without results."""
    if args.output is None:
        return RunWriter.for_evaluation(Path(config.output.root) / "localize", None, "localize", "events.json")
    output = Path(args.output)
    if output.exists() and not output.is_dir():
        raise UsageError(f"--output {output} is a file; give a folder")
    return RunWriter.for_evaluation(output.parent, output.name, output.name, "events.json", key="--output")


def main(argv=None) -> None:
    parser = cli.parser_with_config(__doc__, DEFAULT_CONFIG, list_overrides=False)
    parser.add_argument("videos", nargs="+", metavar="VIDEO_OR_FOLDER")
    parser.add_argument("--classes", help="comma-separated class names (quote a name holding a comma)")
    parser.add_argument("--classes-file", help="UTF-8, one class name per line; # starts a comment line")
    parser.add_argument("--benchmark-classes", action="store_true", help="OV-AVEBench's 67 class names")
    parser.add_argument("--checkpoint", help="a fine-tuning checkpoint (temporal layers + v1 scoring) or a CueRator "
                                             "policy checkpoint; its strategy is recognised from the file")
    parser.add_argument("--strategy", choices=strategies.names(), help="; ".join(
        f"{name}: {s.summary}" for name, s in strategies.registry().items()) + f" (default {strategies.DEFAULT}; "
        f"{', '.join(strategies.names('checkpoint'))} with --checkpoint)")
    parser.add_argument("--threshold", type=float, default=0.0, help="drop events scoring below this, in [0, 1]")
    parser.add_argument("--output", help="output folder (default: a new folder under runs/localize/)")
    args = cli.parse(parser, argv)
    config = cli.load_config(args)
    check_strategy(args)
    names = class_list(class_names(args, config))  # stripped and checked, as the localizer uses them
    process = init_process()
    writer = None
    try:
        failure, videos = None, None
        if process.is_main:  # the videos are listed once, by rank 0: the outputs follow this list
            try:
                videos = find_videos(args.videos)
                writer = open_output(args, config)
            except UserError as err:
                failure = err
        message, videos = process.share((None if failure is None else str(failure), videos))
        if message is not None:
            raise failure or UsageError(f"{message} (on rank 0)")
        localizer = Localizer(config, args.checkpoint, args.strategy, args.threshold, process)
        mine = localizer.localize_videos(videos, names)
        everything = process.gather(mine)
        if not process.is_main:
            return
        order = {str(path): i for i, path in enumerate(videos)}
        results = sorted((r for share in everything for r in share), key=lambda r: order[r.path])
        with writer.log():
            encoder = family(config.encoder.family).describe(config)
            lines = write_outputs(writer.folder, results, names + ["other"], localizer.method, encoder,
                                  args.threshold, config.output.plots)
            writer.write_config(config)
            print("\n".join(lines))
            print(f"outputs: {writer.folder}")
        failed = [r for r in results if r.status != "ok"]
        if failed:
            print(f"{len(failed)} of {len(results)} videos could not be localized in full", file=sys.stderr)
            sys.exit(1)
    except KeyboardInterrupt:
        print(f"\ninterrupted: the videos encoded so far are kept in {Path(config.cache.dir) / STORE_DIR} (a video "
              "cut short resumes where it stopped); run the same command again to continue", file=sys.stderr)
        sys.exit(130)
    finally:
        if writer is not None:
            writer.lock.release()
        shutdown(process)


if __name__ == "__main__":
    cli.run(main)
