"""Evaluate a decoding strategy on the cached segment features (ImageBind, or another backbone
family): the training-free baseline (a segment is an event when the audio's and the frame's
best-matching class names agree), CueRator's rule, or a trained model's strategy with its checkpoint.

    bash run_baseline_v0.sh                          # configs/v0_training_free.yaml: v01, test split
    bash run_baseline_v0.sh --strategy v0 eval.split=val
    bash run_baseline_v0.sh --strategy cuerator_rule cuerator.rule_file=runs/cuerator_policy/rule.json
    bash run_baseline_v0.sh --strategy cuerator_policy --checkpoint runs/cuerator_policy/checkpoints/best.ckpt
    bash run_baseline_v0.sh --checkpoint runs/complex_fusion_2stream/checkpoints/best.pt   # its strategy from the file
"""

from __future__ import annotations

from pathlib import Path

from common import cli
from data.feature_cache import FeatureCache
from models import strategies
from models.families import family
from models.segment_encoder import resolve_device
from pipeline.evaluate import configured_decoder, evaluate_strategy
from pipeline.outputs import RunWriter, run_name

DEFAULT_CONFIG = "configs/v0_training_free.yaml"


def main(argv=None) -> None:
    parser = cli.parser_with_config(__doc__, DEFAULT_CONFIG)
    parser.add_argument("--strategy", choices=strategies.names(), help="; ".join(
        f"{name}: {s.summary}" for name, s in strategies.registry().items()) + f" (default {strategies.DEFAULT})")
    parser.add_argument("--checkpoint", help="the trained file of a checkpoint strategy (eval.checkpoint); without "
                                             "--strategy, the strategy that reads the file")
    parser.add_argument("--split", choices=("val", "test"))
    args = cli.parse(parser, argv)
    if args.checkpoint and not args.strategy:
        args.strategy = strategies.for_checkpoint(args.checkpoint).name
    shortcuts = ([f"eval.strategy={args.strategy}"] if args.strategy else []) + (
        [f"eval.split={args.split}"] if args.split else []) + (
        [f"eval.checkpoint={args.checkpoint}"] if args.checkpoint else [])
    config = cli.load_config(args, shortcuts)
    decoder = configured_decoder(config, resolve_device(config.device))  # before any folder or extraction
    derived = run_name(Path(args.config).stem, config.eval.strategy, config.eval.split)
    with RunWriter.for_evaluation(config.output.root, config.output.name, derived) as writer, writer.log():
        print(f"{decoder.name} on the {config.eval.split} split -> {writer.folder}")
        evaluation = evaluate_strategy(config, decoder=decoder)
        cache = FeatureCache(config.cache.dir)
        encoder = family(config.encoder.family).describe(config)
        extra = {"method": decoder.strategy.method, "encoder": encoder,
                 "cache": {"dir": str(cache.root), "provenance": cache.provenance()}}
        if decoder.checkpoint is not None:
            extra["checkpoint"] = decoder.checkpoint
        if "params" in decoder.options:
            extra["rule_params"] = [float(x) for x in decoder.options["params"]]
        writer.write_all(config, evaluation,
                         f"OV-AVEBench {config.eval.split} | {decoder.name} | {encoder}", extra)


if __name__ == "__main__":
    cli.run(main)
