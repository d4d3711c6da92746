"""AVE's annotation files into the toolkit's layout (AVE-OV), read back by the annotation index."""

import json

import pytest

from common.errors import UserError
from data.annotations import AnnotationIndex
from tools import convert_ave

ANNOTATIONS = """Category&VideoID&Quality&StartTime&EndTime
Church bell&RUhOCu3LNXM&good&0&10
Male speech, man speaking&fpXEY9U6m1A&good&2&5
Dog&ABC123&good&3&4
Violin, fiddle&XYZ789&good&0&2
Church bell&TRAIN2&good&5&10
"""


def write(tmp_path):
    (tmp_path / "Annotations.txt").write_text(ANNOTATIONS)
    (tmp_path / "trainSet.txt").write_text("Church bell&RUhOCu3LNXM&good&0&10\nDog&ABC123&good&3&4\n"
                                           "Church bell&TRAIN2&good&5&10\n")
    (tmp_path / "valSet.txt").write_text("Male speech, man speaking&fpXEY9U6m1A&good&2&5\n")
    (tmp_path / "testSet.txt").write_text("Dog&ABC123&good&3&4\nViolin, fiddle&XYZ789&good&0&2\n")
    (tmp_path / "classes.csv").write_text('cls_name,cls_type\nChurch bell,seen\n"Male speech, man speaking",seen\n'
                                          "Dog,unseen\n")
    return ["--annotations", str(tmp_path / "Annotations.txt"), "--splits", str(tmp_path / "trainSet.txt"),
            str(tmp_path / "valSet.txt"), str(tmp_path / "testSet.txt"), "--classes", str(tmp_path / "classes.csv"),
            "--output", str(tmp_path / "ave_ov")]


def test_ave_becomes_an_open_vocabulary_benchmark_the_toolkit_reads(tmp_path, capsys):
    convert_ave.main(write(tmp_path))
    out = capsys.readouterr().out
    assert "left out: unseen class in train: 1" in out and "left out: class not in the list: 1" in out
    index = AnnotationIndex.load(tmp_path / "ave_ov" / "ovave_dataset_meta.csv",
                                 tmp_path / "ave_ov" / "released_ovavel_dataset_anno.json")
    train, val, test = (index.videos(split, vocabulary=index.all_vocabulary) for split in ("train", "val", "test"))
    assert list(train.vid_names) == ["RUhOCu3LNXM", "TRAIN2"] and list(val.vid_names) == ["fpXEY9U6m1A"]
    assert list(test.vid_names) == ["ABC123"] and not test.seen[0]  # Dog: unseen, kept in test
    assert list(index.seen_vocabulary.names) == ["Church bell", "Male speech, man speaking", "other"]
    assert val.labels[0].tolist() == [0, 0, 1, 1, 1, 0, 0, 0, 0, 0]  # [2, 5)
    assert test.labels[0].tolist() == [0, 0, 0, 1, 0, 0, 0, 0, 0, 0]
    labels = json.loads((tmp_path / "ave_ov" / "released_ovavel_dataset_anno.json").read_text())
    assert labels["TRAIN2"]["category"] == "Church bell"


@pytest.mark.parametrize("broken, message", [
    ("Dog&ABC123&good&3\n", "expected Category&VideoID&Quality&StartTime&EndTime"),
    ("Dog&ABC123&good&4&12\n", r"the event \[4, 12\) does not lie in 0..10 s"),
    ("Dog&ABC123&good&a&4\n", "must be whole seconds"),
])
def test_a_broken_line_is_named(tmp_path, broken, message):
    argv = write(tmp_path)
    (tmp_path / "testSet.txt").write_text(broken)
    with pytest.raises(UserError, match=message):
        convert_ave.main(argv)


def test_a_class_list_without_both_kinds_is_refused(tmp_path):
    argv = write(tmp_path)
    (tmp_path / "classes.csv").write_text("cls_name,cls_type\nDog,seen\n")
    with pytest.raises(UserError, match="must name seen and unseen classes"):
        convert_ave.main(argv)
