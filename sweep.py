"""Run an ablation sweep: every variant of a sweep file through train.py, eval_zero_shot.py or
train_cuerator.py on the same feature cache, then one table of their metrics (sweep.md, sweep.csv).

    python sweep.py configs/sweeps/attention.yaml                  # runs/sweeps/attention/
    python sweep.py configs/sweeps/attention.yaml device=cuda      # key=value: every variant, last
    python sweep.py configs/sweeps/attention.yaml --only self cross
    python sweep.py configs/sweeps/attention.yaml --table          # only the table of what is done

Run it again after an interruption: finished variants are kept, a killed training resumes.
"""

from __future__ import annotations

import argparse
import shlex
import sys

import eval_zero_shot
import train
import train_cuerator
from common import cli
from common.errors import UserError
from pipeline.sweep import plan, read_sweep, write_table

SCRIPTS = {"train": (train.main, "train.py"), "evaluate": (eval_zero_shot.main, "eval_zero_shot.py"),
           "cuerator": (train_cuerator.main, "train_cuerator.py")}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=cli.description(__doc__), epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep", help="the sweep file (YAML: script, config, overrides, variants); key=value "
                                      "arguments anywhere override every variant's config")
    parser.add_argument("--output", help="the sweep folder (default: <output.root>/sweeps/<sweep file name>)")
    parser.add_argument("--only", nargs="+", metavar="VARIANT", help="run only these variants")
    parser.add_argument("--table", action="store_true", help="run nothing; the table of the finished variants")
    args = cli.parse(parser, argv)
    sweep = read_sweep(args.sweep, args.overrides, args.output)
    names = [v.name for v in sweep.variants]
    unknown = [name for name in args.only or [] if name not in names]
    if unknown:
        raise UserError(f"--only {unknown[0]}: no such variant in {sweep.file} (it has {', '.join(names)})")
    chosen = [v for v in sweep.variants if not args.only or v.name in args.only]
    states = {v.name: plan(sweep, v) for v in chosen}  # every conflict found before anything runs
    run, script = SCRIPTS[sweep.script]
    for number, variant in enumerate(chosen, 1):
        state = states[variant.name]
        heading = f"[{number}/{len(chosen)}] {variant.name}"
        if state == "done":
            print(f"{heading}: done in {sweep.folder_of(variant)}", flush=True)
            continue
        if args.table:
            print(f"{heading}: not run yet", flush=True)
            continue
        arguments = sweep.arguments(variant, resume=state == "resume")
        print(f"{heading}: {'resuming' if state == 'resume' else 'running'} python {script} "
              f"{shlex.join(arguments)}", flush=True)
        run(arguments)
    finished = [v for v in chosen if states[v.name] == "done" or not args.table]  # a run wrote its results
    if not finished:
        print("no variant has results yet", file=sys.stderr)
        return
    md, table, text = write_table(sweep, finished)
    print(f"\n{text}\ntable: {md}\n       {table}")


if __name__ == "__main__":
    cli.run(main)
