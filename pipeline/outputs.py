"""What every run leaves behind in its folder: the resolved config, a log, ``results.json``,
per-video predictions, and the paper's table on screen.

predictions.csv, one row per scored video:
  vid_name, subset (seen/unseen), true_class, predicted_class,
  true_segments      ten 0/1 characters: where the true class is audible and visible
  predicted_segments ten class names joined by "|": the label of each segment
  predicted_events   training-free runs: ten 0/1 characters where audio and frame agree;
                     with predicted_class this is exactly what the published decoder scores
  segment_f1, event_f1
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from common.config import to_dict
from common.errors import UserError
from common.locking import LOCK_FILE, FolderBusy, FolderLock
from common.runinfo import code_version, library_versions
from data.annotations import SUBSETS
from common.files import atomic_write_json, writing
from pipeline.evaluate import CACHE_EXCLUSION, Evaluation

PREDICTION_COLUMNS = ("vid_name", "subset", "true_class", "predicted_class", "true_segments",
                      "predicted_segments", "predicted_events", "segment_f1", "event_f1")
TABLE_COLUMNS = (("accuracy", "Acc"), ("segment_f1", "Seg-F1"), ("event_f1", "Eve-F1"), ("average", "Avg"))


RESULTS_FILE = "results.json"


def run_name(*parts) -> str:
    """A folder name from file stems and words, e.g. ``v0_training_free_v01_test``."""
    return "_".join(str(p) for p in parts if p)


def format_table(evaluation: Evaluation, title: str, excluded_by_split: dict | None = None) -> str:
    """The paper's layout: seen / unseen / total rows, percentages with one decimal; then the
    videos left out of every split the run read."""
    lines = [title, f"{'subset':<8}{'videos':>8}" + "".join(f"{label:>8}" for _, label in TABLE_COLUMNS)]
    for subset in SUBSETS:
        summary = evaluation.summaries[subset]
        cells = ("".join(f"{100 * summary[key]:>8.1f}" for key, _ in TABLE_COLUMNS) if summary
                 else f"{'(no videos)':>32}")
        lines.append(f"{subset:<8}{evaluation.counts[subset]:>8}{cells}")
    if evaluation.excluded["total"]:
        lines.append(f"{evaluation.excluded['total']} videos left out (seen {evaluation.excluded['seen']}, unseen "
                     f"{evaluation.excluded['unseen']}): {evaluation.excluded_reason}")
    for split, counts in (excluded_by_split or {}).items():
        if split != evaluation.split and counts["total"]:
            lines.append(f"{counts['total']} {split} videos left out (seen {counts['seen']}, unseen "
                         f"{counts['unseen']}): {CACHE_EXCLUSION.format(split=split)}")
    return "\n".join(lines)


def _mask_strings(mask) -> list[str]:
    """``[N, T]`` 0/1 -> N strings of T characters '0'/'1', built by numpy (no per-row lists)."""
    mask = np.ascontiguousarray(mask, dtype=np.uint8)
    return (mask + np.uint8(ord("0"))).view(f"S{mask.shape[1]}")[:, 0].astype(str).tolist()


def _joined_names(names, labels) -> list[str]:
    """``[N, T]`` class indices -> N strings ``name|name|...``, column by column in numpy."""
    columns = np.asarray(names)[labels]
    joined = columns[:, 0]
    for t in range(1, columns.shape[1]):
        joined = np.char.add(np.char.add(joined, "|"), columns[:, t])
    return joined.tolist()


def _predicted_class(evaluation: Evaluation) -> np.ndarray:
    """Training-free: the decoded video class. Otherwise the most frequent non-background
    segment label (the first in a tie), or background when there is none."""
    decoded = evaluation.decoded
    if decoded.video_class is not None:
        return decoded.video_class
    background = evaluation.videos.vocabulary.background_index
    counts = (decoded.segment_labels[:, :, None] == np.arange(background)).sum(axis=1)
    return np.where(counts.any(axis=1), counts.argmax(axis=1), background)


def prediction_rows(evaluation: Evaluation):
    """One dict per video. Every column is built for all videos at once: per-row access to
    derived arrays (``videos.class_names[i]`` recomputes the whole array) or per-row Python
    lists would make large splits slow."""
    videos, decoded, scores = evaluation.videos, evaluation.decoded, evaluation.scores
    names = videos.vocabulary.names
    n = len(videos)
    columns = {
        "vid_name": videos.vid_names.tolist(),
        "subset": np.where(videos.seen, "seen", "unseen").tolist(),
        "true_class": videos.class_names.tolist(),
        "predicted_class": np.asarray(names)[_predicted_class(evaluation)].tolist(),
        "true_segments": _mask_strings(videos.labels),
        "predicted_segments": _joined_names(names, decoded.segment_labels),
        "predicted_events": _mask_strings(decoded.is_event) if decoded.is_event is not None else [""] * n,
        "segment_f1": [repr(v) for v in scores.segment_f1.tolist()],
        "event_f1": [repr(v) for v in scores.event_f1.tolist()],
    }
    for values in zip(*(columns[name] for name in PREDICTION_COLUMNS)):
        yield dict(zip(PREDICTION_COLUMNS, values))


def refuse_foreign(folder: Path, key: str) -> None:
    """A folder the user names must be new, empty or one of this toolkit's (it holds the ``.lock``
    every run leaves): a folder of the user's own files is never written into."""
    if not folder.is_dir() or (folder / LOCK_FILE).exists():
        return
    entries = sorted(p.name for p in folder.iterdir())
    if entries:
        shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
        raise UserError(f"{folder} ({key}) already holds files that no run of this toolkit wrote ({shown}); its "
                        f"outputs would replace files of the same names. Give a new or empty folder as {key}")


