import csv
import hashlib
import json
import re
import subprocess
import sys

import numpy as np
import pytest

import eval_zero_shot
import metrics
from common import config as config_io
from common.errors import UserError
from common.schema import Config
from conftest import REPO, synthetic_overrides
from data.feature_cache import CacheError
from pipeline.extraction import wanted_provenance


def _run(argv):
    eval_zero_shot.main(argv)


def _read_predictions(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _recompute(rows, class_names):
    """The table from the predictions CSV alone, with the metric definitions, no pipeline code."""
    k = len(class_names)
    index = {name: i for i, name in enumerate(class_names)}
    background = k - 1
    pred = np.zeros((len(rows), k, 10), bool)
    gt = np.zeros_like(pred)
    pred_labels = np.zeros((len(rows), 10), int)
    gt_labels = np.zeros_like(pred_labels)
    for n, row in enumerate(rows):
        true = np.array([c == "1" for c in row["true_segments"]])
        gt[n, index[row["true_class"]]] = true
        gt[n, background] = ~true
        gt_labels[n] = np.where(true, index[row["true_class"]], background)
        events = np.array([c == "1" for c in row["predicted_events"]])
        pred[n, index[row["predicted_class"]]] = events
        pred[n, background] = ~events  # the published training-free rule, background row last
        pred_labels[n] = [index[name] for name in row["predicted_segments"].split("|")]
    scores = metrics.score_videos(pred, gt, pred_labels, gt_labels)
    seen = np.array([row["subset"] == "seen" for row in rows])
    return {"seen": scores.summary(seen), "unseen": scores.summary(~seen), "total": scores.summary()}, scores


def test_end_to_end_on_synthetic_media(synthetic_bench, tmp_path, capsys):
    overrides = synthetic_overrides(synthetic_bench, tmp_path / "cache", f"output.root={tmp_path / 'runs'}")
    _run(overrides)
    out = capsys.readouterr().out
    folder = tmp_path / "runs" / "v0_training_free_v01_test"
    for name in ("results.json", "predictions.csv", "config.yaml", "log.txt", "timelines.png", "per_class_f1.png"):
        assert (folder / name).is_file(), name
    results = json.loads((folder / "results.json").read_text())
    assert results["strategy"] == "v01" and results["split"] == "test"
    assert results["videos"] == {"seen": 3, "unseen": 1, "total": 4}
    assert results["excluded_videos"]["total"] == 0
    assert len(results["code_version"]) >= 7 and "torch" in results["libraries"]
    assert results["config"]["encoder"]["size"] == "tiny"

    rows = _read_predictions(folder / "predictions.csv")
    class_names = sorted({"dog barking", "playing piano", "church bell ringing", "cat purring"}) + ["other"]
    recomputed, scores = _recompute(rows, class_names)
    for subset in ("seen", "unseen", "total"):
        for key, value in recomputed[subset].items():
            assert results["metrics"][subset][key] == pytest.approx(value, abs=1e-12)
        line = next(line for line in out.splitlines() if line.startswith(subset))
        printed = [float(x) for x in line.split()[2:]]
        assert printed == [round(100 * recomputed[subset][k], 1) for k in metrics.METRIC_NAMES]
    np.testing.assert_allclose([float(r["segment_f1"]) for r in rows], scores.segment_f1, atol=0)
    assert (folder / "log.txt").read_text().count("OV-AVEBench test") == 1

    _run(overrides + ["--strategy", "v0"])  # a second strategy gets its own folder
    assert (tmp_path / "runs" / "v0_training_free_v0_test" / "results.json").is_file()
    _run(overrides)  # re-running gives identical numbers, in a folder of its own
    again = json.loads((tmp_path / "runs" / "v0_training_free_v01_test_2" / "results.json").read_text())
    assert again["metrics"] == results["metrics"]
    _run(overrides + ["eval.block_videos=1"])  # one video per similarity block: only memory changes
    blocks = json.loads((tmp_path / "runs" / "v0_training_free_v01_test_3" / "results.json").read_text())
    assert blocks["metrics"] == results["metrics"] and blocks["config"]["eval"]["block_videos"] == 1
    assert _read_predictions(tmp_path / "runs" / "v0_training_free_v01_test_3" / "predictions.csv") == rows
    assert again["excluded_videos_by_split"] == {"test": {"seen": 0, "unseen": 0, "total": 0}}


def _golden_cache(golden, shared, tmp_path):
    """A cache written with numpy and json only, whose embeddings give the golden similarities:
    one-hot text embeddings and segment vectors equal to the similarity rows (cosine then
    divides each segment by its norm, which changes no decision)."""
    vids = [v["vid_name"] for v in golden["decode_cases"]["videos"]]
    bench = shared / "ovavebench"
    with open(bench / "ovave_dataset_meta.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["split"] != "test" or r["vid_name"] in vids]
    meta = tmp_path / "meta.csv"
    with open(meta, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["split", "cls_name", "cls_type", "vid_name"])
        writer.writeheader()
        writer.writerows(rows)
    overrides = [f"data.meta_csv={meta}", f"data.label_json={bench / 'released_ovavel_dataset_anno.json'}",
                 f"data.media_root={tmp_path / 'no_media'}", "encoder.size=huge",
                 f"encoder.checkpoint={tmp_path / 'not_here.pth'}", f"cache.dir={tmp_path / 'cache'}",
                 "cache.dtype=float32", "device=cpu", f"output.root={tmp_path / 'runs'}"]
    config = config_io.load(Config, REPO / "configs" / "v0_training_free.yaml", overrides)

    cache = tmp_path / "cache"
    (cache / "test").mkdir(parents=True)
    (cache / "provenance.json").write_text(json.dumps(wanted_provenance(config)))
    dim, names = 1024, golden["class_names"]
    audio = np.zeros((len(vids), 10, dim), np.float32)
    vision = np.zeros_like(audio)
    audio[:, :, :len(names)] = golden["decode_cases"]["sim_audio_text"]
    vision[:, :, :len(names)] = golden["decode_cases"]["sim_visual_text"]
    np.save(cache / "test" / "audio.npy", audio)
    np.save(cache / "test" / "vision.npy", vision)
    (cache / "test" / "videos.csv").write_text("vid_name\n" + "\n".join(vids) + "\n")
    template_id = hashlib.sha1(b"{}").hexdigest()[:12]
    for modality in ("audio", "vision"):  # the class names as scored against each modality
        (cache / "text" / modality).mkdir(parents=True)
        np.savez(cache / "text" / modality / f"{template_id}.npz", template=np.array("{}"), names=np.array(names),
                 embeddings=np.eye(len(names), dim, dtype=np.float32))
    return overrides


@pytest.mark.parametrize("strategy", ["v0", "v01"])
def test_golden_similarities_through_the_cache(golden_decoding, shared, tmp_path, strategy):
    overrides = _golden_cache(golden_decoding, shared, tmp_path)
    _run(overrides + ["--strategy", strategy])
    folder = tmp_path / "runs" / f"v0_training_free_{strategy}_test"
    results = json.loads((folder / "results.json").read_text())
    reference = golden_decoding["decode_cases"][strategy]
    total = results["metrics"]["total"]
    assert results["videos"]["total"] == 64
    assert total["accuracy"] == pytest.approx(reference["accuracy"], abs=1e-9)
    assert total["segment_f1"] == pytest.approx(reference["mean_segment_f1"], abs=1e-9)
    assert total["event_f1"] == pytest.approx(reference["mean_event_f1"], abs=1e-9)
    rows = {r["vid_name"]: r for r in _read_predictions(folder / "predictions.csv")}
    for i, video in enumerate(golden_decoding["decode_cases"]["videos"]):
        row = rows[video["vid_name"]]
        assert float(row["segment_f1"]) == pytest.approx(reference["segment_f1"][i], abs=1e-9)
        assert float(row["event_f1"]) == pytest.approx(reference["event_f1"][i], abs=1e-9)
        assert row["predicted_events"] == "".join(str(e) for e in reference["is_event"][i])
    _run(overrides + ["--strategy", strategy, "eval.block_videos=7"])  # 9 blocks of 7 videos and one of 1
    blocks = tmp_path / "runs" / f"v0_training_free_{strategy}_test_2"
    assert json.loads((blocks / "results.json").read_text())["metrics"] == results["metrics"]
    assert _read_predictions(blocks / "predictions.csv") == _read_predictions(folder / "predictions.csv")


def test_clear_errors(synthetic_bench, tmp_path):
    base = synthetic_overrides(synthetic_bench, tmp_path / "cache", f"output.root={tmp_path / 'runs'}")
    with pytest.raises(UserError, match=r"eval.strategy = 'v2' is not allowed; choose one of 'v0', 'v01'"):
        _run(base + ["eval.strategy=v2"])
    with pytest.raises(UserError, match=r"unknown config key 'eval.stratgy' \(did you mean 'strategy'\?\)"):
        _run(base + ["eval.stratgy=v0"])
    _run(base)
    with pytest.raises(CacheError, match=r"encoder.size: 'tiny' -> 'small'"):
        _run(base + ["encoder.size=small"])
    with pytest.raises(UserError, match=r"(?s)cannot be extracted here.*place the media.*or point cache.dir"):
        _run(base + [f"cache.dir={tmp_path / 'empty'}", f"data.media_root={tmp_path / 'none'}"])


def test_user_error_prints_one_line_without_traceback(tmp_path, capsys):
    result = subprocess.run([sys.executable, "eval_zero_shot.py", "eval.strategy=v9"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    with pytest.raises(SystemExit) as exit_info:
        _run(["--strategy", "v3"])
    assert exit_info.value.code == 2
    assert re.search(r"argument --strategy: invalid choice: 'v3' \(choose from '?v0'?, '?v01'?, '?v1'?, "
                     r"'?cuerator_rule'?, '?cuerator_policy'?, '?complex_fusion'?\)",
                     capsys.readouterr().err)
