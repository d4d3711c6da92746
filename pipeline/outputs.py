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
import json
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from common.config import to_dict
from common.runinfo import code_version, library_versions
from data.annotations import SUBSETS
from data.feature_cache import atomic_write_json
from pipeline.evaluate import Evaluation

PREDICTION_COLUMNS = ("vid_name", "subset", "true_class", "predicted_class", "true_segments",
                      "predicted_segments", "predicted_events", "segment_f1", "event_f1")
TABLE_COLUMNS = (("accuracy", "Acc"), ("segment_f1", "Seg-F1"), ("event_f1", "Eve-F1"), ("average", "Avg"))


def run_folder(root, name: str | None, named_after, suffix: str | None = None) -> Path:
    """``<root>/<name>``; without a name, ``<stem of named_after>[_<suffix>]``."""
    return Path(root) / (name or "_".join(filter(None, [Path(named_after).stem, suffix])))


def format_table(evaluation: Evaluation, title: str) -> str:
    """The paper's layout: seen / unseen / total rows, percentages with one decimal."""
    lines = [title, f"{'subset':<8}{'videos':>8}" + "".join(f"{label:>8}" for _, label in TABLE_COLUMNS)]
    for subset in SUBSETS:
        summary = evaluation.summaries[subset]
        cells = ("".join(f"{100 * summary[key]:>8.1f}" for key, _ in TABLE_COLUMNS) if summary
                 else f"{'(no videos)':>32}")
        lines.append(f"{subset:<8}{evaluation.counts[subset]:>8}{cells}")
    if evaluation.excluded["total"]:
        lines.append(f"{evaluation.excluded['total']} videos left out (seen {evaluation.excluded['seen']}, unseen "
                     f"{evaluation.excluded['unseen']}): {evaluation.excluded_reason}")
    return "\n".join(lines)


def _mask_string(row) -> str:
    return "".join("1" if v else "0" for v in row)


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
    videos, decoded, scores = evaluation.videos, evaluation.decoded, evaluation.scores
    names = np.array(videos.vocabulary.names)
    predicted = names[_predicted_class(evaluation)]
    for i in range(len(videos)):
        yield {
            "vid_name": videos.vid_names[i],
            "subset": "seen" if videos.seen[i] else "unseen",
            "true_class": videos.class_names[i],
            "predicted_class": predicted[i],
            "true_segments": _mask_string(videos.labels[i]),
            "predicted_segments": "|".join(names[decoded.segment_labels[i]]),
            "predicted_events": _mask_string(decoded.is_event[i]) if decoded.is_event is not None else "",
            "segment_f1": repr(float(scores.segment_f1[i])),
            "event_f1": repr(float(scores.event_f1[i])),
        }


class RunWriter:
    """Creates the run folder and writes into it; ``log()`` also copies stdout to log.txt."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.started = time.time()

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

    def write_results(self, config, evaluation: Evaluation, extra: dict | None = None) -> Path:
        results = {
            "split": evaluation.split,
            "strategy": evaluation.strategy,
            "metrics": evaluation.summaries,
            "videos": evaluation.counts,
            "excluded_videos": evaluation.excluded,
            "excluded_reason": evaluation.excluded_reason,
            **(extra or {}),
            "config": to_dict(config),
            "code_version": code_version(),
            "libraries": library_versions(),
            "elapsed_seconds": round(time.time() - self.started, 3),
        }
        path = self.folder / "results.json"
        atomic_write_json(path, json.loads(json.dumps(results, default=float)))
        return path

    def write_all(self, config, evaluation: Evaluation, title: str, extra: dict | None = None,
                  history: list | None = None) -> None:
        """Predictions, results, plots, config; then the table and where everything went."""
        self.write_config(config)
        predictions = self.write_predictions(evaluation)
        results = self.write_results(config, evaluation, extra)
        plots = []
        if config.output.plots:
            from pipeline.plots import write_plots  # matplotlib is slow to import

            plots = write_plots(evaluation, self.folder, config.output.plot_videos, history)
        print(format_table(evaluation, title))
        print(f"results:     {results}\npredictions: {predictions}")
        for path in plots:
            print(f"plot:        {path}")
