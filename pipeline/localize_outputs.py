"""What a localization leaves behind: events.json, segments.csv, a timeline per video, and the
summary lines printed."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from common.files import atomic_write, atomic_write_json
from pipeline.localize import SCORE_DIGITS, VideoResult

MESSAGES = {"what": "the localization's outputs", "way_out": "give another --output"}
NAME_BYTES = 255  # the longest file name most file systems take


def write_outputs(folder: Path, results: list[VideoResult], classes: list[str], method: str, encoder: str,
                  threshold: float = 0.0, plots: bool = True) -> list[str]:
    """events.json and segments.csv first (each written whole, then renamed: a full disk never
    leaves a truncated one), then one timeline PNG per video, each on its own: a timeline that
    cannot be saved is a line of the summary, never the loss of the others. Returns the summary
    lines."""
    folder = Path(folder)
    atomic_write_json(folder / "events.json", {"classes": classes, "method": method, "encoder": encoder,
                                               "threshold": threshold, "videos": [r.record() for r in results]},
                      **MESSAGES)
    table = io.StringIO(newline="")
    writer = csv.writer(table)
    writer.writerow(["path", "segment", "start", "end", "label", "score"])
    for r in results:
        writer.writerows([r.path, i, start, start + 1, label, round(score, SCORE_DIGITS)]
                         for i, (start, label, score) in enumerate(zip(r.starts, r.labels, r.confidence)))
    atomic_write(folder / "segments.csv", lambda f: f.write(table.getvalue().encode()), **MESSAGES)
    unsaved = write_timelines(folder / "timelines", results, classes) if plots else {}
    lines = []
    for r in results:
        if r.path in unsaved:
            lines.append(f"{r.path}: its timeline was not saved ({unsaved[r.path]})")
        if not r.localized:
            lines.append(f"{r.path}: {r.status} ({r.reason})")
            continue
        lines.append(f"{r.path}: {len(r.labels)} s, {len(r.events)} event(s)"
                     + (f"; {r.status} ({r.reason})" if r.status != "ok" else ""))
        lines += [f"  {clock(e['start'])}-{clock(e['end'])}  {e['class']}  {e['score']:.{SCORE_DIGITS}f}"
                  for e in r.events]
    return lines


def write_timelines(folder: Path, results: list[VideoResult], classes: list[str]) -> dict[str, str]:
    """One PNG per localized video, named ``<n>_<file stem>.png`` (the stem cut to fit a file
    name); returns why those that could not be saved were not."""
    from pipeline.plots import localization_figure, plt

    unsaved = {}
    for i, r in enumerate(results):
        if not (r.localized and r.labels):
            continue
        fig = localization_figure(r.starts, r.labels, r.confidence, classes, Path(r.path).name)
        try:
            folder.mkdir(exist_ok=True)
            fig.savefig(folder / timeline_name(i, Path(r.path).stem), dpi=110)
        except OSError as err:
            unsaved[r.path] = f"{type(err).__name__}: {err.strerror or err}"
        finally:
            plt.close(fig)
    return unsaved


def timeline_name(index: int, stem: str, limit: int = NAME_BYTES) -> str:
    """``0003_<stem>.png`` within ``limit`` bytes of UTF-8, the stem cut on a character."""
    head, tail = f"{index:04d}_", ".png"
    room = limit - len(head.encode()) - len(tail.encode())
    return head + stem.encode()[:room].decode(errors="ignore") + tail


def clock(seconds: float) -> str:
    """mm:ss, or h:mm:ss from an hour on."""
    minutes, rest = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{rest:02d}" if hours else f"{minutes:02d}:{rest:02d}"
