"""Fine-tuning OV-AVEL baseline: temporal layers on the cached ImageBind features, trained on
the seen classes, selected on validation, reported on test with all classes.

    bash run_baseline_v1_train_fully.sh                         # configs/v1_fine_tuning.yaml
    bash run_baseline_v1_train_fully.sh --resume                 # continue an interrupted run
    bash run_baseline_v1_train_fully.sh --evaluate runs/v1_fine_tuning/checkpoints/best.pt
    bash run_baseline_v1_train_fully.sh train.selection=test     # the published protocol
"""

from __future__ import annotations

from common import cli
from pipeline.outputs import RunWriter, run_folder
from pipeline.training import Trainer

DEFAULT_CONFIG = "configs/v1_fine_tuning.yaml"


def _describe(config) -> str:
    t = config.temporal
    if t.kind == "linear":
        model = f"{t.num_layers} linear layer(s)"
    else:
        model = f"{t.num_layers} temporal layer(s), {t.attention} attention, {t.num_heads} head(s)"
    return f"fine-tuning ({model}, {t.fusion} fusion)"


def main(argv=None) -> None:
    parser = cli.parser_with_config(__doc__.splitlines()[0], DEFAULT_CONFIG)
    parser.add_argument("--resume", action="store_true", help="continue the run in the run folder")
    parser.add_argument("--evaluate", metavar="CHECKPOINT", help="only evaluate this checkpoint (on eval.split)")
    args = parser.parse_intermixed_args(argv)  # key=value overrides may come before or after options
    config = cli.load_config(args)
    folder = run_folder(config.output.root, config.output.name, args.config, "evaluate" if args.evaluate else None)
    writer = RunWriter(folder)
    with writer.log():
        trainer = Trainer(config, folder)
        history = None
        if args.evaluate:
            evaluation = trainer.evaluate(args.evaluate, config.eval.split)
            extra = {"method": _describe(config), "checkpoint": args.evaluate}
            title = f"OV-AVEBench {evaluation.split} | {_describe(config)} | checkpoint {args.evaluate}"
        else:
            print(f"{_describe(config)}: {config.train.epochs} epochs, model selection on {config.train.selection} "
                  f"-> {folder}")
            result = trainer.fit(resume=args.resume)
            evaluation, history = result.test, result.history
            extra = {"method": _describe(config), "selection": result.selection, "history": result.history,
                     "checkpoints": {"best": str(folder / "checkpoints" / "best.pt"),
                                     "last": str(folder / "checkpoints" / "last.pt")}}
            title = (f"OV-AVEBench test | {_describe(config)} | selected on {config.train.selection} "
                     f"(epoch {result.best_epoch})")
        writer.write_all(config, evaluation, title, extra, history)


if __name__ == "__main__":
    cli.run(main)
