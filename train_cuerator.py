"""CueRator on the cached segment features (any backbone family): fit its global rule (the best of
Sobol candidates on the training split) and train its policy (each video its own rule parameters)
with REINFORCE, selected on validation, reported on test with all classes.

    bash run_cuerator.sh                       # configs/cuerator_policy.yaml: rule.json, then the policy
    bash run_cuerator.sh --fit-rule            # only the global rule (rule.json) and its test scores
    bash run_cuerator.sh --resume              # continue an interrupted policy training
    bash run_baseline_v0.sh --strategy cuerator_policy --checkpoint runs/cuerator_policy/checkpoints/best.ckpt
"""

from __future__ import annotations

from pathlib import Path

from common import cli
from common.errors import UserError
from models.families import family
from pipeline.cuerator_training import CueRatorRun, describe
from pipeline.outputs import RunWriter, format_table

DEFAULT_CONFIG = "configs/cuerator_policy.yaml"


def main(argv=None) -> None:
    parser = cli.parser_with_config(__doc__, DEFAULT_CONFIG)
    parser.add_argument("--fit-rule", action="store_true", help="only fit the global rule (rule.json) and score it")
    parser.add_argument("--resume", action="store_true", help="continue the policy training in the run folder")
    args = cli.parse(parser, argv)
    if args.fit_rule and args.resume:
        raise UserError("--fit-rule fits the rule again from scratch; --resume continues a policy training: give one")
    config = cli.load_config(args)
    folder = Path(config.output.root) / (config.output.name or Path(args.config).stem)
    encoder = family(config.encoder.family).describe(config)
    with RunWriter.for_training(folder) as writer, writer.log():
        run = CueRatorRun(config, folder, fit_rule_only=args.fit_rule)
        rule = None if args.resume else run.fit_rule()  # a resumed run keeps the rule.json it wrote
        rule_test = run.evaluate_rule(rule["params"]) if rule else None
        if args.fit_rule:
            extra = {"method": "CueRator", "encoder": encoder, "rule": rule, "rule_file": str(folder / "rule.json")}
            writer.write_all(config, rule_test, f"OV-AVEBench test | CueRator global rule | {encoder}", extra,
                             excluded_by_split=run.excluded_by_split())
            return
        if rule_test is not None:
            print(format_table(rule_test, f"OV-AVEBench test | CueRator global rule | {encoder}"))
        test, best, history = run.train_policy(resume=args.resume)
        method = describe(config)
        extra = {"method": method, "encoder": encoder, "history": history,
                 "selection": {"split": config.cuerator.selection, "metric": "mean per-video frame accuracy (total)",
                               "best_epoch": best["epoch"], "frame_accuracy": best["frame_accuracy"]},
                 "checkpoints": {"best": str(folder / "checkpoints" / "best.ckpt"),
                                 "last": str(folder / "checkpoints" / "last.ckpt")}}
        if rule_test is not None:
            extra.update(rule=rule, rule_file=str(folder / "rule.json"), rule_test_metrics=rule_test.summaries)
        writer.write_all(config, test, f"OV-AVEBench test | {method} | {encoder} | epoch {best['epoch']}", extra,
                         history, run.excluded_by_split(), selected_epoch=best["epoch"])


if __name__ == "__main__":
    cli.run(main)
