"""Benchmark: complex-valued fusion against the fine-tuning baseline, ratios measured in one run.

- a training epoch at the real size (OV-AVEBench's 13,182 training videos, 1024-d features, the 46 seen classes
  + other) with the default configs: 2-stream fusion over the fine-tuning baseline;
- extraction per segment: the 4-stream companions (iHSV picture, instantaneous frequency, the phase generator,
  both encoders again) over the 2-stream's own audio and frame (small random ImageBind; the paper's generator);
- one CycleGAN step at batch 16 (the paper's ResNet-9 generators and PatchGANs).

    python tools/bench_complex_fusion.py [--device cpu] [--meta-csv ... --label-json ...]
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import cli  # noqa: E402
from common.schema import PhaseGanConfig  # noqa: E402
from data.annotations import AnnotationIndex  # noqa: E402
from models.complex_fusion import ihsv_pictures  # noqa: E402
from models.families import imagebind  # noqa: E402
from models.phase_gan import SIZES, Discriminator, Generator, from_mel_domain, to_if_domain  # noqa: E402
from pipeline import training  # noqa: E402
from pipeline.synthetic_cache import make_synthetic_cache  # noqa: E402
from tools import annotation_files  # noqa: E402
from tools.bench_training import one_epoch  # noqa: E402

SEGMENTS = 40  # segments per extraction measurement


def epoch_seconds(config) -> float:
    with tempfile.TemporaryDirectory() as run:
        return one_epoch(training.Trainer(config, Path(run)), config)[1]


def extraction_seconds(device) -> tuple[float, float]:
    """Seconds per segment: the 2-stream's inputs and encoders, then the 4-stream's companions on top."""
    from common import config as config_io
    from common.schema import Config

    config = config_io.load(Config, annotation_files.REPO / "configs" / "_base_" / "default.yaml",
                            ["encoder.size=small", "encoder.checkpoint=random", f"device={device}"])
    encoder = imagebind.build(config, torch.device(device))
    rng = np.random.default_rng(0)
    samples = rng.standard_normal(SEGMENTS * 16000).astype(np.float32) * 0.1
    pictures = [Image.fromarray(rng.integers(0, 256, (360, 640, 3), dtype=np.uint8)) for _ in range(SEGMENTS)]
    size = SIZES["paper"]
    generator = Generator(imagebind.PHASE_INPUT, imagebind.AUDIO_INPUT, size["filters"], size["blocks"]).to(device)
    generator.eval()
    with torch.inference_mode():
        start = time.perf_counter()
        encoder.segments(imagebind.audio_window(samples)[None], imagebind.frame_window(pictures)[None])
        plain = time.perf_counter() - start
        start = time.perf_counter()
        instantaneous = imagebind.phase_window(samples).to(device)
        translated = torch.cat([from_mel_domain(generator(to_if_domain(part))) for part in instantaneous.split(8)])
        encoder.segments(translated[None], imagebind.frame_window(ihsv_pictures(pictures))[None])
        companions = time.perf_counter() - start
    return plain / SEGMENTS, companions / SEGMENTS


def gan_step_seconds(device) -> float:
    """One generator and discriminator update of the paper's CycleGAN at batch 16."""
    settings, size = PhaseGanConfig(), SIZES["paper"]
    g = Generator(imagebind.PHASE_INPUT, imagebind.AUDIO_INPUT, size["filters"], size["blocks"]).to(device)
    f = Generator(imagebind.AUDIO_INPUT, imagebind.PHASE_INPUT, size["filters"], size["blocks"]).to(device)
    d = Discriminator(1, size["disc_filters"]).to(device)
    optimizer = torch.optim.Adam([*g.parameters(), *f.parameters()], lr=settings.lr_generator)
    optim_d = torch.optim.Adam(d.parameters(), lr=settings.lr_discriminator)
    real_if = torch.rand(settings.batch_size, *imagebind.PHASE_INPUT, device=device) * 2 - 1
    real_mel = torch.randn(settings.batch_size, *imagebind.AUDIO_INPUT, device=device) * 0.3
    start = time.perf_counter()
    fake = g(real_if)
    loss = ((d(fake) - 1) ** 2).mean() + (f(fake) - real_if).abs().mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    loss_d = ((d(real_mel) - settings.real_label) ** 2).mean() + (d(fake.detach()) ** 2).mean()
    optim_d.zero_grad()
    loss_d.backward()
    optim_d.step()
    if device != "cpu":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=cli.description(__doc__), epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    args = annotation_files.parse_arguments(parser, argv)
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, device {args.device}")
    index = AnnotationIndex.load(args.meta_csv, args.label_json)
    with tempfile.TemporaryDirectory() as work:
        overrides = [f"device={args.device}", "train.tensorboard=false", "train.audio_draws=0"]
        baseline = annotation_files.synthetic_cache_config("v1_fine_tuning.yaml", args.meta_csv, args.label_json,
                                                           work, *overrides)
        fusion = annotation_files.synthetic_cache_config("complex_fusion_2stream.yaml", args.meta_csv,
                                                         args.label_json, work, *overrides)
        make_synthetic_cache(baseline, index)
        base_epoch, fusion_epoch = epoch_seconds(baseline), epoch_seconds(fusion)
    print(f"training epoch at the real size ({len(index.videos('train').vid_names)} videos): fine-tuning "
          f"{base_epoch:.1f} s, 2-stream fusion {fusion_epoch:.1f} s: {fusion_epoch / base_epoch:.2f}x")
    plain, companions = extraction_seconds(args.device)
    print(f"extraction per segment (small random ImageBind, the paper's generator): 2-stream {1000 * plain:.1f} ms, "
          f"4-stream companions {1000 * companions:.1f} ms more: {(plain + companions) / plain:.2f}x the 2-stream's")
    step = gan_step_seconds(args.device)
    print(f"one CycleGAN step at batch 16 (ResNet-9, 64 filters): {step:.2f} s")


if __name__ == "__main__":
    cli.run(main)
