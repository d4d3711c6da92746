"""Train on the cached segment features (any backbone family): the fine-tuning baseline's temporal layers, or
complex-valued fusion (train.model), on the seen classes, selected on validation, reported on test with all classes.

    bash run_baseline_v1_train_fully.sh                         # configs/v1_fine_tuning.yaml
    bash run_baseline_v1_train_fully.sh --resume                 # continue an interrupted run
    bash run_baseline_v1_train_fully.sh --evaluate runs/v1_fine_tuning/checkpoints/best.pt
    bash run_baseline_v1_train_fully.sh train.selection=test     # the published protocol
    bash run_complex_fusion.sh                                   # configs/complex_fusion_2stream.yaml
"""

from __future__ import annotations

from pathlib import Path

from common import cli
from models.families import family
from pipeline.outputs import RunWriter, run_name
from pipeline.training import Trainer, check_trainable, evaluate_checkpoint, usable_checkpoint

DEFAULT_CONFIG = "configs/v1_fine_tuning.yaml"


def checkpoint_run_name(checkpoint) -> str:
    """``runs/X/checkpoints/best.pt`` -> ``X_best``; any other file -> its stem."""
    path = Path(checkpoint)
    parent = path.parent.parent.name if path.parent.name == "checkpoints" else ""
    return run_name(parent, path.stem)


def evaluate(config, checkpoint) -> None:
    split = config.eval.split
    state = usable_checkpoint(config, checkpoint)  # before any folder or extraction
    derived = run_name(checkpoint_run_name(checkpoint), split)
    with RunWriter.for_evaluation(config.output.root, config.output.name, derived) as writer, writer.log():
        result = evaluate_checkpoint(config, checkpoint, split, state)
        recorded = result.kind.recorded(config)  # record what was evaluated
        if recorded != config:
            print(f"the {result.kind.name} settings come from {checkpoint}, not from the config")
        config = recorded
        method, encoder = result.kind.describe(), family(config.encoder.family).describe(config)
        writer.write_all(config, result.evaluation,
                         f"OV-AVEBench {split} | {method} | {encoder} | checkpoint {checkpoint} (epoch {result.epoch})",
                         {"method": method, "encoder": encoder, "checkpoint": str(checkpoint),
                          "checkpoint_epoch": result.epoch},
                         excluded_by_split=result.excluded_by_split)


def fit(config, config_path, resume: bool) -> None:
    folder = Path(config.output.root) / (config.output.name or Path(config_path).stem)
    check_trainable(config)  # before any folder
    with RunWriter.for_training(folder) as writer, writer.log():
        trainer = Trainer(config, folder)
        method = trainer.kind.describe()
        print(f"{method}: {config.train.epochs} epochs, model selection on {config.train.selection} -> {folder}")
        result = trainer.fit(resume=resume)
        encoder = family(config.encoder.family).describe(config)
        extra = {"method": method, "encoder": encoder, "selection": result.selection, "history": result.history,
                 "checkpoints": {"best": str(folder / "checkpoints" / "best.pt"),
                                 "last": str(folder / "checkpoints" / "last.pt")}}
        if "per_subset" in result.selection:
            epochs = ", ".join(f"{subset} {row['best_epoch']}" for subset, row in result.selection["per_subset"].items())
            chosen = f"each row at its own best epoch on test, as published ({epochs})"
        else:
            chosen = f"selected on {config.train.selection} (epoch {result.best_epoch})"
        title = f"OV-AVEBench test | {method} | {encoder} | {chosen}"
        writer.write_all(config, result.test, title, extra, result.history, trainer.excluded_by_split(),
                         selected_epoch=result.best_epoch)


def main(argv=None) -> None:
    parser = cli.parser_with_config(__doc__, DEFAULT_CONFIG)
    parser.add_argument("--resume", action="store_true", help="continue the run in the run folder")
    parser.add_argument("--evaluate", metavar="CHECKPOINT",
                        help="only evaluate this checkpoint on eval.split, into a new folder")
    args = cli.parse(parser, argv)
    config = cli.load_config(args)
    if args.evaluate:
        evaluate(config, args.evaluate)
    else:
        fit(config, args.config, args.resume)


if __name__ == "__main__":
    cli.run(main)
