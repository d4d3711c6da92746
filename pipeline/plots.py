"""PNG figures written with every evaluation, readable without this code: per-segment
timelines of sampled videos, per-class F1 with seen and unseen classes told apart, and the
training curves of a fine-tuning run."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402

import metrics  # noqa: E402
from pipeline.evaluate import Evaluation  # noqa: E402

SEEN_COLOUR, UNSEEN_COLOUR = "#1f77b4", "#ff7f0e"


def per_class_f1(evaluation: Evaluation) -> np.ndarray:
    """Segment-level F1 of each class row, pooled over all scored videos (NaN: never present)."""
    videos = evaluation.videos
    gt = metrics.labels_to_matrix(videos.segment_classes, len(videos.vocabulary))
    pred = evaluation.decoded.pred_matrix
    tp = (pred & gt).sum(axis=(0, 2))
    errors = (pred ^ gt).sum(axis=(0, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tp + errors > 0, 2 * tp / (2 * tp + errors), np.nan)


def class_f1_figure(evaluation: Evaluation, run: str = ""):
    names = np.array(evaluation.videos.vocabulary.names[:-1])
    f1 = per_class_f1(evaluation)[:-1]
    seen_names = set(evaluation.videos.categories[evaluation.videos.seen])
    present = ~np.isnan(f1)
    order = np.argsort(-np.nan_to_num(f1[present], nan=-1))
    names, f1 = names[present][order], f1[present][order]
    colours = [SEEN_COLOUR if n in seen_names else UNSEEN_COLOUR for n in names]
    fig, ax = plt.subplots(figsize=(8, max(3.0, 0.22 * len(names) + 1)))
    ax.barh(np.arange(len(names)), 100 * f1, color=colours)
    for y, value in enumerate(100 * f1):
        ax.text(value + 1, y, f"{value:.1f}", va="center", fontsize=6)
    ax.set_yticks(np.arange(len(names)), names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("segment-level F1 per class (%)")
    ax.set_title(f"{run + ': ' if run else ''}{evaluation.split}, {evaluation.strategy}: per-class F1", fontsize=9)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in (SEEN_COLOUR, UNSEEN_COLOUR)]
    ax.legend(handles, ["seen", "unseen"], loc="lower right")
    fig.tight_layout()
    return fig


def _cell_text(name: str) -> str:
    """A class name wrapped onto short lines so it fits a one-second cell whole."""
    return "\n".join(textwrap.wrap(name, 11, break_long_words=True))


def timelines_figure(evaluation: Evaluation, count: int = 8, run: str = ""):
    """True vs predicted label per segment for ``count`` videos spread over the split; class
    names written in full, background segments left blank (see the legend)."""
    videos, decoded = evaluation.videos, evaluation.decoded
    names = videos.vocabulary.names
    picks = np.unique(np.linspace(0, len(videos) - 1, min(count, len(videos))).round().astype(int))
    background = videos.vocabulary.background_index
    truth, class_names = videos.segment_classes, videos.class_names  # derived arrays: once, not per video
    fig, axes = plt.subplots(len(picks), 1, figsize=(12, 1.5 * len(picks) + 1.0), squeeze=False)
    for ax, i in zip(axes[:, 0], picks):
        rows = np.stack([truth[i], decoded.segment_labels[i]])
        ax.imshow(np.where(rows == background, np.nan, rows), aspect="auto", cmap="tab20",
                  vmin=0, vmax=len(names) - 1, interpolation="nearest")
        for r, row in enumerate(rows):
            for t, label in enumerate(row):
                if label != background:
                    ax.text(t, r, _cell_text(names[label]), ha="center", va="center", fontsize=5.5, linespacing=0.9)
        ax.set_yticks([0, 1], ["truth", "predicted"], fontsize=7)
        ax.set_xticks(range(rows.shape[1]), [f"{t}-{t + 1}s" for t in range(rows.shape[1])], fontsize=6)
        subset = "seen" if videos.seen[i] else "unseen"
        ax.set_title(f"{videos.vid_names[i]} ({subset}, {class_names[i]}): "
                     f"Seg-F1 {100 * evaluation.scores.segment_f1[i]:.0f}, "
                     f"Eve-F1 {100 * evaluation.scores.event_f1[i]:.0f}", fontsize=8, loc="left")
    fig.suptitle(f"{run + ': ' if run else ''}{evaluation.split}, {evaluation.strategy}, {len(picks)} of "
                 f"{len(videos)} videos", fontsize=9)
    fig.legend([plt.Rectangle((0, 0), 1, 1, facecolor="white", edgecolor="grey")],
               [f"blank cell = background ({names[background]})"], loc="upper right", fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def localization_figure(starts: list[int], labels: list[str], confidence: list[float], classes: list[str],
                        title: str):
    """One row per class that occurs in a localized video, a cell per second (at its start on the
    file's clock) shaded by the segment's confidence; background (``other``) seconds stay blank."""
    present = [c for c in classes if c in set(labels) and c != classes[-1]]
    rows = max(1, len(present))
    seconds = starts[-1] + 1 if starts else 0
    fig, ax = plt.subplots(figsize=(min(16, 2 + 0.35 * seconds), 0.5 * rows + 1.2))
    grid = np.full((rows, seconds), np.nan)
    for t, label, score in zip(starts, labels, confidence):
        if label in present:
            grid[present.index(label), t] = score
    # vmin below 0: a labelled second stays visibly shaded even at confidence 0
    image = ax.imshow(grid, aspect="auto", cmap="Blues", vmin=-0.4, vmax=1, interpolation="nearest")
    ax.set_yticks(range(rows), present or ["(no event)"], fontsize=8)
    step = max(1, seconds // 20)
    ax.set_xticks(range(0, seconds, step), [f"{t}s" for t in range(0, seconds, step)], fontsize=7)
    ax.set_title(f"{title}: label per second (shade = confidence, blank = {classes[-1]})", fontsize=9, loc="left")
    fig.colorbar(image, ax=ax, fraction=0.02, pad=0.01, ticks=[0, 0.5, 1], label="confidence")
    fig.tight_layout()
    return fig


def training_curves_figure(history: list[dict], selected_epoch: int | None = None, run: str = ""):
    epochs = [h["epoch"] for h in history]
    fig, (loss_ax, metric_ax) = plt.subplots(1, 2, figsize=(10, 3.6))
    loss_ax.plot(epochs, [h["train_loss"] for h in history], marker="o")
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("training loss")
    split = history[0]["selection_split"] if history else "val"
    for key, label in (("accuracy", "Acc"), ("segment_f1", "Seg-F1"), ("event_f1", "Eve-F1"), ("average", "Avg")):
        metric_ax.plot(epochs, [100 * h[key] for h in history], marker="o", label=label)
    metric_ax.set_xlabel("epoch")
    metric_ax.set_ylabel(f"{split} metric (%)")
    for ax in (loss_ax, metric_ax):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        if selected_epoch is not None:
            ax.axvline(selected_epoch, color="black", linestyle="--", linewidth=1,
                       label=f"selected: epoch {selected_epoch}" if ax is metric_ax else None)
    metric_ax.legend(fontsize=7)
    fig.suptitle(f"{run + ': ' if run else ''}training loss and {split} metrics", fontsize=9)
    fig.tight_layout()
    return fig


def write_plots(evaluation: Evaluation, folder: Path, videos: int, history: list[dict] | None = None,
                selected_epoch: int | None = None) -> list[Path]:
    """Every plot of a run into its folder; each title names the run (the folder)."""
    folder = Path(folder)
    run = folder.name
    figures = {"timelines.png": timelines_figure(evaluation, videos, run),
               "per_class_f1.png": class_f1_figure(evaluation, run)}
    if history:
        figures["training_curves.png"] = training_curves_figure(history, selected_epoch, run)
    for name, fig in figures.items():
        fig.savefig(folder / name, dpi=110)
        plt.close(fig)
    return [folder / name for name in figures]
