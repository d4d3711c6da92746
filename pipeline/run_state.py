"""What a training run keeps in its folder as it goes, shared by the trainers (the fine-tuning
baseline, CueRator's policy): checkpoints written whole or not at all, and history.csv."""

from __future__ import annotations

import csv
from pathlib import Path

import torch

from common.config import differences, to_dict
from common.errors import UserError
from common.files import atomic_write, writing

RUN_MESSAGES = {"what": "the training run",
                "way_out": "set output.root to another disk; --resume continues from the last saved epoch"}


def save_checkpoint(path: Path, payload: dict) -> None:
    with writing(path, **RUN_MESSAGES):
        path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda handle: torch.save(payload, handle), **RUN_MESSAGES)


def write_history(folder: Path, records: list, mode: str, columns) -> None:
    """``mode`` "w": history.csv from scratch (a resume rewrites it from the checkpoint, so an
    epoch cut short after its row was written is not listed twice); "a": append."""
    path = Path(folder) / "history.csv"
    new = mode == "w" or not path.exists()
    with open(path, mode, newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerows(records)


def rng_states(device: torch.device) -> dict:
    """``rng_cpu`` (and ``rng_cuda`` on a GPU): what a resumed run restores to draw the same."""
    states = {"rng_cpu": torch.get_rng_state()}
    if device.type == "cuda":
        states["rng_cuda"] = torch.cuda.get_rng_state(device)
    return states


def restore_rng(states: dict, device: torch.device) -> None:
    torch.set_rng_state(states["rng_cpu"])
    if device.type == "cuda" and "rng_cuda" in states:
        torch.cuda.set_rng_state(states["rng_cuda"], device)


def config_changes(saved: dict, config, may_change: str) -> list[str]:
    """How ``config`` differs from a run's ``saved`` one, leaving out ``may_change`` (the epochs
    key a resume may raise) and the output keys."""
    return [line for line in differences(saved, to_dict(config)) if not line.startswith((may_change, "output."))]


def check_resumed_epochs(last: Path, done: int, wanted: int, key: str) -> None:
    """A resume asked for fewer epochs than the run has trained would report an epoch chosen beyond
    them: refused."""
    if wanted < done:
        raise UserError(f"--resume: {last} has trained {done} epochs already, more than {key}={wanted}; give "
                        f"{key}={done} or more, or start a new run (output.name)")


def tensorboard_writer(folder: Path, enabled: bool, done: int):
    """A TensorBoard writer under ``folder`` (None when not ``enabled``); a resumed run drops the
    events logged after its last saved epoch."""
    if not enabled:
        return None
    from torch.utils.tensorboard import SummaryWriter  # slow import, only when asked for

    return SummaryWriter(Path(folder) / "tensorboard", purge_step=done + 1)
