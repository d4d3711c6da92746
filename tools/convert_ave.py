"""Turn the AVE dataset's annotations (Tian et al., ECCV 2018) into this toolkit's annotation layout for an
open-vocabulary benchmark (AVE-OV): its split lists plus your seen/unseen class list give a meta CSV and a label
JSON that every command reads (data.meta_csv, data.label_json).

    python tools/convert_ave.py --annotations AVE/Annotations.txt --splits AVE/trainSet.txt AVE/valSet.txt \\
        AVE/testSet.txt --classes my_ave_classes.csv --output ave_ov
    python tools/prepare_videos.py --videos AVE/AVE_Dataset data.meta_csv=ave_ov/ovave_dataset_meta.csv \\
        data.label_json=ave_ov/released_ovavel_dataset_anno.json data.media_root=ave_ov

AVE's files hold one clip a line, "Category&VideoID&Quality&StartTime&EndTime" (a header line is skipped); the
split lists are given in the order train, val, test. The class list is a CSV with columns cls_name and cls_type
(seen or unseen; close or open as in OV-AVEBench's meta CSV). A clip of a class the list does not name is left out,
and so is a training clip of an unseen class (the open-vocabulary protocol); the counts are printed. A clip's
segment t (of 10) is an event when it lies in [StartTime, EndTime).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import cli  # noqa: E402
from common.errors import UserError  # noqa: E402
from data.annotations import NUM_SEGMENTS, SPLITS  # noqa: E402

TYPES = {"seen": "close", "close": "close", "unseen": "open", "open": "open"}
META, LABELS = "ovave_dataset_meta.csv", "released_ovavel_dataset_anno.json"


def read_clips(path: Path) -> list[dict]:
    """AVE's "Category&VideoID&Quality&StartTime&EndTime" lines."""
    if not path.is_file():
        raise UserError(f"{path} not found")
    clips = []
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        fields = line.strip().split("&")
        if not line.strip() or fields[0] == "Category":
            continue
        if len(fields) != 5:
            raise UserError(f"{path} line {number}: expected Category&VideoID&Quality&StartTime&EndTime, got {line!r}")
        try:
            start, end = int(fields[3]), int(fields[4])
        except ValueError:
            raise UserError(f"{path} line {number}: StartTime and EndTime must be whole seconds, got {line!r}") from None
        if not 0 <= start < end <= NUM_SEGMENTS:
            raise UserError(f"{path} line {number}: the event [{start}, {end}) does not lie in 0..{NUM_SEGMENTS} s")
        clips.append({"category": fields[0].strip(), "vid": fields[1].strip(), "start": start, "end": end})
    return clips


def read_class_list(path: Path) -> dict[str, str]:
    """``{class name: close | open}``."""
    if not path.is_file():
        raise UserError(f"--classes {path} not found")
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if not {"cls_name", "cls_type"} <= set(reader.fieldnames or []):
            raise UserError(f"--classes {path}: the header needs cls_name and cls_type (seen or unseen)")
        classes = {}
        for number, row in enumerate(reader, start=2):
            kind = TYPES.get(row["cls_type"].strip().lower())
            if kind is None:
                raise UserError(f"--classes {path} line {number}: cls_type {row['cls_type']!r} must be seen or unseen")
            classes[row["cls_name"].strip()] = kind
    if "close" not in classes.values() or "open" not in classes.values():
        raise UserError(f"--classes {path} must name seen and unseen classes")
    return classes


def convert(annotations: Path, split_files: list[Path], class_list: Path, output: Path) -> Counter:
    """Write the meta CSV and label JSON under ``output``; the counts of what was kept and left out."""
    labelled = {clip["vid"]: clip for clip in read_clips(annotations)}
    classes = read_class_list(class_list)
    rows, labels, counts = [], {}, Counter()
    for split, path in zip(SPLITS, split_files):
        for clip in read_clips(path):
            clip = labelled.get(clip["vid"], clip)
            kind = classes.get(clip["category"])
            if kind is None:
                counts["left out: class not in the list"] += 1
                continue
            if split == "train" and kind == "open":
                counts["left out: unseen class in train"] += 1
                continue
            rows.append({"split": split, "cls_name": clip["category"], "cls_type": kind, "vid_name": clip["vid"]})
            marks = [int(clip["start"] <= t < clip["end"]) for t in range(NUM_SEGMENTS)]
            labels[clip["vid"]] = {"category": clip["category"], "label": json.dumps(marks)}
            counts[f"{split} {'seen' if kind == 'close' else 'unseen'}"] += 1
    output.mkdir(parents=True, exist_ok=True)
    with open(output / META, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["split", "cls_name", "cls_type", "vid_name"])
        writer.writeheader()
        writer.writerows(rows)
    (output / LABELS).write_text(json.dumps(labels, indent=1))
    return counts


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=cli.description(__doc__), epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--annotations", required=True, help="AVE's Annotations.txt")
    parser.add_argument("--splits", nargs=3, required=True, metavar=("TRAIN", "VAL", "TEST"),
                        help="AVE's trainSet.txt, valSet.txt and testSet.txt")
    parser.add_argument("--classes", required=True, help="CSV of cls_name, cls_type (seen or unseen)")
    parser.add_argument("--output", required=True, help="folder for the meta CSV and the label JSON")
    args = parser.parse_args(argv)
    counts = convert(Path(args.annotations), [Path(p) for p in args.splits], Path(args.classes), Path(args.output))
    for what, number in sorted(counts.items()):
        print(f"{what}: {number}")
    print(f"written: {Path(args.output) / META}, {Path(args.output) / LABELS}")


if __name__ == "__main__":
    cli.run(main)
