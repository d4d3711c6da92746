"""A run folder, an evaluation folder and a feature cache belong to one job at a time, and no
evaluation replaces another's results."""

import json
import signal
import subprocess
import sys

import pytest

import eval_zero_shot
import train
from common.errors import UserError
from common.locking import FolderBusy, FolderLock
from conftest import REPO, synthetic_config, synthetic_overrides
from pipeline.extraction import extract
from tools import score_predictions


class Holder:
    """Another process that owns ``folder`` until it is killed."""

    def __init__(self, folder, what="run"):
        code = ("import sys, time; sys.path.insert(0, sys.argv[1]); from common.locking import FolderLock; "
                "FolderLock(sys.argv[2], sys.argv[3], '').acquire(); print('ready', flush=True); time.sleep(120)")
        self.process = subprocess.Popen([sys.executable, "-c", code, str(REPO), str(folder), what],
                                        stdout=subprocess.PIPE, text=True)
        assert self.process.stdout.readline().strip() == "ready"

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()


def test_a_lock_is_exclusive_and_dies_with_its_process(tmp_path):
    holder = Holder(tmp_path / "run", "training run")
    with pytest.raises(FolderBusy, match=rf"{tmp_path / 'run'} is in use by another training run "
                                         rf"\(pid {holder.process.pid} on .*\); wait for it to end, or do this"):
        FolderLock(tmp_path / "run", "training run", "do this").acquire()
    holder.kill()  # kill -9: no clean-up code runs, the kernel drops the lock
    with FolderLock(tmp_path / "run", "training run", "do this") as lock:
        assert lock.held


def test_second_training_into_the_same_folder_stops_at_once(synthetic_bench, tmp_path):
    folder = tmp_path / "runs" / "shared_name"
    holder = Holder(folder, "training run")
    overrides = synthetic_overrides(synthetic_bench, tmp_path / "cache", f"output.root={tmp_path / 'runs'}",
                                    "output.name=shared_name")
    try:
        with pytest.raises(FolderBusy, match=rf"{folder} is in use by another training run.*set output.name"):
            train.main(overrides)
        assert not (folder / "history.csv").exists() and not (tmp_path / "cache").exists()
    finally:
        holder.kill()


def test_second_extraction_into_one_cache_stops_at_once(synthetic_bench, tmp_path):
    holder = Holder(tmp_path / "cache", "feature extraction")
    try:
        with pytest.raises(FolderBusy, match=rf"{tmp_path / 'cache'} is in use by another feature extraction"
                                             r".*point cache.dir at another folder"):
            extract(synthetic_config(synthetic_bench, tmp_path / "cache"), ["val"])
    finally:
        holder.kill()
    assert extract(synthetic_config(synthetic_bench, tmp_path / "cache"), ["val"]).has_split("val")


def test_evaluations_never_replace_each_others_results(synthetic_bench, tmp_path):
    runs = tmp_path / "runs"
    base = synthetic_overrides(synthetic_bench, tmp_path / "cache", f"output.root={runs}")
    eval_zero_shot.main(base)
    first = json.loads((runs / "v0_training_free_v01_test" / "results.json").read_text())
    eval_zero_shot.main(base + ["eval.block_videos=1"])  # differs only by an override
    second = json.loads((runs / "v0_training_free_v01_test_2" / "results.json").read_text())
    assert second["config"]["eval"]["block_videos"] == 1
    assert json.loads((runs / "v0_training_free_v01_test" / "results.json").read_text()) == first
    with pytest.raises(UserError, match=r"already holds the results of another evaluation; set output.name"):
        eval_zero_shot.main(base + ["output.name=v0_training_free_v01_test"])
    busy = Holder(runs / "v0_training_free_v01_test_3", "evaluation")  # a folder in use is passed over
    try:
        eval_zero_shot.main(base)
    finally:
        busy.kill()
    assert (runs / "v0_training_free_v01_test_4" / "results.json").is_file()

    # Two files named predictions.csv from two runs score into two folders.
    for run in ("v0_training_free_v01_test", "v0_training_free_v01_test_2"):
        score_predictions.main(["--predictions", str(runs / run / "predictions.csv"), *base])
    assert (runs / "v0_training_free_v01_test_predictions_scores" / "results.json").is_file()
    assert (runs / "v0_training_free_v01_test_2_predictions_scores" / "results.json").is_file()


def test_a_folder_of_the_users_own_files_is_never_written_into(synthetic_bench, tmp_path):
    mine = tmp_path / "runs" / "my_notes"
    mine.mkdir(parents=True)
    (mine / "config.yaml").write_text("my own settings\n")
    (mine / "predictions.csv").write_text("my own table\n")
    overrides = synthetic_overrides(synthetic_bench, tmp_path / "cache", f"output.root={tmp_path / 'runs'}",
                                    "output.name=my_notes")
    with pytest.raises(UserError, match=r"my_notes \(output.name\) already holds files that no run of this toolkit "
                                        r"wrote \(config.yaml, predictions.csv\).*Give a new or empty folder"):
        eval_zero_shot.main(overrides)
    assert (mine / "config.yaml").read_text() == "my own settings\n" and sorted(p.name for p in mine.iterdir()) == [
        "config.yaml", "predictions.csv"]  # untouched, no lock left in it
    with pytest.raises(UserError, match="my_notes"):
        train.main(overrides)
    empty = tmp_path / "runs" / "empty"
    empty.mkdir()
    eval_zero_shot.main([*overrides[:-1], "output.name=empty"])  # an empty folder is fine, and then it is ours
    assert (empty / "results.json").is_file()
