"""The fine-tuning baseline on cached features: train temporal layers on the seen classes,
pick the epoch on the selection split, report on test with all classes.

The encoders are frozen, so an epoch is a pass over small cached tensors: seconds, not the
published pipeline's ~26 minutes of re-encoding. Runs are deterministic for a seed on one
machine, and ``resume`` continues an interrupted run exactly (weights, optimiser, RNG).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from common.config import to_dict
from common.errors import UserError
from common.files import writing
from common.schema import Config
from data.annotations import AnnotationIndex
from data.audio_draws import AudioDraws
from models.families import family
from models.segment_encoder import resolve_device
from models.temporal import check_fits, load_checkpoint
from pipeline.evaluate import Evaluation, SplitData, class_texts, load_split, subset_counts
from pipeline.extraction import ensure_features, wanted_companions
from pipeline.trainable import configured_kind, kind_of_checkpoint
from pipeline.run_state import (RUN_MESSAGES, check_resumed_epochs, config_changes, restore_rng, rng_states,
                                save_checkpoint, tensorboard_writer, write_history)

HISTORY_COLUMNS = ("epoch", "train_loss", "audio_draw", "selection_split", "accuracy", "segment_f1", "event_f1",
                   "average", "seconds")


class SegmentBatches:
    """Shuffled batches of a split's cached streams (``{name: [B, 10, D]}``, the targets); the
    order depends only on the seed and the epoch, so a resumed run sees exactly the batches it
    would have seen.

    ``draws`` (:class:`data.audio_draws.AudioDraws`): epoch ``e`` takes its audio from draw
    ``(e - 1) mod draws.count``, as the published training saw a fresh draw every epoch;
    without draws, the eval-mode audio.

    ``resident`` (the default on a GPU): the split is read once, checked, and kept on the
    device in the cache's dtype (the epoch's audio draw too), so a step is an index into
    device memory instead of a gather from the memory map and a copy. Otherwise batches are
    gathered from the memory map each step (flat host memory however large the split). Both
    give the same values."""

    def __init__(self, data: SplitData, batch_size: int, seed: int, device: torch.device,
                 resident: bool | None = None, draws: AudioDraws | None = None):
        self.data = data
        self.targets = torch.from_numpy(data.videos.segment_classes).to(device)
        self.batch_size = batch_size
        self.seed = seed
        self.device = device
        self.draws = draws
        self.draw_rows = draws.rows(data.videos.vid_names) if draws is not None else None
        self.resident = device.type == "cuda" if resident is None else resident
        self._dtype = getattr(torch, str(data.features.audio.dtype))
        self._resident_draw = None
        if self.resident:
            self.streams = self._to_device(lambda positions: data.gather(positions))

    def _to_device(self, read) -> dict[str, torch.Tensor]:
        positions = np.arange(len(self.data.rows))
        blocks = [read(positions[start:start + 4096]) for start in range(0, len(positions), 4096)]
        names = blocks[0].keys() if blocks else ()
        return {name: torch.cat([torch.from_numpy(block[name]).to(self.device, self._dtype) for block in blocks])
                for name in names}

    def __len__(self) -> int:
        return -(-len(self.data.rows) // self.batch_size)

    def draw_of_epoch(self, epoch: int) -> int | None:
        return None if self.draws is None else (epoch - 1) % self.draws.count

    def _batch(self, members: np.ndarray, draw: int | None) -> dict[str, torch.Tensor]:
        if self.resident:
            index = torch.from_numpy(members).to(self.device)
            return {name: stream[index].float() for name, stream in self.streams.items()}
        streams = self.data.gather(members, self.draws, self.draw_rows, draw)
        return {name: torch.from_numpy(array).to(self.device) for name, array in streams.items()}

    def epoch(self, epoch: int):
        draw = self.draw_of_epoch(epoch)
        if self.resident and draw is not None and draw != self._resident_draw:
            self.streams["audio"] = self._to_device(
                lambda positions: {"audio": self.draws.gather(self.draw_rows[positions], draw)})["audio"]
            self._resident_draw = draw
        generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        order = torch.randperm(len(self.data.rows), generator=generator).numpy()
        for start in range(0, len(order), self.batch_size):
            members = np.sort(order[start:start + self.batch_size])  # sorted: sequential reads
            yield self._batch(members, draw), self.targets[torch.from_numpy(members).to(self.device)]


def train_one_epoch(model, optimizer, batches, texts: tuple[torch.Tensor, torch.Tensor], kind,
                    grad_clip: float | None) -> float:
    """``batches``: ``(streams, targets)``; ``texts``: the training classes' text embeddings as scored
    against the audio and the frames; ``kind``: what is trained (pipeline/trainable.py)."""
    model.train()
    total, count = torch.zeros((), device=texts[0].device), 0
    for streams, targets in batches:
        loss = F.cross_entropy(kind.logits(model, streams, texts).flatten(0, 1), targets.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        total += loss.detach() * targets.numel()
        count += targets.numel()
    return float(total) / count


def per_subset_selection(history: list) -> dict:
    """For each subset, the epoch whose average on that subset is the highest (the first in a
    tie) and its metrics: the published protocol's per-row selection on test."""
    chosen = {}
    for subset in ("seen", "unseen", "total"):
        scored = [record for record in history if record["by_subset"].get(subset)]
        if scored:
            best = max(scored, key=lambda record: record["by_subset"][subset]["average"])
            chosen[subset] = {"best_epoch": best["epoch"], "metrics": best["by_subset"][subset]}
    return chosen


