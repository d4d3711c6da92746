import json

import pytest

import eval_zero_shot
import sweep
import train
import train_cuerator
from conftest import REPO
from tools import make_synthetic_benchmark


@pytest.mark.slow
def test_demo_configs_run_the_whole_pipeline(tmp_path, monkeypatch, capsys):
    """What `make demo` runs, in a scratch folder: the demo configs' relative paths resolve there."""
    monkeypatch.chdir(tmp_path)
    make_synthetic_benchmark.main(["--output", "demo/ovavebench", "--train-per-class", "3", "--test-per-class", "1"])
    eval_zero_shot.main(["--config", str(REPO / "configs" / "demo" / "v0_training_free.yaml")])
    train.main(["--config", str(REPO / "configs" / "demo" / "v1_fine_tuning.yaml"), "train.epochs=2"])
    train_cuerator.main(["--config", str(REPO / "configs" / "demo" / "cuerator_policy.yaml"), "cuerator.epochs=1"])
    train.main(["--config", str(REPO / "configs" / "demo" / "complex_fusion_2stream.yaml"), "train.epochs=1"])
    sweep.main([str(REPO / "configs" / "sweeps" / "demo_attention.yaml"), "--only", "cross", "train.epochs=1"])
    out = capsys.readouterr().out
    assert out.count("subset    videos     Acc  Seg-F1  Eve-F1     Avg") == 6  # CueRator's rule and policy, the sweep's
    # run, the fusion (its 4 streams: tests/test_four_streams.py)
    assert "| cross |" in (tmp_path / "demo" / "runs" / "sweeps" / "demo_attention" / "sweep.md").read_text()
    for run in ("v0_training_free_v01_test", "v1_fine_tuning", "cuerator_policy", "complex_fusion_2stream"):
        results = json.loads((tmp_path / "demo" / "runs" / run / "results.json").read_text())
        assert results["config"]["encoder"] == {"family": "imagebind", "size": "small", "checkpoint": "random",
                                                "audio_checkpoint": None, "precision": "fp32", "text_template": "{}", "text_template_audio": None,
                                                "text_template_vision": None}
        assert (tmp_path / "demo" / "runs" / run / "timelines.png").is_file()
