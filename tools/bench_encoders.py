"""Benchmark: ImageBind encoders on per-segment inputs (random weights, the real sizes).

Prints frames/s, audio clips/s and segments/s (a segment is one frame plus one 1 s clip) for
each precision, the arithmetic rate this reaches (FLOPs counted by PyTorch) and,
for GPUs whose datasheet peak is listed below, the fraction of that peak.

    python tools/bench_encoders.py --size huge --batch 4 --device cpu
    python tools/bench_encoders.py --size huge --batch 32 --precisions fp32 tf32 bf16   # a GPU
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import cli  # noqa: E402
from models.imagebind import build_imagebind  # noqa: E402
from models.families.imagebind import ImageBindEncoder  # noqa: E402
from models.segment_encoder import PRECISIONS, resolve_device  # noqa: E402

# Dense datasheet peaks in TFLOP/s: fp32 on CUDA cores, tf32 / bf16 / fp16 on tensor cores.
PEAK_TFLOPS = {
    "H200": {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4},
    "H100": {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4},  # SXM
    "A100": {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0, "fp16": 312.0},
    "L40S": {"fp32": 91.6, "tf32": 183.0, "bf16": 362.0, "fp16": 362.0},
}


def peak_tflops(device_name: str, precision: str) -> float | None:
    for key, peaks in PEAK_TFLOPS.items():
        if key in device_name:
            return peaks[precision]
    return None


def rate(fn, items: int, repeats: int, device: torch.device) -> float:
    """Items per second of ``fn`` after a warm-up, synchronising the device around the timing."""
    fn()  # warm-up: kernels, allocator, autotuning
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # the device that ran the work, not the default one
    return items * repeats / (time.perf_counter() - start)


def flops_per_segment(size: str) -> dict[str, int]:
    """FLOPs of one frame and one clip, as PyTorch's counter sees them (matmuls, convolutions,
    attention), counted on the ``meta`` device: nothing is computed."""
    model = build_imagebind(size, "meta")
    flops = {}
    for name, encode, shape in (("vision", model.encode_vision, (1, 3, 224, 224)),
                                ("audio", model.encode_audio, (1, 1, 128, 204))):
        with FlopCounterMode(display=False) as counter:
            encode(torch.empty(shape, device="meta"))
        flops[name] = counter.get_total_flops()
    return flops


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="huge")
    parser.add_argument("--batch", type=int, default=4, help="videos per batch (10 segments each) on GPU; "
                        "segments per batch on CPU")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precisions", nargs="+", default=["fp32"], choices=list(PRECISIONS))
    parser.add_argument("--json", help="also write the figures to this JSON file")
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
    print(f"device: {name} ({device}), torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"model: ImageBind-{args.size}, random weights, built in {build:.1f} s; batch {videos}x{segments} segments")
    flops = flops_per_segment(args.size)
    print(f"work per segment: frame {flops['vision'] / 1e9:.1f} GFLOP, clip {flops['audio'] / 1e9:.1f} GFLOP "
          f"({(flops['vision'] + flops['audio']) * 10 / 1e12:.2f} TFLOP per 10-segment video)")
    n = videos * segments
    results = {"device": name, "size": args.size, "batch_segments": n, "flops_per_segment": flops, "precisions": {}}
    for precision in args.precisions:
        encoder = ImageBindEncoder(model, device, precision)
        vision = rate(lambda: encoder.vision(frames), n, args.repeats, device)
        audio = rate(lambda: encoder.audio(clips), n, args.repeats, device)
        text = rate(lambda: encoder.text(tokens), tokens.shape[0], args.repeats, device)
        both = 1 / (1 / vision + 1 / audio)
        tflops = both * (flops["vision"] + flops["audio"]) / 1e12
        peak = peak_tflops(name, precision) if device.type == "cuda" else None
        of_peak = f", {100 * tflops / peak:.0f}% of the {peak:g} TFLOP/s peak" if peak else ""
        print(f"{precision}: vision {vision:8.2f} frames/s | audio {audio:8.2f} clips/s | segments (frame+clip) "
              f"{both:8.2f}/s = {both / 10:7.2f} videos/s | text {text:8.1f} names/s | {tflops:7.2f} TFLOP/s{of_peak}")
        results["precisions"][precision] = {"frames_per_s": vision, "clips_per_s": audio, "segments_per_s": both,
                                            "names_per_s": text, "tflops": tflops,
                                            "fraction_of_peak": tflops / peak if peak else None}
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    cli.run(main)
