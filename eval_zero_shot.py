"""Training-free OV-AVEL baseline on the cached segment features (ImageBind, or another backbone
family): a segment is an event when the audio's and the frame's best-matching class names agree.

    bash run_baseline_v0.sh                          # configs/v0_training_free.yaml: v01, test split
    bash run_baseline_v0.sh --strategy v0 eval.split=val
"""

from __future__ import annotations

from pathlib import Path

from common import cli
from data.feature_cache import FeatureCache
from models import strategies
from models.families import family
from pipeline.evaluate import evaluate_training_free
from pipeline.outputs import RunWriter, run_name

DEFAULT_CONFIG = "configs/v0_training_free.yaml"


def main(argv=None) -> None:
    parser = cli.parser_with_config(__doc__, DEFAULT_CONFIG)
    rules = strategies.names("similarities")
    parser.add_argument("--strategy", choices=rules, help="; ".join(
        f"{name}: {strategies.registry()[name].summary}" for name in rules) + f" (default {strategies.DEFAULT})")
    parser.add_argument("--split", choices=("val", "test"))
    args = cli.parse(parser, argv)
    shortcuts = ([f"eval.strategy={args.strategy}"] if args.strategy else []) + (
        [f"eval.split={args.split}"] if args.split else [])
    config = cli.load_config(args, shortcuts)
    strategies.strategy(config.eval.strategy, "eval.strategy", needs="similarities")
    derived = run_name(Path(args.config).stem, config.eval.strategy, config.eval.split)
    with RunWriter.for_evaluation(config.output.root, config.output.name, derived) as writer, writer.log():
        print(f"training-free baseline ({config.eval.strategy}) on the {config.eval.split} split -> {writer.folder}")
        evaluation = evaluate_training_free(config)
        cache = FeatureCache(config.cache.dir)
        encoder = family(config.encoder.family).describe(config)
        writer.write_all(config, evaluation,
                         f"OV-AVEBench {config.eval.split} | training-free {config.eval.strategy} | {encoder}",
                         {"method": "training-free", "encoder": encoder,
                          "cache": {"dir": str(cache.root), "provenance": cache.provenance()}})


if __name__ == "__main__":
    cli.run(main)
