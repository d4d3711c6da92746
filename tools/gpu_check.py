"""The prepared check for a GPU machine, in one command and a few minutes: the encoder benchmark
at the real size in fp32, tf32 and bf16 (rates and fraction of the GPU's peak), the backbone
families' encoding rates and FLOPs (tools/bench_families.py), a synthetic extraction by two
torchrun processes sharing this one GPU compared with one process, and the test suite's
GPU-marked tests; then a summary to quote.

    make gpu-check                                   # = python tools/gpu_check.py
    python tools/gpu_check.py --device cpu --size tiny --batch 2 --extract-size tiny  # a dry run

--size sizes every step: the released sizes (huge, the default) measure the real thing; any other
size runs the families benchmark at each family's tiny size too. A step that fails or runs past
its time limit is a line of the summary, and the others still run.

Everything goes to --output (default runs/gpu_check): summary.md, encoders.json, the logs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import cli  # noqa: E402
from data.audio_draws import AudioDraws  # noqa: E402
from data.feature_cache import FeatureCache  # noqa: E402
from data.synthetic import SyntheticSpec, make_synthetic_benchmark  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RELEASED_SIZE = "huge"
SPLITS = ("train", "val", "test")
DRAWS = 2  # stochastic audio draws of the train split, compared too


def _run(command: list[str], log: Path, timeout: int) -> tuple[int | str, float]:
    """Run ``command`` from the repository root, output to ``log``; (exit status, or
    ``"timed out after N s"``, and seconds)."""
    start = time.perf_counter()
    with open(log, "w") as handle:
        try:
            done = subprocess.run(command, cwd=REPO, stdout=handle, stderr=subprocess.STDOUT, timeout=timeout)
        except subprocess.TimeoutExpired:
            return f"timed out after {timeout} s", time.perf_counter() - start
    return done.returncode, time.perf_counter() - start


def _said(status) -> str:
    return f"exit {status}" if isinstance(status, int) else status


def _extraction_command(bench: dict, cache: Path, device: str, torchrun: bool, size: str) -> list[str]:
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
                if torchrun else [sys.executable])
    return launcher + [
        str(REPO / "tools" / "extract_features.py"), "--config", str(REPO / "configs" / "_base_" / "default.yaml"),
        f"data.meta_csv={bench['meta_csv']}", f"data.label_json={bench['label_json']}",
        f"data.media_root={bench['media_root']}", f"encoder.size={size}", "encoder.checkpoint=random",
        f"cache.dir={cache}", "cache.dtype=float32", f"device={device}", "extract.chunk_size=8",
        "extract.num_workers=2", "extract.batch_size=4", f"train.audio_draws={DRAWS}"]


def _largest_difference(a: Path, b: Path) -> float:
    """Over every split's arrays and the train split's audio draws."""
    one, two = FeatureCache(a), FeatureCache(b)
    pairs = []
    for split in SPLITS:
        x, y = one.split(split), two.split(split)
        if not np.array_equal(x.vid_names, y.vid_names):
            return float("inf")
        pairs += [(x.audio, y.audio), (x.vision, y.vision)]
    x, y = (AudioDraws(cache, "train", DRAWS, 0.1) for cache in (one, two))
    pairs += list(zip(x.arrays, y.arrays))
    return max(float(np.abs(np.asarray(p) - np.asarray(q)).max()) for p, q in pairs)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="runs/gpu_check")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--size", default="huge", help="encoder size for the benchmark")
    parser.add_argument("--batch", type=int, default=32, help="videos per benchmark batch (x 10 segments)")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "tf32", "bf16"])
    parser.add_argument("--extract-size", default="small", help="encoder size of the 1-vs-2-process extraction")
    args = parser.parse_args(argv)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    lines, failures = [f"# GPU check ({time.strftime('%Y-%m-%d %H:%M')})", ""], []

    status, seconds = _run([sys.executable, str(REPO / "tools" / "bench_encoders.py"), "--size", args.size,
                            "--batch", str(args.batch), "--device", args.device, "--precisions", *args.precisions,
                            "--json", str(out / "encoders.json")], out / "encoders.log", 240)
    if status == 0:
        figures = json.loads((out / "encoders.json").read_text())
        lines += [f"## Encoders: ImageBind-{figures['size']} (random weights) on {figures['device']}", "",
                  "| precision | frames/s | clips/s | videos/s | TFLOP/s | of peak |", "| --- | --- | --- | --- | --- | --- |"]
        for precision, f in figures["precisions"].items():
            peak = f"{100 * f['fraction_of_peak']:.0f}%" if f["fraction_of_peak"] else "n/a"
            lines.append(f"| {precision} | {f['frames_per_s']:.1f} | {f['clips_per_s']:.1f} | "
                         f"{f['segments_per_s'] / 10:.2f} | {f['tflops']:.1f} | {peak} |")
    else:
        failures.append(f"encoder benchmark failed ({_said(status)}); see {out / 'encoders.log'}")

    status, _ = _run([sys.executable, str(REPO / "tools" / "bench_families.py"), "--device", args.device]
                     + (["--tiny"] if args.size != RELEASED_SIZE else []), out / "families.log", 600)
    lines += ["", "## Backbone families (random weights): segments per second and FLOPs", ""]
    if status == 0:
        lines += ["    " + line for line in (out / "families.log").read_text().splitlines()
                  if "segments/s" in line or "encoding rate" in line or line.startswith("device")]
    else:
        failures.append(f"families benchmark failed ({_said(status)}); see {out / 'families.log'}")

    bench = make_synthetic_benchmark(out / "synthetic", SyntheticSpec(train_per_class=4, test_per_class=2))
    single, shared = out / "cache_one_process", out / "cache_two_processes"
    for cache in (single, shared):
        shutil.rmtree(cache, ignore_errors=True)
    one, one_s = _run(_extraction_command(bench, single, args.device, False, args.extract_size),
                      out / "extract_one.log", 300)
    two, two_s = _run(_extraction_command(bench, shared, args.device, True, args.extract_size),
                      out / "extract_two.log", 300)
    lines += ["", "## Extraction (splits and audio draws): torchrun --nproc_per_node=2 on one device vs one process",
              ""]
    if one == two == 0:
        difference = _largest_difference(single, shared)
        lines.append(f"one process {one_s:.1f} s, two processes {two_s:.1f} s (start-up included); largest "
                     f"difference between the caches: {difference:.3g}")
        if difference > 1e-5:
            failures.append(f"the two caches differ by {difference:.3g}")
    else:
        failures.append(f"extraction failed (one process: {_said(one)}, two: {_said(two)}); see the logs in {out}")

    status, _ = _run([sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-rs", "-n", "0", "-p", "no:cacheprovider",
                      "tests/test_gpu.py"], out / "gpu_tests.log", 240)
    summary_line = ((out / "gpu_tests.log").read_text().strip().splitlines() or ["(no output)"])[-1]
    lines += ["", "## GPU-marked tests", "", summary_line]
    if status not in (0, 5):
        failures.append(f"GPU tests failed ({_said(status)}); see {out / 'gpu_tests.log'}")

    lines += ["", "## Result", ""] + ([f"- FAILED: {f}" for f in failures] or ["all checks passed"])
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    cli.run(main)
