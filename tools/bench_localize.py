"""Benchmark: the localizer's re-query speed and its memory on long videos, measured in one run
with the small random ImageBind on the CPU.

1. Three 30 s synthetic videos localized with 2 class names, then the same videos with a new
   20-name vocabulary: the second call encodes only the 20 names (the segment embeddings are
   kept per video file).
2. Peak resident memory of localizing a 1-minute and a 60-minute synthetic video, each in a
   fresh process: streaming keeps it flat.
3. Throughput: segments encoded per second by the localizer on 20 videos of 10 s and on one
   20-minute video, against extraction's rate (tools/prepare_videos.py's layout of the same 20
   videos, then the feature cache) with the same encoder and decoding workers; encoders are
   built before the clocks start.

    python tools/bench_localize.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import cli  # noqa: E402
from data.synthetic import write_video  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
WORDS = ["dog barking", "car horn", "glass breaking", "crowd cheering", "chainsaw", "church bell ringing",
         "helicopter", "baby crying", "lawn mower", "thunder", "violin", "drum", "siren", "applause", "train horn",
         "rain", "typing", "cat meowing", "water running", "footsteps"]


def write_scenes(path: Path, seconds: int, fps: int = 2, offset: int = 0) -> None:
    """Flat colours changing every few seconds, a tone changing with them; made second by second."""
    t = np.arange(16000) / 16000
    scenes = [(second // 5 + offset) % 4 for second in range(seconds)]
    pictures = (np.full((64, 96, 3), (40 + 60 * scene, 200 - 40 * scene, 90), np.uint8)
                for scene in scenes for _ in range(fps))
    sound = ((0.2 * np.sin(2 * np.pi * (300 + 150 * scene) * t)).astype(np.float32)[None] for scene in scenes)
    write_video(path, pictures, sound, fps, 16000)


def localize_args(work: Path) -> list[str]:
    return ["--config", str(REPO / "configs" / "localize.yaml"), "encoder.size=small", "encoder.checkpoint=random",
            "device=cpu", f"cache.dir={work / 'cache'}", "extract.num_workers=0"]


def run_memory_case(video: Path, work: Path) -> dict:
    from common import config as config_io
    from common.schema import Config
    from pipeline.localize import Localizer

    config = config_io.load(Config, REPO / "configs" / "localize.yaml", localize_args(work)[2:])
    start = time.perf_counter()
    [result] = Localizer(config).localize([video], WORDS[:2])
    return {"seconds": time.perf_counter() - start, "segments": len(result.labels),
            "peak_resident_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def throughput(work: Path, short_videos: int = 20, long_minutes: int = 20) -> dict:
    """Segments per second of extraction, the localizer on the short videos and on the long one,
    each timed in a fresh process on the same media."""
    from tools import prepare_videos

    raw = work / "raw"
    names = [f"clip{k:02d}" for k in range(short_videos)]
    for k, name in enumerate(names):
        write_scenes(raw / f"{name}.mp4", 10, offset=k)
    write_scenes(work / "long" / "long.mp4", 60 * long_minutes)
    meta, labels = work / "meta.csv", work / "labels.json"
    meta.write_text("split,cls_name,cls_type,vid_name\n" + "".join(f"test,scene,close,{n}\n" for n in names))
    labels.write_text(json.dumps({n: {"category": "scene", "label": str([1] * 10)} for n in names}))
    prepare_videos.main(["--videos", str(raw), *throughput_args(work)])
    rates = {}
    for label, kind, target in (("extraction", "extract", work), ("localizer, short videos", "localize", raw),
                                ("localizer, long video", "localize", work / "long")):
        done = subprocess.run([sys.executable, __file__, "--throughput-case", kind, str(target), str(work)],
                              capture_output=True, text=True, check=True)
        rates[label] = json.loads(done.stdout.strip().splitlines()[-1])["segments_per_second"]
    return rates


def throughput_args(work: Path) -> list[str]:
    return ["encoder.size=small", "encoder.checkpoint=random", "device=cpu", f"data.meta_csv={work / 'meta.csv'}",
            f"data.label_json={work / 'labels.json'}", f"data.media_root={work / 'media'}"]


def run_throughput_case(kind: str, target: Path, work: Path) -> dict:
    """One timed case; the encoder is built (and the class names encoded) before the clock starts."""
    from common import config as config_io
    from common.schema import Config
    from pipeline import extraction
    from pipeline.localize import Localizer

    config = config_io.load(Config, REPO / "configs" / "localize.yaml",
                            [*throughput_args(work), f"cache.dir={work / ('cache_' + target.name)}"])
    if kind == "extract":
        encoder = extraction.build_encoder(config, extraction.resolve_device("cpu"))
        encoder.class_names(["scene"], "{}", "audio")  # the tokenizer loaded, as for the localizer below
        extraction.build_encoder = lambda *_: encoder
        start = time.perf_counter()
        extraction.extract(config, ["test"])
        segments = 10 * len(extraction.FeatureCache(config.cache.dir).split("test").vid_names)
    else:
        localizer = Localizer(config)
        localizer.texts(WORDS[:2] + ["other"])
        start = time.perf_counter()
        segments = sum(len(r.labels) for r in localizer.localize([target], WORDS[:2]))
    return {"segments_per_second": segments / (time.perf_counter() - start)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--long-minutes", type=int, default=60)
    parser.add_argument("--throughput-minutes", type=int, default=20, help="length of the throughput's long video")
    parser.add_argument("--case", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--throughput-case", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.throughput_case:
        kind, target, work = args.throughput_case
        print(json.dumps(run_throughput_case(kind, Path(target), Path(work))))
        return
    if args.case:
        print(json.dumps(run_memory_case(Path(args.case[0]), Path(args.case[1]))))
        return
    from common import config as config_io
    from common.schema import Config
    from pipeline.localize import Localizer

    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        videos = [work / f"clip{k}.mp4" for k in range(3)]
        for video in videos:
            write_scenes(video, 30)
        config = config_io.load(Config, REPO / "configs" / "localize.yaml", localize_args(work)[2:])
        start = time.perf_counter()
        Localizer(config).localize(videos, WORDS[:2])
        first = time.perf_counter() - start
        start = time.perf_counter()
        results = Localizer(config).localize(videos, WORDS)
        again = time.perf_counter() - start
        assert not any(r.encoded for r in results)
        memory = {}
        for minutes in (1, args.long_minutes):
            video = work / f"long_{minutes}.mp4"
            write_scenes(video, 60 * minutes)
            case = work / f"case_{minutes}"
            done = subprocess.run([sys.executable, __file__, "--case", str(video), str(case)], capture_output=True,
                                  text=True, check=True)
            memory[minutes] = json.loads(done.stdout.strip().splitlines()[-1])
        rates = throughput(work / "throughput", long_minutes=args.throughput_minutes)
    print(f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}; "
          "ImageBind-small, random weights, CPU")
    print(f"3 videos x 30 s, 2 names: {first:6.2f} s | the same videos, 20 new names: {again:6.2f} s | "
          f"{first / again:.0f}x faster")
    short, long = memory[1], memory[args.long_minutes]
    print(f"1-minute video: {short['seconds']:6.1f} s, peak resident {short['peak_resident_bytes'] / 2 ** 20:.0f} MB | "
          f"{args.long_minutes}-minute video: {long['seconds']:6.1f} s, peak resident "
          f"{long['peak_resident_bytes'] / 2 ** 20:.0f} MB | ratio "
          f"{long['peak_resident_bytes'] / short['peak_resident_bytes']:.2f}")

    print(f"segments/s with {os.cpu_count()} cores, default decoding workers: extraction {rates['extraction']:.1f} | "
          + " | ".join(f"{label} {rate:.1f} ({rate / rates['extraction']:.2f}x extraction)"
                       for label, rate in rates.items() if label != "extraction"))


if __name__ == "__main__":
    cli.run(main)