@dataclass
class TrainingResult:
    test: Evaluation
    best_epoch: int
    selection: dict  # split, metric, the best epoch's selection metrics
    history: list


def check_trainable(config: Config) -> None:
    """What can be checked before a run folder is made: the kind's companion streams (a 4-stream
    fusion needs a phase generator made for the configured family)."""
    if getattr(configured_kind(config), "companions", False):
        wanted_companions(config)


class Trainer:
    """Trains what ``train.model`` names (pipeline/trainable.py) on the cache: the train split's
    seen classes, the epoch picked on ``train.selection``, the best checkpoint tested."""

    def __init__(self, config: Config, folder: Path):
        self.config = config
        self.kind = configured_kind(config)
        self.folder = Path(folder)
        self.checkpoints = self.folder / "checkpoints"
        self.device = resolve_device(config.device)
        index = AnnotationIndex.load(config.data.meta_csv, config.data.label_json)
        selection = config.train.selection
        index.require_splits({"train": "training", selection: "model selection, train.selection",
                              "test": "the final test"})
        draws = config.train.audio_draws
        splits = list(dict.fromkeys(["train", selection, "test"]))
        companions = wanted_companions(config) if getattr(self.kind, "companions", False) else None
        cache = ensure_features(config, splits, index, draws, companions=companions is not None)
        self.train_data = load_split(cache, index, "train", index.seen_vocabulary, companions)
        self.draws = AudioDraws(cache, "train", draws, config.train.audio_drop_path) if draws else None
        self.selection_data = load_split(cache, index, selection, index.all_vocabulary, companions)
        self.test_data = self.selection_data if selection == "test" else load_split(cache, index, "test",
                                                                                    index.all_vocabulary, companions)
        self.text_seen = class_texts(cache, config, index.seen_vocabulary.names, self.device)
        self.text_all = class_texts(cache, config, index.all_vocabulary.names, self.device)
        self.widths = {"audio": self.text_all[0].shape[1], "vision": self.text_all[1].shape[1]}
        if config.temporal.fusion == "feature_mean" and self.widths["audio"] != self.widths["vision"]:
            raise UserError(f"temporal.fusion = feature_mean averages the audio and frame embeddings, but "
                            f"{family(config.encoder.family).describe(config)} gives widths {self.widths}; use "
                            "geometric or arithmetic fusion")

    def _payload(self, model, epoch: int, metrics: dict) -> dict:
        return {**self.kind.payload(model), "widths": self.widths, "config": to_dict(self.config), "epoch": epoch,
                "metrics": metrics}

    def _evaluate(self, model, data: SplitData) -> Evaluation:
        return self.kind.evaluate(model, data, self.text_all, self.config)

    def fit(self, resume: bool = False) -> TrainingResult:
        cfg = self.config.train
        last = self.checkpoints / "last.pt"
        with writing(self.folder, **RUN_MESSAGES):
            self.folder.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(cfg.seed)
        model = self.kind.build(self.widths).to(self.device)
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(cfg.lr_milestones), cfg.lr_gamma)
        done, history, best = 0, [], None
        if resume:
            if not last.exists():
                raise UserError(f"--resume: there is no run to continue in {self.folder} ({last} not found)")
            state = load_checkpoint(last)
            changed = config_changes(state["config"], self.config, "train.epochs")
            if changed:
                raise UserError(f"--resume: the config differs from the interrupted run's ({last}); only "
                                "train.epochs may change:\n  " + "\n  ".join(changed))
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            if "scheduler" in state:
                scheduler.load_state_dict(state["scheduler"])
            else:  # a run from before the scheduler: its epochs ran at the rate the schedule gives them
                for _ in range(state["epoch"]):
                    scheduler.step()
            restore_rng(state, self.device)
            done, history, best = state["epoch"], state["history"], state["best"]
            check_resumed_epochs(last, done, cfg.epochs, "train.epochs")
            print(f"resuming after epoch {done} from {last}")
        elif last.exists():
            raise UserError(f"{self.folder} already holds a training run: add --resume to continue it, or "
                            "set output.name to start a new one")
        write_history(self.folder, history, "w", HISTORY_COLUMNS)
        tensorboard = tensorboard_writer(self.folder, cfg.tensorboard, done)
        batches = SegmentBatches(self.train_data, cfg.batch_size, cfg.seed, self.device, draws=self.draws)
        for epoch in range(done + 1, cfg.epochs + 1):
            start = time.perf_counter()
            loss = train_one_epoch(model, optimizer, batches.epoch(epoch), self.text_seen, self.kind, cfg.grad_clip)
            scheduler.step()  # after the epoch, as published (MultiStepLR: milestones in epochs)
            summaries = self._evaluate(model, self.selection_data).summaries
            chosen = summaries["total"]
            record = {"epoch": epoch, "train_loss": loss, "audio_draw": batches.draw_of_epoch(epoch),
                      "selection_split": cfg.selection, **chosen,
                      "seconds": round(time.perf_counter() - start, 3), "by_subset": summaries}
            history.append(record)
            write_history(self.folder, [record], "a", HISTORY_COLUMNS)
            if tensorboard:
                tensorboard.add_scalar("train/loss", loss, epoch)
                for key in ("accuracy", "segment_f1", "event_f1", "average"):
                    tensorboard.add_scalar(f"{cfg.selection}/{key}", chosen[key], epoch)
            if best is None or chosen["average"] > best["average"]:
                best = record
                save_checkpoint(self.checkpoints / "best.pt", self._payload(model, epoch, record))
            save_checkpoint(last, {**self._payload(model, epoch, record), "optimizer": optimizer.state_dict(),
                                   "scheduler": scheduler.state_dict(), **rng_states(self.device), "history": history,
                                   "best": best})
            print(f"epoch {epoch}/{cfg.epochs}: loss {loss:.4f} | {cfg.selection} Acc {100 * chosen['accuracy']:.1f} "
                  f"Seg-F1 {100 * chosen['segment_f1']:.1f} Eve-F1 {100 * chosen['event_f1']:.1f} "
                  f"Avg {100 * chosen['average']:.1f} | {record['seconds']:.1f} s")
        if tensorboard:
            tensorboard.close()
        if best is None:
            raise UserError("train.epochs is 0: nothing was trained")
        best_model = self.kind.from_checkpoint(load_checkpoint(self.checkpoints / "best.pt"), self.device)
        test = self._evaluate(best_model, self.test_data)
        selection = {"split": cfg.selection, "metric": "mean of accuracy, segment_f1, event_f1 (total)",
                     "best_epoch": best["epoch"], "metrics": {k: best[k] for k in ("accuracy", "segment_f1",
                                                                                   "event_f1", "average")}}
        if cfg.selection == "test":
            selection["per_subset"] = per_subset_selection(history)
            selection["protocol"] = ("published: the table's seen, unseen and total rows each come from the epoch "
                                     "with the best average on that subset of test; predictions.csv and the "
                                     "plots come from the epoch best on total")
            for subset, chosen_row in selection["per_subset"].items():
                test.summaries[subset] = chosen_row["metrics"]
        return TrainingResult(test, best["epoch"], selection, history)

    def excluded_by_split(self) -> dict:
        """Videos the cache left out of each split this run read."""
        return {data.videos.split: subset_counts(data.excluded)
                for data in (self.train_data, self.selection_data, self.test_data)}


