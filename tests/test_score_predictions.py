import csv
import json

import pytest
from PIL import Image

import eval_zero_shot
from conftest import synthetic_overrides
from pipeline.external import PredictionError
from test_eval_zero_shot import _golden_cache
from tools import score_predictions


def _score(tmp_path, predictions, *extra, overrides=()):
    score_predictions.main(["--predictions", str(predictions), *extra, *overrides, f"output.root={tmp_path / 'scored'}"])
    folder = tmp_path / "scored" / f"{predictions.resolve().parent.name}_{predictions.stem}_scores"
    return json.loads((folder / "results.json").read_text()), folder


@pytest.fixture(scope="module")
def evaluated(synthetic_bench, tmp_path_factory):
    """A training-free run on the synthetic benchmark: its predictions.csv and results."""
    root = tmp_path_factory.mktemp("evaluated")
    overrides = synthetic_overrides(synthetic_bench, root / "cache", f"output.root={root / 'runs'}")
    eval_zero_shot.main(overrides)
    folder = root / "runs" / "v0_training_free_v01_test"
    return overrides, folder / "predictions.csv", json.loads((folder / "results.json").read_text())


def test_round_trip_with_our_predictions_csv(evaluated, tmp_path):
    overrides, predictions, results = evaluated
    scored, folder = _score(tmp_path, predictions, overrides=overrides)
    assert scored["metrics"] == results["metrics"]
    for plot in ("timelines.png", "per_class_f1.png"):
        with Image.open(folder / plot) as image:
            image.verify()
        with Image.open(folder / plot) as image:
            assert image.width >= 400 and image.height >= 200


def test_round_trip_keeps_the_published_v01_quirk(golden_decoding, shared, tmp_path):
    overrides = _golden_cache(golden_decoding, shared, tmp_path)
    eval_zero_shot.main(overrides + ["--strategy", "v01"])
    predictions = tmp_path / "runs" / "v0_training_free_v01_test" / "predictions.csv"
    scored, _ = _score(tmp_path, predictions, overrides=[o for o in overrides if o.startswith("data.")])
    reference = golden_decoding["decode_cases"]["v01"]
    assert scored["metrics"]["total"]["segment_f1"] == pytest.approx(reference["mean_segment_f1"], abs=1e-9)
    assert scored["metrics"]["total"]["event_f1"] == pytest.approx(reference["mean_event_f1"], abs=1e-9)
    assert scored["metrics"]["total"]["accuracy"] == pytest.approx(reference["accuracy"], abs=1e-9)


def _rows(predictions):
    with open(predictions, newline="") as handle:
        return list(csv.DictReader(handle))


def _write(path, rows, columns=("vid_name", "predicted_segments")):
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_segment_labels_csv_and_json_forms(evaluated, tmp_path):
    overrides, predictions, _ = evaluated
    rows = _rows(predictions)
    csv_scores, _ = _score(tmp_path, _write(tmp_path / "segments.csv", rows), overrides=overrides)
    listed = {r["vid_name"]: r["predicted_segments"].split("|") for r in rows}
    (tmp_path / "listed.json").write_text(json.dumps(listed))
    json_scores, _ = _score(tmp_path, tmp_path / "listed.json", overrides=overrides)
    assert json_scores["metrics"] == csv_scores["metrics"]
    keyed = {vid: {"predicted_segments": names} for vid, names in listed.items()}
    (tmp_path / "keyed.json").write_text(json.dumps(keyed))
    assert _score(tmp_path, tmp_path / "keyed.json", overrides=overrides)[0]["metrics"] == csv_scores["metrics"]


def test_bad_prediction_files(evaluated, tmp_path):
    overrides, predictions, _ = evaluated
    rows = _rows(predictions)
    cases = {
        "unknown_video": (rows + [{**rows[0], "vid_name": "nobody"}],
                          r"unknown_video.csv line 6 \(video 'nobody'\): not in the test split"),
        "short": ([{**rows[0], "predicted_segments": "other|other"}] + rows[1:], r"line 2 .*expected 10 segment labels, got 2"),
        "unknown_class": ([{**rows[0], "predicted_segments": "|".join(["unicorn"] * 10)}] + rows[1:],
                          r"unknown_class.csv line 2 \(video 'syn_test_\w+'\): unknown class name 'unicorn'"),
        "missing": (rows[1:], r"1 of the 4 test videos have no prediction \(e.g. 'syn_test_\w+'\).*--allow-missing"),
        "duplicate": (rows + rows[:1], r"appears twice"),
    }
    for name, (content, message) in cases.items():
        with pytest.raises(PredictionError, match=message):
            _score(tmp_path, _write(tmp_path / f"{name}.csv", content), overrides=overrides)
    scored, _ = _score(tmp_path, _write(tmp_path / "partial.csv", rows[1:]), "--allow-missing", overrides=overrides)
    assert scored["videos"]["total"] == 3 and scored["excluded_videos"]["total"] == 1
    assert scored["missing_videos"] == [rows[0]["vid_name"]]
    with pytest.raises(PredictionError, match="needs a vid_name column"):
        _score(tmp_path, _write(tmp_path / "nohead.csv", rows, ("predicted_segments",)), overrides=overrides)


def test_a_file_edited_in_one_column_only_is_refused_not_scored_by_the_other(evaluated, tmp_path):
    overrides, predictions, _ = evaluated
    rows = _rows(predictions)
    edited = next(i for i, row in enumerate(rows) if row["true_class"] != "other")
    perfect = "|".join(rows[edited]["true_class"] if on == "1" else "other" for on in rows[edited]["true_segments"])
    assert perfect != rows[edited]["predicted_segments"]
    rows[edited]["predicted_segments"] = perfect  # a perfect fix, made in one column
    _write(tmp_path / "edited.csv", rows, tuple(rows[0]))
    with pytest.raises(PredictionError, match=rf"line {edited + 2} .*predicted_segments .* disagrees with "
                                              "predicted_class \\+ predicted_events"):
        _score(tmp_path, tmp_path / "edited.csv", overrides=overrides)
    for row in rows:
        row["predicted_events"] = ""  # the way out the message gives: predicted_segments is scored
    _write(tmp_path / "segments_only.csv", rows, tuple(rows[0]))
    scored, _ = _score(tmp_path, tmp_path / "segments_only.csv", overrides=overrides)
    assert scored["videos"]["total"] == len(rows)
