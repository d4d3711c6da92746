"""What a localization leaves behind: events.json, segments.csv, a timeline per video, and the
summary lines printed."""

from __future__ import annotations

import csv
from pathlib import Path

from common.files import atomic_write_json
from pipeline.localize import VideoResult


def write_outputs(folder: Path, results: list[VideoResult], classes: list[str], method: str, encoder: str,
                  plots: bool = True) -> list[str]:
    """events.json, segments.csv and one timeline PNG per video; returns the summary lines."""
    folder = Path(folder)
    atomic_write_json(folder / "events.json", {"classes": classes, "method": method, "encoder": encoder,
                                               "videos": [r.record() for r in results]})
    with open(folder / "segments.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "segment", "start", "end", "label", "score"])
        for r in results:
            writer.writerows([r.path, t, t, t + 1, label, round(score, 4)]
                             for t, (label, score) in enumerate(zip(r.labels, r.confidence)))
    if plots:
        from pipeline.plots import localization_figure, plt

        (folder / "timelines").mkdir(exist_ok=True)
        for i, r in enumerate(results):
            if r.status == "ok" and r.labels:
                fig = localization_figure(r.labels, r.confidence, classes, Path(r.path).name)
                fig.savefig(folder / "timelines" / f"{i:04d}_{Path(r.path).stem}.png", dpi=110)
                plt.close(fig)
    lines = []
    for r in results:
        if r.status != "ok":
            lines.append(f"{r.path}: {r.status} ({r.reason})")
            continue
        lines.append(f"{r.path}: {len(r.labels)} s, {len(r.events)} event(s)")
        lines += [f"  {clock(e['start'])}-{clock(e['end'])}  {e['class']}  {e['score']:.2f}" for e in r.events]
    return lines


def clock(seconds: float) -> str:
    """mm:ss, or h:mm:ss from an hour on."""
    minutes, rest = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{rest:02d}" if hours else f"{minutes:02d}:{rest:02d}"
