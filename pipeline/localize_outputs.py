"""What a localization leaves behind: events.json, segments.csv, a timeline per video, and the
summary lines printed."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from common.files import atomic_write, atomic_write_json
from pipeline.localize import VideoResult

MESSAGES = {"what": "the localization's outputs", "way_out": "give another --output"}


def write_outputs(folder: Path, results: list[VideoResult], classes: list[str], method: str, encoder: str,
                  threshold: float = 0.0, plots: bool = True) -> list[str]:
    """segments.csv, one timeline PNG per video and, last, events.json (each file written whole,
    then renamed: a full disk never leaves a truncated one); returns the summary lines."""
    folder = Path(folder)
    table = io.StringIO(newline="")
    writer = csv.writer(table)
    writer.writerow(["path", "segment", "start", "end", "label", "score"])
    for r in results:
        writer.writerows([r.path, i, start, start + 1, label, round(score, 4)]
                         for i, (start, label, score) in enumerate(zip(r.starts, r.labels, r.confidence)))
    atomic_write(folder / "segments.csv", lambda f: f.write(table.getvalue().encode()), **MESSAGES)
    if plots:
        from pipeline.plots import localization_figure, plt

        (folder / "timelines").mkdir(exist_ok=True)
        for i, r in enumerate(results):
            if r.localized and r.labels:
                fig = localization_figure(r.starts, r.labels, r.confidence, classes, Path(r.path).name)
                fig.savefig(folder / "timelines" / f"{i:04d}_{Path(r.path).stem}.png", dpi=110)
                plt.close(fig)
    atomic_write_json(folder / "events.json", {"classes": classes, "method": method, "encoder": encoder,
                                               "threshold": threshold, "videos": [r.record() for r in results]},
                      **MESSAGES)
    lines = []
    for r in results:
        if not r.localized:
            lines.append(f"{r.path}: {r.status} ({r.reason})")
            continue
        lines.append(f"{r.path}: {len(r.labels)} s, {len(r.events)} event(s)"
                     + (f"; {r.status} ({r.reason})" if r.status != "ok" else ""))
        lines += [f"  {clock(e['start'])}-{clock(e['end'])}  {e['class']}  {e['score']:.2f}" for e in r.events]
    return lines


def clock(seconds: float) -> str:
    """mm:ss, or h:mm:ss from an hour on."""
    minutes, rest = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{rest:02d}" if hours else f"{minutes:02d}:{rest:02d}"
