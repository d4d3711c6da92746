"""Benchmark: per-segment encoding rate of the backbone families at their real sizes (random
weights), measured in one run: CLIP ViT-B/32 + CLAP HTSAT (unfused) and LanguageBind (ViT-L/14
image and audio towers) against ImageBind-Huge, with the FLOPs of one segment (frame + 1 s of
audio) as torch counts them. Also times each family's decoding of one video's media into encoder
inputs.

    python tools/bench_families.py --device cpu
    python tools/bench_families.py --tiny            # every family at its test size: a quick dry run
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import cli  # noqa: E402
from common import config as config_io  # noqa: E402
from common.schema import Config  # noqa: E402
from data.loading import media_paths  # noqa: E402
from data.synthetic import SyntheticSpec, make_synthetic_benchmark  # noqa: E402
from models.families import family  # noqa: E402
from models.segment_encoder import resolve_device  # noqa: E402
from tools.bench_encoders import rate  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FAMILIES = {"imagebind": ["encoder.size=huge"],
            "clip_clap": ["encoder.family=clip_clap", "encoder.size=base", "encoder.audio_checkpoint=random",
                          "train.audio_draws=0"],
            "languagebind": ["encoder.family=languagebind", "encoder.size=large", "encoder.audio_checkpoint=random",
                             "train.audio_draws=0"]}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--videos", type=int, default=1, help="videos per encoder call (10 segments each)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--tiny", action="store_true", help="each family at its tiny test size (a dry run)")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    rates = {}
    with tempfile.TemporaryDirectory() as work:
        bench = make_synthetic_benchmark(Path(work), SyntheticSpec(train_per_class=1, val_per_class=1,
                                                                   test_per_class=1))
        wav, frames = media_paths(bench["media_root"], "test", "baby laughter", "syn_test_00_00")
        for name, overrides in FAMILIES.items():
            config = config_io.load(Config, REPO / "configs" / "_base_" / "default.yaml",
                                    overrides + ["encoder.checkpoint=random", f"device={device}"]
                                    + (["encoder.size=tiny"] if args.tiny else []))
            backbone = family(name)
            decode = 1 / rate(lambda: (backbone.decode_audio(wav), backbone.decode_frames(frames)), 1, args.repeats,
                              torch.device("cpu"))
            encoder = backbone.build(config, device)
            clips = backbone.decode_audio(wav)[None].expand(args.videos, *[-1] * 4).contiguous()
            images = backbone.decode_frames(frames)[None].expand(args.videos, *[-1] * 4).contiguous()
            segments = rate(lambda: encoder.segments(clips, images), 10 * args.videos, args.repeats, device)
            with FlopCounterMode(display=False) as counter:
                encoder.segments(clips[:1], images[:1])
            rates[name] = (segments, decode, backbone.describe(config), counter.get_total_flops() / 10)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or platform.machine())
    print(f"device: {name} ({device}), torch {torch.__version__}, {torch.get_num_threads()} threads; random weights")
    for segments, decode, label, flops in rates.values():
        print(f"{label:<48} {segments:8.2f} segments/s (frame + clip) | {flops / 1e9:8.1f} GFLOP per segment | "
              f"decoding one video's media: {decode:.2f} s")
    for name in ("clip_clap", "languagebind"):
        print(f"{name} / imagebind encoding rate: {rates[name][0] / rates['imagebind'][0]:.2f}x")


if __name__ == "__main__":
    cli.run(main)
