import json

import numpy as np
import pytest

from data.annotations import AnnotationError, AnnotationIndex, OTHER


def test_real_split_counts(real_index):
    counts = {(split, subset): len(real_index.videos(split, subset))
              for split in ("train", "val", "test") for subset in ("seen", "unseen", "total")}
    assert counts == {
        ("train", "seen"): 13182, ("train", "unseen"): 0, ("train", "total"): 13182,
        ("val", "seen"): 1651, ("val", "unseen"): 4147, ("val", "total"): 5798,
        ("test", "seen"): 1664, ("test", "unseen"): 4156, ("test", "total"): 5820,
    }


def test_real_vocabularies(real_index, golden_decoding):
    assert list(real_index.all_vocabulary.names) == golden_decoding["class_names"]
    assert real_index.all_vocabulary.background_index == 67
    assert len(real_index.seen_vocabulary) == 47 and real_index.seen_vocabulary.background_index == 46
    assert real_index.seen_vocabulary.names[-1] == OTHER
    assert list(real_index.seen_vocabulary.names[:-1]) == sorted(set(real_index.videos("train").categories))


def test_real_background_videos_and_labels(real_index):
    assert int((~real_index.labels.any(axis=1)).sum()) == 6019
    test = real_index.videos("test")
    classes = test.segment_classes
    assert classes.shape == (5820, 10)
    assert set(np.unique(classes[test.is_background])) == {67}
    on = test.labels.astype(bool)
    np.testing.assert_array_equal(classes[on], np.broadcast_to(test.class_index[:, None], on.shape)[on])
    assert (test.class_names[test.is_background] == OTHER).all()
    assert 0.6 < real_index.labels.mean() < 0.64  # about 62 % of segments are events


def test_golden_videos_agree_with_index(real_index, golden_decoding):
    test = real_index.videos("test")
    row = {vid: i for i, vid in enumerate(test.vid_names)}
    for video in golden_decoding["decode_cases"]["videos"]:
        i = row[video["vid_name"]]
        assert test.labels[i].tolist() == video["segment_labels"]
        if any(video["segment_labels"]):
            assert test.class_index[i] == video["category_index"]


def test_train_ratio_file_is_just_another_meta_csv(shared):
    bench = shared / "ovavebench"
    index = AnnotationIndex.load(bench / "ovave_trainratio0.25_meta.csv", bench / "released_ovavel_dataset_anno.json")
    assert len(index.videos("train")) == 3308
    assert len(index.videos("test")) == 5820


def test_training_vocabulary_is_seen_only(real_index):
    train = real_index.videos("train")
    assert train.vocabulary is real_index.seen_vocabulary
    assert train.class_index.max() == 46
    with pytest.raises(AnnotationError, match="not in this vocabulary"):
        _ = real_index.videos("test", "unseen", vocabulary=real_index.seen_vocabulary).class_index


# --- bad input: one clear error each, naming the file and the row or key -------------------

HEADER = "split,cls_name,cls_type,vid_name\n"
GOOD_ROWS = ["train,dog barking,close,v1", "test,cat purring,open,v2"]
GOOD_LABELS = {"v1": {"category": "dog barking", "label": "[0, 1, 1, 0, 0, 0, 0, 0, 0, 0]"},
               "v2": {"category": "cat purring", "label": "[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]"}}


def _write(tmp_path, rows=GOOD_ROWS, labels=GOOD_LABELS, header=HEADER):
    meta, anno = tmp_path / "meta.csv", tmp_path / "anno.json"
    meta.write_text(header + "\n".join(rows) + "\n")
    anno.write_text(json.dumps(labels))
    return meta, anno


def test_small_valid_files(tmp_path):
    index = AnnotationIndex.load(*_write(tmp_path))
    assert index.all_vocabulary.names == ("cat purring", "dog barking", OTHER)
    assert index.videos("test").class_names.tolist() == [OTHER]


@pytest.mark.parametrize("rows, labels, header, message", [
    (GOOD_ROWS, GOOD_LABELS, "split,cls_name,vid_name\n", r"meta.csv: missing column\(s\) cls_type"),
    (GOOD_ROWS + ["test,cat purring,open,v3"], GOOD_LABELS, HEADER, r"meta.csv line 4: video 'v3' has no entry"),
    (GOOD_ROWS + ["val,dog barking,close,v1"], GOOD_LABELS, HEADER, r"line 4: duplicate video name 'v1' .first on line 2"),
    (["train,dog barking,seen,v1"], GOOD_LABELS, HEADER, r"line 2: cls_type 'seen' must be 'close'"),
    (["train,cat purring,open,v2"], GOOD_LABELS, HEADER, r"line 2: unseen class 'cat purring' .* train split"),
    (["training,dog barking,close,v1"], GOOD_LABELS, HEADER, r"line 2: split 'training' must be one of"),
    (GOOD_ROWS + ["val,dog barking,open,v3"], {**GOOD_LABELS, "v3": GOOD_LABELS["v1"] | {"category": "dog barking"}},
     HEADER, r"line 4: class 'dog barking' is 'open' here but 'close' on line 2"),
    (GOOD_ROWS, {**GOOD_LABELS, "v1": {"category": "dog barking", "label": "[0, 1, 2, 0, 0, 0, 0, 0, 0, 0]"}},
     HEADER, r"anno.json: video 'v1' has label .* expected 10 zeros and ones"),
    (GOOD_ROWS, {**GOOD_LABELS, "v1": {"category": "dog barking", "label": "[0, 1, 1]"}},
     HEADER, r"video 'v1' has label"),
    (GOOD_ROWS, {**GOOD_LABELS, "v1": {"category": "dog", "label": GOOD_LABELS["v1"]["label"]}},
     HEADER, r"video 'v1' has category 'dog' but the meta CSV says 'dog barking'"),
    (GOOD_ROWS, {**GOOD_LABELS, "v1": {"label": GOOD_LABELS["v1"]["label"]}}, HEADER, r"'v1' must have the keys"),
])
def test_bad_annotation_files(tmp_path, rows, labels, header, message):
    with pytest.raises(AnnotationError, match=message):
        AnnotationIndex.load(*_write(tmp_path, rows, labels, header))


def test_missing_and_corrupt_files(tmp_path):
    meta, anno = _write(tmp_path)
    with pytest.raises(AnnotationError, match=r"meta CSV not found: .*nope.csv"):
        AnnotationIndex.load(tmp_path / "nope.csv", anno)
    with pytest.raises(AnnotationError, match=r"label JSON not found"):
        AnnotationIndex.load(meta, tmp_path / "nope.json")
    anno.write_text("{not json")
    with pytest.raises(AnnotationError, match=r"anno.json: not valid JSON"):
        AnnotationIndex.load(meta, anno)


def test_unknown_split_or_subset(tmp_path):
    index = AnnotationIndex.load(*_write(tmp_path))
    with pytest.raises(AnnotationError, match="unknown split 'dev'"):
        index.videos("dev")
    with pytest.raises(AnnotationError, match="unknown subset 'all'"):
        index.videos("test", "all")
