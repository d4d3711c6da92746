"""Benchmark: ImageBind encoders on per-segment inputs (random weights, the real sizes).

Prints segments/s per modality; a segment is one frame plus one 1 s audio clip. On a GPU,
run it with ``--precisions fp32 bf16`` to compare the published precision with autocast.

    python tools/bench_encoders.py --size huge --batch 4 --device cpu
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.imagebind import build_imagebind  # noqa: E402
from models.segment_encoder import SegmentEncoder, resolve_device  # noqa: E402


def _rate(fn, items: int, repeats: int, device: torch.device) -> float:
    fn()  # warm-up: kernels, allocator, autotuning
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return items * repeats / (time.perf_counter() - start)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="huge")
    parser.add_argument("--batch", type=int, default=4, help="videos per batch (10 segments each) on GPU; "
                        "segments per batch on CPU")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precisions", nargs="+", default=["fp32"])
    args = parser.parse_args(argv)

    device = resolve_device(args.device)
    torch.manual_seed(0)
    start = time.perf_counter()
    model = build_imagebind(args.size, device)
    build = time.perf_counter() - start
    videos, segments = (args.batch, 10) if device.type == "cuda" else (1, args.batch)
    frames = torch.randn(videos, segments, 3, 224, 224, device=device)
    clips = torch.randn(videos, segments, 1, 128, 204, device=device)
    tokens = torch.randint(1, 49407, (68, 77), device=device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or platform.machine())
    print(f"device: {name} ({device.type}), torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"model: ImageBind-{args.size}, random weights, built in {build:.1f} s; batch {videos}x{segments} segments")
    n = videos * segments
    for precision in args.precisions:
        encoder = SegmentEncoder(model, device, precision)
        vision = _rate(lambda: encoder.vision(frames), n, args.repeats, device)
        audio = _rate(lambda: encoder.audio(clips), n, args.repeats, device)
        text = _rate(lambda: encoder.text(tokens), tokens.shape[0], args.repeats, device)
        both = 1 / (1 / vision + 1 / audio)
        print(f"{precision}: vision {vision:8.2f} frames/s | audio {audio:8.2f} clips/s | "
              f"segments (frame+clip) {both:8.2f}/s | text {text:8.1f} names/s")


if __name__ == "__main__":
    main()
