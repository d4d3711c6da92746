"""The OV-AVEBench annotation index: which videos, in which split, with which labels.

Reads the meta CSV (``split,cls_name,cls_type,vid_name``) and the label JSON
(``vid -> {"category", "label": "[0, 1, ...]"}``) and validates them completely, so every
later stage can trust the index. Class indices follow the published convention: class names
sorted, then ``other`` (background) last; training uses the seen classes only.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.errors import UserError

OTHER = "other"
NUM_SEGMENTS = 10
SPLITS = ("train", "val", "test")
SUBSETS = ("seen", "unseen", "total")
SEEN_FLAGS = {"close": True, "open": False}
META_COLUMNS = ("split", "cls_name", "cls_type", "vid_name")
_LABEL_PATTERN = re.compile(r"\[\s*[01](\s*,\s*[01]){%d}\s*\]" % (NUM_SEGMENTS - 1))


class AnnotationError(UserError):
    """The annotation files are missing or inconsistent."""


@dataclass(frozen=True)
class Vocabulary:
    """Candidate class names in index order; the last one is the background ``other``."""

    names: tuple[str, ...]

    @classmethod
    def from_classes(cls, class_names) -> "Vocabulary":
        return cls(tuple(sorted(set(class_names))) + (OTHER,))

    @property
    def background_index(self) -> int:
        return len(self.names) - 1

    def __len__(self) -> int:
        return len(self.names)

    def indices(self, names) -> np.ndarray:
        lookup = {name: i for i, name in enumerate(self.names)}
        try:
            return np.array([lookup[name] for name in names], dtype=np.int64)
        except KeyError as err:
            raise AnnotationError(
                f"class {err.args[0]!r} is not in this vocabulary of {len(self)} classes "
                f"(did an unseen class reach the seen vocabulary?)") from None


@dataclass(frozen=True)
class VideoSet:
    """Videos of one split (and subset) with their labels under one vocabulary."""

    split: str
    vid_names: np.ndarray  # [N] str
    categories: np.ndarray  # [N] str, the annotated category (also for background videos)
    seen: np.ndarray  # [N] bool, cls_type == close
    labels: np.ndarray  # [N, 10] uint8, 1 = the event is audible and visible
    vocabulary: Vocabulary

    def __len__(self) -> int:
        return len(self.vid_names)

    @property
    def is_background(self) -> np.ndarray:
        return ~self.labels.any(axis=1)

    @property
    def class_names(self) -> np.ndarray:
        """The video's class: its category, or ``other`` for a background video."""
        return np.where(self.is_background, OTHER, self.categories)

    @property
    def class_index(self) -> np.ndarray:
        return self.vocabulary.indices(self.class_names)

    @property
    def segment_classes(self) -> np.ndarray:
        """``[N, 10]`` class index per segment: the video's class on events, else background."""
        return np.where(self.labels.astype(bool), self.class_index[:, None], self.vocabulary.background_index)

    def subset(self, name: str) -> "VideoSet":
        if name not in SUBSETS:
            raise AnnotationError(f"unknown subset {name!r}; choose one of {', '.join(SUBSETS)}")
        if name == "total":
            return self
        return self.select(self.seen if name == "seen" else ~self.seen)

    def select(self, mask) -> "VideoSet":
        mask = np.asarray(mask)
        return VideoSet(self.split, self.vid_names[mask], self.categories[mask], self.seen[mask],
                        self.labels[mask], self.vocabulary)


