"""Score another method's per-segment predictions with the OV-AVEL metrics: the paper's
table for seen / unseen / total, saved like our own runs (results.json, plots).

    python tools/score_predictions.py --predictions my_method.csv          # test split
    python tools/score_predictions.py --predictions my_method.json --split val --allow-missing

The file format is described in pipeline/external.py and the README. Ground truth comes from
the annotation files of the config (data.meta_csv, data.label_json).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import cli  # noqa: E402
from data.annotations import AnnotationIndex  # noqa: E402
from pipeline.evaluate import score  # noqa: E402
from pipeline.external import decode_predictions, read_predictions  # noqa: E402
from pipeline.outputs import RunWriter, run_name  # noqa: E402

DEFAULT_CONFIG = "configs/v0_training_free.yaml"


def main(argv=None) -> None:
    parser = cli.parser_with_config(__doc__, DEFAULT_CONFIG)
    parser.add_argument("--predictions", required=True, help="CSV or JSON of per-video, per-segment labels")
    parser.add_argument("--split", choices=("val", "test"), help="default: eval.split of the config")
    parser.add_argument("--allow-missing", action="store_true",
                        help="score the videos present and report how many are missing (default: an error)")
    args = cli.parse(parser, argv)
    config = cli.load_config(args, [f"eval.split={args.split}"] if args.split else [])
    index = AnnotationIndex.load(config.data.meta_csv, config.data.label_json)
    videos = index.videos(config.eval.split, vocabulary=index.all_vocabulary)
    decoded, scored, missing = decode_predictions(read_predictions(args.predictions), videos, args.allow_missing,
                                                  args.predictions)
    evaluation = score(scored, decoded, "external", missing, "no prediction in the file")
    source = Path(args.predictions)
    derived = run_name(source.resolve().parent.name, source.stem, "scores")  # runs/<its folder>_<file>_scores
    with RunWriter.for_evaluation(config.output.root, config.output.name, derived) as writer, writer.log():
        writer.write_all(config, evaluation, f"OV-AVEBench {config.eval.split} | {args.predictions}",
                         {"method": "external predictions", "predictions_file": str(args.predictions),
                          "missing_videos": [str(v) for v in missing.vid_names]})


if __name__ == "__main__":
    cli.run(main)
