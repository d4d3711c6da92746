"""What runs write: predictions in time linear in the videos, readable plots naming the run."""

import numpy as np
import pytest

from data.annotations import AnnotationIndex, VideoSet
from models.strategies import decode
from pipeline import outputs, plots
from pipeline.evaluate import score


def _evaluation(num_videos: int, strategy: str = "v01"):
    rng = np.random.default_rng(0)
    names = ["playing electric guitar", "dog barking", "people marching"]
    labels = rng.integers(0, 2, (num_videos, 10))
    index = AnnotationIndex([f"vid{i}" for i in range(num_videos)], ["test"] * num_videos,
                            [names[i % 3] for i in range(num_videos)], [i % 2 == 0 for i in range(num_videos)],
                            labels, "made in the test")
    videos = index.videos("test")
    sims = rng.standard_normal((2, num_videos, 10, len(videos.vocabulary))).astype(np.float32)
    return score(videos, decode(strategy, sims[0], sims[1]), strategy, videos.select(np.zeros(num_videos, bool)))


def test_prediction_rows_read_derived_arrays_once_not_per_row(monkeypatch):
    calls = {"class_names": 0}
    original = VideoSet.class_names.fget

    def counted(self):
        calls["class_names"] += 1
        return original(self)

    monkeypatch.setattr(VideoSet, "class_names", property(counted))
    for num_videos in (10, 400):
        calls["class_names"] = 0
        evaluation = _evaluation(num_videos)
        calls["class_names"] = 0
        rows = list(outputs.prediction_rows(evaluation))
        assert len(rows) == num_videos and calls["class_names"] == 1
    assert rows[3]["true_class"] == str(evaluation.videos.class_names[3])


def test_timelines_write_whole_class_names_and_explain_background():
    fig = plots.timelines_figure(_evaluation(12), count=12, run="my_run")
    texts = [" ".join(t.get_text().split()) for ax in fig.axes for t in ax.texts]
    assert "playing electric guitar" in texts
    assert "my_run: test, v01, 12 of 12 videos" == fig._suptitle.get_text()
    assert any("blank cell = background (other)" in t.get_text() for legend in fig.legends for t in legend.texts)
    plots.plt.close(fig)


def test_training_curves_mark_the_selected_epoch_and_name_the_run():
    history = [{"epoch": e, "train_loss": 1 / e, "selection_split": "val", "accuracy": 0.5, "segment_f1": 0.4,
                "event_f1": 0.3, "average": 0.4} for e in range(1, 5)]
    fig = plots.training_curves_figure(history, selected_epoch=3, run="my_run")
    marks = [line for ax in fig.axes for line in ax.lines if list(line.get_xdata()) == [3, 3]]
    assert len(marks) == 2 and fig._suptitle.get_text().startswith("my_run:")
    assert "selected: epoch 3" in [t.get_text() for t in fig.axes[1].get_legend().texts]
    plots.plt.close(fig)
    fig = plots.class_f1_figure(_evaluation(12), run="my_run")
    assert fig.axes[0].get_title().startswith("my_run:")
    plots.plt.close(fig)


def test_benchmarks_find_the_annotation_files(shared, monkeypatch, tmp_path):
    from common.errors import UserError
    from tools.annotation_files import find_annotations

    monkeypatch.chdir(tmp_path)  # no ovave_dataset_preprocessed/ here
    monkeypatch.setenv("OVAVEL_SHARED", str(shared))
    meta, label = find_annotations(None, None)
    assert meta == shared / "ovavebench" / "ovave_dataset_meta.csv" and label.is_file()
    monkeypatch.setenv("OVAVEL_SHARED", str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match="annotation files not found .*pass --meta-csv and --label-json"):
        find_annotations(None, None)