class RunWriter:
    """Owns a run folder (a lock: no second process can write into it) and writes into it;
    ``log()`` also copies stdout to log.txt. Use as a context manager: leaving it releases
    the folder."""

    def __init__(self, lock: FolderLock):
        self.lock = lock
        self.folder = lock.folder
        self.started = time.time()

    @classmethod
    def for_training(cls, folder, key: str = "output.name") -> "RunWriter":
        """The training run's folder; resuming or refusing an existing run is the trainer's call."""
        refuse_foreign(Path(folder), key)
        return cls(FolderLock(folder, "training run", "set output.name to start another run").acquire())

    @classmethod
    def for_evaluation(cls, root, name: str | None, derived: str, results_file: str = RESULTS_FILE,
                       key: str = "output.name") -> "RunWriter":
        """A folder no other evaluation has written results (``results_file``) into: ``name``
        when set (an error if it already holds results; ``key`` is how the user gave it), else
        ``derived``, ``derived_2``, ... (the first free one), so no evaluation ever replaces
        another's results."""
        root = Path(root)
        if name:
            refuse_foreign(root / name, key)
            with writing(root / name, "the output folder", f"give another {key}"):
                lock = FolderLock(root / name, "evaluation", f"set {key} to another folder").acquire()
            if (lock.folder / results_file).exists():
                lock.release()
                raise UserError(f"{lock.folder} already holds the results of another evaluation; set {key} "
                                "to another folder (or delete that one)")
            return cls(lock)
        for attempt in itertools.count(1):
            lock = FolderLock(root / (derived if attempt == 1 else f"{derived}_{attempt}"), "evaluation", "")
            try:
                lock.acquire()
            except FolderBusy:
                continue
            if not (lock.folder / results_file).exists():
                return cls(lock)
            lock.release()

    def __enter__(self) -> "RunWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.lock.release()

    @contextlib.contextmanager
    def log(self):
        """Copy stdout to log.txt (appended: a resumed run keeps the earlier lines)."""
        with open(self.folder / "log.txt", "a") as log:
            log.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(sys.argv)}\n")
            stdout = sys.stdout

            class Tee:
                def write(self, text):
                    stdout.write(text)
                    log.write(text)
                    return len(text)

                def flush(self):
                    stdout.flush()
                    log.flush()

            sys.stdout = Tee()
            try:
                yield
            finally:
                sys.stdout = stdout

    def write_config(self, config) -> None:
        (self.folder / "config.yaml").write_text(yaml.safe_dump(to_dict(config), sort_keys=False))

    def write_predictions(self, evaluation: Evaluation) -> Path:
        path = self.folder / "predictions.csv"
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=PREDICTION_COLUMNS)
            writer.writeheader()
            writer.writerows(prediction_rows(evaluation))
        return path

    def write_results(self, config, evaluation: Evaluation, extra: dict | None = None,
                      excluded_by_split: dict | None = None) -> Path:
        results = {
            "split": evaluation.split,
            "strategy": evaluation.strategy,
            "metrics": evaluation.summaries,
            "videos": evaluation.counts,
            "excluded_videos": evaluation.excluded,
            "excluded_reason": evaluation.excluded_reason,
            "excluded_videos_by_split": excluded_by_split or {evaluation.split: evaluation.excluded},
            **(extra or {}),
            "config": to_dict(config),
            "code_version": code_version(),
            "libraries": library_versions(),
            "elapsed_seconds": round(time.time() - self.started, 3),
        }
        path = self.folder / RESULTS_FILE
        atomic_write_json(path, json.loads(json.dumps(results, default=float)))
        return path

    def write_all(self, config, evaluation: Evaluation, title: str, extra: dict | None = None,
                  history: list | None = None, excluded_by_split: dict | None = None,
                  selected_epoch: int | None = None) -> None:
        """Predictions, results, plots, config; then the table and where everything went.
        ``excluded_by_split``: videos left out of each split the run read (default: the
        evaluated split's)."""
        excluded_by_split = excluded_by_split or {evaluation.split: evaluation.excluded}
        with writing(self.folder, "the run's outputs", "set output.root to another disk and run again"):
            self.write_config(config)
            predictions = self.write_predictions(evaluation)
            results = self.write_results(config, evaluation, extra, excluded_by_split)
            plots = []
            if config.output.plots:
                from pipeline.plots import write_plots  # matplotlib is slow to import

                plots = write_plots(evaluation, self.folder, config.output.plot_videos, history, selected_epoch)
        print(format_table(evaluation, title, excluded_by_split))
        print(f"results:     {results}\npredictions: {predictions}")
        for path in plots:
            print(f"plot:        {path}")
