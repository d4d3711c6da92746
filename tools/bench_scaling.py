"""Benchmark: how evaluation and training grow with the corpus. Times and memory of the
training-free evaluation (scoring, predictions.csv, results.json) on 1x and 4x OV-AVEBench's
test split, and of one training epoch on 1x and 2x its train split, with synthetic 1024-d
float16 features; prints the ratios measured in this one run.

    python tools/bench_scaling.py            # annotations found as tools/annotation_files.py says

Each case runs in a fresh process. Memory: peak anonymous memory (what the process allocates;
sampled every 5 ms) and peak resident memory (anonymous + pages of the memory-mapped cache
that the kernel keeps while they are read; it reclaims those under memory pressure).
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import cli  # noqa: E402
from tools import annotation_files  # noqa: E402

CASES = (("evaluate", "test", 1), ("evaluate", "test", 4), ("train", "train", 1), ("train", "train", 2))


class MemorySampler:
    """Peak RssAnon and VmHWM of this process, from /proc/self/status."""

    def __init__(self, interval: float = 0.005):
        self.interval, self.peak_anon, self._stop = interval, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def status() -> dict[str, int]:
        fields = {}
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if value.strip().endswith("kB"):
                fields[key] = int(value.split()[0]) * 1024
        return fields

    def _run(self):
        while not self._stop.is_set():
            self.peak_anon = max(self.peak_anon, self.status()["RssAnon"])
            time.sleep(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak_anon = max(self.peak_anon, self.status()["RssAnon"])
        self.peak_resident = self.status()["VmHWM"]


def write_scaled_annotations(meta_csv: Path, label_json: Path, split: str, factor: int, folder: Path) -> tuple:
    """The annotation files with ``split``'s videos repeated ``factor`` times (renamed copies)."""
    labels = json.loads(Path(label_json).read_text())
    with open(meta_csv, newline="", encoding="utf-8-sig") as handle:
        rows = [row for row in csv.DictReader(handle) if row["split"] == split]
    out_rows, out_labels = [], {}
    for copy in range(factor):
        for row in rows:
            vid = f"{row['vid_name']}_x{copy}"
            out_rows.append({**row, "vid_name": vid})
            out_labels[vid] = labels[row["vid_name"]]
    folder.mkdir(parents=True, exist_ok=True)
    meta, label = folder / "meta.csv", folder / "labels.json"
    with open(meta, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["split", "cls_name", "cls_type", "vid_name"])
        writer.writeheader()
        writer.writerows(out_rows)
    label.write_text(json.dumps(out_labels))
    return meta, label, len(out_rows)


def case_config(kind: str, split: str, work: Path):
    meta, label = work / "annotations" / "meta.csv", work / "annotations" / "labels.json"
    return annotation_files.synthetic_cache_config(
        "v1_fine_tuning.yaml", meta, label, work, "device=cpu", "train.tensorboard=false",
        f"eval.split={split}" if kind == "evaluate" else "eval.split=test", "output.plots=false",
        f"output.root={work / 'runs'}")


def prepare_case(kind: str, split: str, factor: int, meta_csv, label_json, work: Path) -> int:
    """Annotations and a synthetic cache for one case (made before, and apart from, the measurement)."""
    from data.annotations import AnnotationIndex
    from pipeline.synthetic_cache import make_synthetic_cache

    meta, label, videos = write_scaled_annotations(meta_csv, label_json, split, factor, work / "annotations")
    make_synthetic_cache(case_config(kind, split, work), AnnotationIndex.load(meta, label), splits=(split,))
    return videos


def run_case(kind: str, split: str, work: Path) -> dict:
    """Measure one case in this (fresh) process: only the work itself."""
    import torch

    from data.annotations import AnnotationIndex
    from data.feature_cache import FeatureCache
    from models.temporal import TemporalModel
    from pipeline import training
    from pipeline.evaluate import evaluate_strategy
    from pipeline.outputs import RunWriter
    from pipeline.trainable import TemporalLayers

    config = case_config(kind, split, work)
    index = AnnotationIndex.load(config.data.meta_csv, config.data.label_json)
    result = {"anonymous_before_bytes": MemorySampler.status()["RssAnon"]}
    with MemorySampler() as memory:
        start = time.perf_counter()
        if kind == "evaluate":
            evaluation = evaluate_strategy(config, index)
            scored = time.perf_counter()
            with RunWriter.for_evaluation(config.output.root, None, "bench") as writer:
                writer.write_config(config)
                writer.write_predictions(evaluation)
                writer.write_results(config, evaluation)
            result["writer_seconds"] = time.perf_counter() - scored
        else:
            data = training.load_split(FeatureCache(config.cache.dir), index, "train", index.seen_vocabulary)
            text = torch.randn(len(index.seen_vocabulary), data.features.audio.shape[2])
            torch.manual_seed(0)
            model = TemporalModel(text.shape[1], config.temporal)
            optimizer = torch.optim.Adam(model.parameters(), lr=config.train.lr)
            batches = training.SegmentBatches(data, config.train.batch_size, 0, torch.device("cpu"))
            training.train_one_epoch(model, optimizer, batches.epoch(1), (text, text),
                                     TemporalLayers(config.temporal), config.train.grad_clip)
        result["seconds"] = time.perf_counter() - start
    result["peak_anonymous_bytes"] = memory.peak_anon
    result["peak_resident_bytes"] = memory.peak_resident
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    annotation_files.add_arguments(parser)
    parser.add_argument("--case", nargs=2, metavar=("KIND", "SPLIT"), help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.case:
        print(json.dumps(run_case(*args.case, Path(args.work))))
        return
    meta_csv, label_json = annotation_files.find_annotations(args.meta_csv, args.label_json)
    results = []
    for kind, split, factor in CASES:
        with tempfile.TemporaryDirectory() as work:
            videos = prepare_case(kind, split, factor, meta_csv, label_json, Path(work))
            command = [sys.executable, __file__, "--case", kind, split, "--work", work]
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            results.append({"kind": kind, "split": split, "factor": factor, "videos": videos,
                            **json.loads(done.stdout.strip().splitlines()[-1])})
    print(f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}; "
          "synthetic 1024-d float16 features, one fresh process per case")
    mb = 1 / 2 ** 20
    for first, second in ((results[0], results[1]), (results[2], results[3])):
        what = "evaluation (scores + predictions.csv)" if first["kind"] == "evaluate" else "one training epoch"
        print(f"\n{what}, {first['split']} split x{first['factor']} vs x{second['factor']} "
              f"({first['videos']} vs {second['videos']} videos, data ratio {second['videos'] / first['videos']:.1f}):")
        rows = [("time (s)", "seconds", 1), ("anonymous memory after imports (MB)", "anonymous_before_bytes", mb),
                ("peak anonymous memory (MB)", "peak_anonymous_bytes", mb),
                ("peak resident memory (MB)", "peak_resident_bytes", mb)]
        if "writer_seconds" in first:
            rows.insert(1, ("  of which predictions.csv + results (s)", "writer_seconds", 1))
        for label, key, scale in rows:
            a, b = first[key] * scale, second[key] * scale
            print(f"  {label:<40} {a:9.2f} {b:9.2f}   ratio {b / a:5.2f}")


if __name__ == "__main__":
    cli.run(main)
