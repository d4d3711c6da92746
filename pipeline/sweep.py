"""Ablation sweeps: one base config and named variants of it (config overrides), each run into its
own folder of one sweep folder, then one table of their metrics.

A sweep file (YAML; ``configs/sweeps/`` has the published code's axes)::

    script: train                          # train (train.py), evaluate (eval_zero_shot.py), cuerator
    config: configs/v1_fine_tuning.yaml    # the base config
    overrides: [train.epochs=5]            # for every variant (optional)
    variants:                              # name: its overrides
      self: []
      cross: [temporal.attention=cross]

A variant whose folder holds results made with its very config is not run again; a training
killed half-way is resumed, and one asked for more epochs is continued; results made with another
config (fewer epochs included) stop the sweep with the differences (they are never overwritten).
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from common import config as config_io
from common.cli import OVERRIDE, config_path
from common.errors import UserError
from common.files import atomic_write
from common.schema import Config
from data.annotations import SUBSETS
from pipeline.outputs import RESULTS_FILE, TABLE_COLUMNS

KEYS = ("script", "config", "overrides", "variants")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # a folder name on every system


@dataclass(frozen=True)
class Script:
    """What the sweep needs to know of a script's run folder."""

    last: str | None = None  # the checkpoint a killed run resumes from
    epochs: str | None = None  # the key a resume may raise


SCRIPTS = {"train": Script("checkpoints/last.pt", "train.epochs"), "evaluate": Script(),
           "cuerator": Script("checkpoints/last.ckpt", "cuerator.epochs")}  # train_cuerator.py


@dataclass(frozen=True)
class Variant:
    name: str
    overrides: list[str]  # the sweep's, the variant's, then the command line's
    config: Config
    own: list[str]  # the variant's alone: what sets it apart in the table


@dataclass(frozen=True)
class Sweep:
    file: Path
    script: str
    config_file: Path
    folder: Path
    variants: list[Variant]
    shared: list[str]  # the overrides every variant has: the sweep's and the command line's

    def folder_of(self, variant: Variant) -> Path:
        return self.folder / variant.name

    def arguments(self, variant: Variant, resume: bool) -> list[str]:
        """The script's command line for ``variant`` (what a user would type for it alone)."""
        return (["--config", str(self.config_file), *variant.overrides, f"output.root={self.folder}",
                 f"output.name={variant.name}"] + (["--resume"] if resume else []))


def _overrides(value, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and OVERRIDE.fullmatch(v) for v in value):
        raise UserError(f"{where} must be a list of key=value overrides, e.g. [temporal.attention=cross]; got "
                        f"{value!r}")
    touched = [v for v in value if v.startswith(("output.root=", "output.name="))]
    if touched:
        raise UserError(f"{where}: {touched[0]}: the sweep sets output.root and output.name itself (give --output "
                        "for another sweep folder)")
    return value


