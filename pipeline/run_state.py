"""What a training run keeps in its folder as it goes, shared by the trainers (the fine-tuning
baseline, CueRator's policy): checkpoints written whole or not at all, and history.csv."""

from __future__ import annotations

import csv
from pathlib import Path

import torch

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