@dataclass
class CheckpointEvaluation:
    evaluation: Evaluation
    kind: object  # what the checkpoint holds, with its own settings, whatever the config says
    epoch: int
    excluded_by_split: dict


def usable_checkpoint(config: Config, path) -> dict:
    """The checkpoint at ``path``, checked against the configured encoder before any work: its
    layout, the family it was trained on, its embedding widths."""
    checkpoint = load_checkpoint(path)
    kind = kind_of_checkpoint(checkpoint, path)
    kind.from_checkpoint(checkpoint, "cpu", path)  # a layout of another version is refused here
    check_fits(path, (checkpoint.get("config") or {}).get("encoder"), checkpoint["widths"], config,
               family(config.encoder.family))
    return checkpoint


def evaluate_checkpoint(config: Config, checkpoint_path, split: str, checkpoint: dict | None = None
                        ) -> CheckpointEvaluation:
    """A saved checkpoint (with its own settings) on ``split``, all classes + other."""
    checkpoint = checkpoint or usable_checkpoint(config, checkpoint_path)
    kind = kind_of_checkpoint(checkpoint, checkpoint_path)
    device = resolve_device(config.device)
    index = AnnotationIndex.load(config.data.meta_csv, config.data.label_json)
    index.require_splits({split: "eval.split"})
    companions = wanted_companions(config, kind.settings) if getattr(kind, "companions", False) else None
    cache = ensure_features(config, [split], index, companions=companions is not None)
    data = load_split(cache, index, split, index.all_vocabulary, companions)
    texts = class_texts(cache, config, index.all_vocabulary.names, device)
    widths = {"audio": texts[0].shape[1], "vision": texts[1].shape[1]}
    if checkpoint.get("widths", widths) != widths:
        raise UserError(f"{checkpoint_path} was trained on features of widths {checkpoint['widths']} but the cache at "
                        f"{cache.root} holds {widths}; point cache.dir at the cache it was trained on")
    model = kind.from_checkpoint(checkpoint, device, checkpoint_path)
    evaluation = kind.evaluate(model, data, texts, config)
    return CheckpointEvaluation(evaluation, kind, checkpoint["epoch"], {split: subset_counts(data.excluded)})
