import subprocess
import sys

import pytest

from conftest import REPO
from tools import bench_encoders


@pytest.mark.slow
def test_the_gpu_check_runs_through_on_the_cpu(tmp_path):
    """The prepared GPU check, run on the CPU with the tiny encoder: every step works end to end
    (on a GPU the same script measures the real thing)."""
    result = subprocess.run([sys.executable, str(REPO / "tools" / "gpu_check.py"), "--output", str(tmp_path),
                             "--device", "cpu", "--size", "tiny", "--batch", "2", "--extract-size", "tiny"],
                            cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = (tmp_path / "summary.md").read_text()
    assert "| fp32 |" in summary and "| tf32 |" in summary and "| bf16 |" in summary
    assert "LanguageBind (tiny, fp32)" in summary and "GFLOP per segment" in summary
    difference = float(summary.split("largest difference between the caches: ")[1].split()[0])
    assert difference < 1e-5
    assert "all checks passed" in summary


def test_a_step_past_its_time_limit_is_a_line_of_the_summary(tmp_path):
    from tools import gpu_check

    status, _ = gpu_check._run([sys.executable, "-c", "import time; time.sleep(30)"], tmp_path / "slow.log", 1)
    assert gpu_check._said(status) == "timed out after 1 s"


def test_fraction_of_peak_uses_the_datasheet_peak_of_the_gpu():
    assert bench_encoders.peak_tflops("NVIDIA H200", "bf16") == 989.4
    assert bench_encoders.peak_tflops("NVIDIA A100-SXM4-80GB", "tf32") == 156.0
    assert bench_encoders.peak_tflops("Some Other GPU", "fp32") is None
    flops = bench_encoders.flops_per_segment("huge")  # counted on the meta device: instant
    assert 3.7e12 < 10 * (flops["vision"] + flops["audio"]) < 3.8e12


def test_the_cache_benchmark_runs(capsys):
    from tools import bench_cache

    bench_cache.main(["--epochs", "1", "--train-per-class", "2", "--workers", "0", "--size", "tiny"])
    assert "speed-up:" in capsys.readouterr().out