def read_sweep(path, extra_overrides=(), output=None) -> Sweep:
    """The sweep file ``path`` with every variant's config loaded and checked before anything runs;
    ``extra_overrides`` (the command line's) apply to every variant, last."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise UserError(f"cannot read the sweep file {path}: {err.strerror or err}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise UserError(f"{path} is not valid YAML{where}: {getattr(err, 'problem', None) or err}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: a sweep file is a mapping with the keys {', '.join(KEYS)}")
    unknown = [key for key in data if key not in KEYS]
    if unknown:
        raise UserError(f"{path}: unknown key {unknown[0]!r} (a sweep file has {', '.join(KEYS)})")
    script = data.get("script")
    if script not in SCRIPTS:
        raise UserError(f"{path}: script must be one of {', '.join(SCRIPTS)}; got {script!r}")
    if not isinstance(data.get("config"), str):
        raise UserError(f"{path}: config must name the base config file, e.g. configs/v1_fine_tuning.yaml")
    config_file = config_path(data["config"])
    if not config_file.is_file():
        raise UserError(f"{path}: config: no such file: {data['config']}")
    common = _overrides(data.get("overrides"), f"{path}: overrides")
    extra = _overrides(list(extra_overrides), "the command line")
    named = data.get("variants")
    if not isinstance(named, dict) or not named:
        raise UserError(f"{path}: variants must map each variant's name to its overrides, e.g. cross: "
                        "[temporal.attention=cross]")
    variants = []
    for name, own in named.items():
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise UserError(f"{path}: variant name {name!r}: use letters, digits, '_', '-' and '.' (it names a "
                            "folder)")
        own = _overrides(own, f"{path}: variant {name!r}")
        overrides = [*common, *own, *extra]
        try:
            config = config_io.load(Config, config_file, overrides)
        except UserError as err:
            raise UserError(f"{path}: variant {name!r}: {err}") from None
        variants.append(Variant(name, overrides, config, own))
    folder = Path(output) if output else Path(variants[0].config.output.root) / "sweeps" / path.stem
    return Sweep(path, script, config_file, folder, variants, [*common, *extra])


def _epochs(config: dict, key: str) -> int:
    for part in key.split("."):
        config = config.get(part) if isinstance(config, dict) else None
    return config if isinstance(config, int) else 0


def plan(sweep: Sweep, variant: Variant) -> str:
    """``done`` (its results were made with this config), ``resume`` (a training to continue) or
    ``new``; results of another config are a UserError naming the differences."""
    folder = sweep.folder_of(variant)
    script = SCRIPTS[sweep.script]
    resumable = script.last is not None and (folder / script.last).exists()
    results = folder / RESULTS_FILE
    if results.exists():
        try:
            saved = json.loads(results.read_text())["config"]
        except (OSError, ValueError, KeyError, TypeError):
            raise UserError(f"{results} is not a results file of this toolkit; delete {folder} to run the variant "
                            "again") from None
        wanted = config_io.to_dict(variant.config)
        changes = [line for line in config_io.differences(saved, wanted) if not line.startswith("output.")]
        if not changes:
            return "done"
        if resumable and all(line.startswith(script.epochs) for line in changes) \
                and _epochs(wanted, script.epochs) > _epochs(saved, script.epochs):
            return "resume"
        raise UserError(f"{folder} holds the results of another config ({'; '.join(changes[:3])}"
                        f"{'; ...' if len(changes) > 3 else ''}); delete it, or give --output another sweep folder")
    return "resume" if resumable else "new"


def results_of(sweep: Sweep, variant: Variant) -> dict:
    return json.loads((sweep.folder_of(variant) / RESULTS_FILE).read_text())


def table_rows(sweep: Sweep, variants: list[Variant]) -> list[dict]:
    """One row per variant: its name, overrides, split and every subset's metrics in percent."""
    rows = []
    for variant in variants:
        results = results_of(sweep, variant)
        row = {"variant": variant.name, "overrides": " ".join(variant.own), "split": results["split"]}
        for subset in SUBSETS:
            summary = results["metrics"].get(subset)
            for key, label in TABLE_COLUMNS:
                row[f"{subset} {label}"] = round(100 * summary[key], 2) if summary else None
        rows.append(row)
    return rows


def markdown(rows: list[dict], title: str) -> str:
    """The table as Markdown: one decimal, as the paper's; empty subsets are blank; a variant
    without overrides of its own is the base."""
    metrics = [key for key in rows[0] if key not in ("variant", "overrides", "split")]
    lines = [f"# {title}", "", "| variant | " + " | ".join(metrics) + " | overrides |",
             "| --- | " + " | ".join("---:" for _ in metrics) + " | --- |"]
    for row in rows:
        cells = ["" if row[m] is None else f"{row[m]:.1f}" for m in metrics]
        lines.append(f"| {row['variant']} | " + " | ".join(cells) + f" | {row['overrides'] or '(base)'} |")
    return "\n".join(lines) + "\n"


def write_table(sweep: Sweep, variants: list[Variant]) -> tuple[Path, Path, str]:
    """``sweep.md`` and ``sweep.csv`` in the sweep folder, each written whole; returns them and the
    Markdown."""
    rows = table_rows(sweep, variants)
    splits = sorted({row["split"] for row in rows})
    shared = f", for all: {' '.join(sweep.shared)}" if sweep.shared else ""
    title = f"{sweep.file.name}: {sweep.script} on {', '.join(splits)} ({sweep.config_file.name}{shared})"
    text = markdown(rows, title)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    md, table = sweep.folder / "sweep.md", sweep.folder / "sweep.csv"
    atomic_write(md, lambda f: f.write(text.encode()))
    atomic_write(table, lambda f: f.write(buffer.getvalue().encode()))
    return md, table, text
