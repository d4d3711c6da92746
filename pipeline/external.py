"""Read another method's predictions and score them exactly like our own runs.

Accepted files (one entry per video of the split):

- CSV with a ``vid_name`` column and either ``predicted_segments`` (ten class names joined
  by ``|``; background is ``other``) or ``predicted_class`` + ``predicted_events`` (ten 0/1
  characters). Where ``predicted_events`` is filled, the row is scored with the published
  training-free rule (see ``models.decoders.training_free_prediction``); a predictions.csv
  written by this toolkit is therefore scored to the same numbers. A row that fills all three
  must agree (the rule's labels are ``predicted_segments``): a file edited in one column only is
  refused, never scored by the column left as it was.
- JSON object ``{vid_name: [ten class names]}``, or ``{vid_name: {"predicted_segments": [...]}}``
  or ``{vid_name: {"predicted_class": name, "predicted_events": [ten 0/1]}}``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from common.errors import UserError
from data.annotations import NUM_SEGMENTS, VideoSet
from models.decoders import Decoded, training_free_prediction
from metrics import labels_to_matrix


class PredictionError(UserError):
    """The predictions file cannot be scored as it is."""


def _events(value, where: str) -> list[int]:
    events = list(value) if isinstance(value, (list, str)) else None
    if events is None or len(events) != NUM_SEGMENTS or any(str(e) not in ("0", "1") for e in events):
        raise PredictionError(f"{where}: predicted_events must be {NUM_SEGMENTS} values 0/1, got {value!r}")
    return [int(e) for e in events]


def _segments(value, where: str) -> list[str]:
    names = value.split("|") if isinstance(value, str) else value
    if not isinstance(names, list) or len(names) != NUM_SEGMENTS:
        count = len(names) if isinstance(names, list) else "no list of"
        raise PredictionError(f"{where}: expected {NUM_SEGMENTS} segment labels, got {count}")
    return [str(name).strip() for name in names]


def _entry(record: dict, where: str) -> dict:
    """The prediction of one video; ``where`` (file, line, video) goes with it for later messages."""
    if record.get("predicted_events") not in (None, ""):
        if not record.get("predicted_class"):
            raise PredictionError(f"{where}: predicted_events needs predicted_class too")
        entry = {"class": str(record["predicted_class"]).strip(), "events": _events(record["predicted_events"], where),
                 "where": where}
        if record.get("predicted_segments") not in (None, ""):
            entry["segments"] = _segments(record["predicted_segments"], where)
        return entry
    if record.get("predicted_segments") in (None, ""):
        raise PredictionError(f"{where}: needs predicted_segments, or predicted_class with predicted_events")
    return {"segments": _segments(record["predicted_segments"], where), "where": where}


def read_predictions(path) -> dict[str, dict]:
    """``vid -> {"segments": [names]}`` or ``{"class": name, "events": [0/1]}`` (plus ``"where"``:
    file and line), validated for shape."""
    path = Path(path)
    if not path.is_file():
        raise PredictionError(f"predictions file not found: {path}")
    entries: dict[str, dict] = {}

    def add(vid, entry, where):
        if vid in entries:
            raise PredictionError(f"{where}: video {vid!r} appears twice")
        entries[vid] = entry

    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise PredictionError(f"{path}: not valid JSON ({err})") from None
        if not isinstance(data, dict):
            raise PredictionError(f"{path}: expected an object mapping video names to predictions")
        for vid, value in data.items():
            where = f"{path}, video {vid!r}"
            add(vid, _entry(value if isinstance(value, dict) else {"predicted_segments": value}, where), where)
    else:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            if "vid_name" not in (reader.fieldnames or []):
                raise PredictionError(f"{path}: the header needs a vid_name column (and predicted_segments, or "
                                      "predicted_class + predicted_events)")
            for line, row in enumerate(reader, start=2):
                where = f"{path} line {line} (video {row['vid_name']!r})"
                add(row["vid_name"], _entry(row, where), where)
    if not entries:
        raise PredictionError(f"{path}: no predictions in it")
    return entries


def decode_predictions(predictions: dict, videos: VideoSet, allow_missing: bool, source: str):
    """Predictions of ``videos`` as a :class:`Decoded`, with the videos scored and those missing."""
    known = set(videos.vid_names.tolist())
    unknown = [vid for vid in predictions if vid not in known]
    if unknown:
        raise PredictionError(f"{predictions[unknown[0]]['where']}: not in the {videos.split} split ({len(unknown)} "
                              f"videos of {source} are not); check the split and the annotation files")
    present = np.array([vid in predictions for vid in videos.vid_names])
    if not present.all() and not allow_missing:
        missing = videos.vid_names[~present]
        raise PredictionError(f"{source}: {len(missing)} of the {len(videos)} {videos.split} videos have no "
                              f"prediction (e.g. {str(missing[0])!r}); add them, or pass --allow-missing to score "
                              "the others and report the missing ones")
    scored, missing = videos.select(present), videos.select(~present)
    vocabulary = videos.vocabulary
    lookup = {name: i for i, name in enumerate(vocabulary.names)}

    def index_of(name, entry):
        if name not in lookup:
            raise PredictionError(f"{entry['where']}: unknown class name {name!r}; use the names of the meta CSV "
                                  f"or {vocabulary.names[-1]!r} for background")
        return lookup[name]

    entries = [predictions[vid] for vid in scored.vid_names.tolist()]
    rule = np.array(["events" in entry for entry in entries], dtype=bool)  # the training-free form
    labels = np.full((len(entries), NUM_SEGMENTS), vocabulary.background_index, dtype=np.int64)
    matrix = np.zeros((len(entries), len(vocabulary), NUM_SEGMENTS), dtype=bool)
    classes, events = [], []
    for i, entry in enumerate(entries):
        if rule[i]:
            classes.append(index_of(entry["class"], entry))
            events.append(entry["events"])
        else:
            labels[i] = [index_of(name, entry) for name in entry["segments"]]
    matrix[~rule] = labels_to_matrix(labels[~rule], len(vocabulary))
    if classes:
        published = training_free_prediction(classes, np.array(events, dtype=bool), len(vocabulary))
        labels[rule], matrix[rule] = published.segment_labels, published.pred_matrix
        for entry, implied in zip((e for e in entries if "events" in e), published.segment_labels):
            if "segments" in entry and [index_of(name, entry) for name in entry["segments"]] != implied.tolist():
                shown = "|".join(vocabulary.names[k] for k in implied)
                raise PredictionError(f"{entry['where']}: predicted_segments ({'|'.join(entry['segments'])}) disagrees "
                                      f"with predicted_class + predicted_events, which give {shown}; make the columns "
                                      "agree, or empty predicted_events to score predicted_segments")
    return Decoded(labels, matrix), scored, missing