class AnnotationIndex:
    """All annotated videos of one meta CSV, validated, with the seen and all vocabularies."""

    def __init__(self, vid_names, splits, categories, seen, labels, source: str):
        self.vid_names = np.asarray(vid_names)
        self.splits = np.asarray(splits)
        self.categories = np.asarray(categories)
        self.seen = np.asarray(seen, dtype=bool)
        self.labels = np.asarray(labels, dtype=np.uint8)
        self.source = source
        self.all_vocabulary = Vocabulary.from_classes(self.categories)
        self.seen_vocabulary = Vocabulary.from_classes(self.categories[self.seen])

    @classmethod
    def load(cls, meta_csv, label_json) -> "AnnotationIndex":
        meta_csv, label_json = Path(meta_csv), Path(label_json)
        rows = _read_meta(meta_csv)
        annotations = _read_labels(label_json)
        labels = []
        for line, row in rows:
            vid = row["vid_name"]
            entry = annotations.get(vid)
            if entry is None:
                raise AnnotationError(f"{meta_csv} line {line}: video {vid!r} has no entry in {label_json}")
            labels.append(_parse_entry(label_json, vid, entry, row["cls_name"]))
        return cls(
            vid_names=[row["vid_name"] for _, row in rows],
            splits=[row["split"] for _, row in rows],
            categories=[row["cls_name"] for _, row in rows],
            seen=[SEEN_FLAGS[row["cls_type"]] for _, row in rows],
            labels=np.array(labels, dtype=np.uint8).reshape(-1, NUM_SEGMENTS),
            source=f"{meta_csv} + {label_json}",
        )

    def require_splits(self, needs: dict[str, str]) -> None:
        """Stop before any work when a split the run needs has no video: ``needs`` maps each
        split to why it is needed."""
        for split, why in needs.items():
            if not (self.splits == split).any():
                present = ", ".join(s for s in SPLITS if (self.splits == s).any())
                raise AnnotationError(f"{self.source}: no {split} videos, but this run needs them ({why}); the "
                                      f"file has {present or 'no split'}. Use a meta CSV with that split or "
                                      "change the config")

    def default_vocabulary(self, split: str) -> Vocabulary:
        """Training scores the seen classes only; evaluation always scores all classes."""
        return self.seen_vocabulary if split == "train" else self.all_vocabulary

    def videos(self, split: str, subset: str = "total", vocabulary: Vocabulary | None = None) -> VideoSet:
        if split not in SPLITS:
            raise AnnotationError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        mask = self.splits == split
        videos = VideoSet(split, self.vid_names[mask], self.categories[mask], self.seen[mask],
                          self.labels[mask], vocabulary or self.default_vocabulary(split))
        return videos.subset(subset)


def _open_text(path: Path, what: str):
    if not path.is_file():
        raise AnnotationError(f"{what} not found: {path} (check the path in your config's data section)")
    return path.open(newline="", encoding="utf-8-sig")


def _read_meta(path: Path) -> list[tuple[int, dict]]:
    with _open_text(path, "meta CSV") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in META_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise AnnotationError(f"{path}: missing column(s) {', '.join(missing)}; "
                                  f"the header must name {', '.join(META_COLUMNS)}")
        rows = [(line, {key: (row[key] or "").strip() for key in META_COLUMNS})
                for line, row in enumerate(reader, start=2)]
    if not rows:
        raise AnnotationError(f"{path}: no videos listed")
    _validate_meta(path, rows)
    return rows


def _validate_meta(path: Path, rows) -> None:
    first_line = {}
    class_flag = {}
    for line, row in rows:
        vid, split, name, flag = row["vid_name"], row["split"], row["cls_name"], row["cls_type"]
        where = f"{path} line {line}"
        if not vid or not name:
            raise AnnotationError(f"{where}: empty vid_name or cls_name")
        if vid in first_line:
            raise AnnotationError(f"{where}: duplicate video name {vid!r} (first on line {first_line[vid]})")
        first_line[vid] = line
        if split not in SPLITS:
            raise AnnotationError(f"{where}: split {split!r} must be one of {', '.join(SPLITS)}")
        if flag not in SEEN_FLAGS:
            raise AnnotationError(f"{where}: cls_type {flag!r} must be 'close' (seen) or 'open' (unseen)")
        if name == OTHER:
            raise AnnotationError(f"{where}: class name {OTHER!r} is reserved for background segments")
        if class_flag.setdefault(name, (flag, line))[0] != flag:
            raise AnnotationError(f"{where}: class {name!r} is {flag!r} here but "
                                  f"{class_flag[name][0]!r} on line {class_flag[name][1]}")
        if split == "train" and flag == "open":
            raise AnnotationError(f"{where}: unseen class {name!r} (cls_type open) is in the train split; "
                                  "only seen (close) classes may be trained on")


def _read_labels(path: Path) -> dict:
    with _open_text(path, "label JSON") as handle:
        try:
            annotations = json.load(handle)
        except json.JSONDecodeError as err:
            raise AnnotationError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(annotations, dict):
        raise AnnotationError(f"{path}: expected an object mapping video names to annotations")
    return annotations


def _parse_entry(path: Path, vid: str, entry, cls_name: str) -> list[int]:
    if not isinstance(entry, dict) or "label" not in entry or "category" not in entry:
        raise AnnotationError(f"{path}: video {vid!r} must have the keys 'category' and 'label'")
    if entry["category"] != cls_name:
        raise AnnotationError(f"{path}: video {vid!r} has category {entry['category']!r} "
                              f"but the meta CSV says {cls_name!r}")
    label = entry["label"]
    if isinstance(label, str) and _LABEL_PATTERN.fullmatch(label.strip()):
        return json.loads(label)
    if isinstance(label, list) and len(label) == NUM_SEGMENTS and all(type(v) is int and v in (0, 1) for v in label):
        return label
    raise AnnotationError(f"{path}: video {vid!r} has label {label!r}; "
                          f"expected {NUM_SEGMENTS} zeros and ones like \"[0, 1, 1, 0, 0, 0, 0, 0, 0, 0]\"")
