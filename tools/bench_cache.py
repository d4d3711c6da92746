"""Benchmark: N training epochs that decode and encode every video on every epoch (the
published way) against one extraction into the feature cache plus N epochs on the cache.

Same machine, same synthetic media, same encoder, same training step, measured in one run.

    python tools/bench_cache.py --epochs 5 --size small
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import config as config_io  # noqa: E402
from common.schema import Config  # noqa: E402
from data.annotations import AnnotationIndex  # noqa: E402
from data.loading import MediaDataset, collate_media  # noqa: E402
from data.synthetic import SyntheticSpec, make_synthetic_benchmark  # noqa: E402
from models.families import family  # noqa: E402
from models.temporal import TemporalModel  # noqa: E402
from pipeline import training  # noqa: E402
from pipeline.extraction import build_encoder, extract  # noqa: E402
from pipeline.trainable import TemporalLayers  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _encode_every_epoch(config, videos, encoder, workers: int, epoch: int):
    """Batches as the published pipeline makes them: decode and encode the media each time."""
    generator = torch.Generator().manual_seed(epoch)
    order = torch.randperm(len(videos), generator=generator).tolist()
    backbone = family(config.encoder.family)
    dataset = MediaDataset(videos, config.data.media_root, order, backbone.decode_audio, backbone.decode_frames)
    loader = DataLoader(dataset, batch_size=config.train.batch_size,
                        num_workers=workers, collate_fn=collate_media)
    targets = torch.from_numpy(videos.segment_classes)
    for batch in loader:  # clone: inference-mode outputs cannot enter autograd
        yield ({"audio": encoder.audio(batch["audio"]).clone(), "vision": encoder.vision(batch["frames"]).clone()},
               targets[batch["positions"]])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--size", default="small", help="ImageBind size (random weights)")
    parser.add_argument("--train-per-class", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as work:
        paths = make_synthetic_benchmark(Path(work) / "bench", SyntheticSpec(train_per_class=args.train_per_class))
        config = config_io.load(Config, REPO / "configs" / "v1_fine_tuning.yaml", [
            f"data.meta_csv={paths['meta_csv']}", f"data.label_json={paths['label_json']}",
            f"data.media_root={paths['media_root']}", f"cache.dir={work}/cache", f"encoder.size={args.size}",
            "encoder.checkpoint=random", "device=cpu", f"extract.num_workers={args.workers}"])
        index = AnnotationIndex.load(paths["meta_csv"], paths["label_json"])
        videos = index.videos("train")
        encoder = build_encoder(config, torch.device("cpu"))
        text = encoder.class_names(index.seen_vocabulary.names, "{}", "audio")
        texts = (text, text)  # one ImageBind text tower for both modalities
        settings = config.temporal
        kind = TemporalLayers(settings)

        def fresh():
            torch.manual_seed(0)
            model = TemporalModel(encoder.widths, settings)
            return model, torch.optim.Adam(model.parameters(), lr=config.train.lr)

        model, optimizer = fresh()
        start = time.perf_counter()
        for epoch in range(1, args.epochs + 1):
            batches = _encode_every_epoch(config, videos, encoder, args.workers, epoch)
            training.train_one_epoch(model, optimizer, batches, texts, kind, config.train.grad_clip)
        every_epoch = time.perf_counter() - start

        model, optimizer = fresh()
        start = time.perf_counter()
        cache = extract(config, ["train"], index=index)
        extraction = time.perf_counter() - start
        data = training.load_split(cache, index, "train", index.seen_vocabulary)
        batches = training.SegmentBatches(data, config.train.batch_size, 0, torch.device("cpu"))
        for epoch in range(1, args.epochs + 1):
            training.train_one_epoch(model, optimizer, batches.epoch(epoch), texts, kind, config.train.grad_clip)
        cached = time.perf_counter() - start

    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; ImageBind-{args.size} (random weights), {len(videos)} training videos, "
          f"{args.workers} decoding workers")
    print(f"encode every epoch, {args.epochs} epochs:            {every_epoch:7.1f} s")
    print(f"extract once ({extraction:.1f} s) + {args.epochs} epochs on the cache: {cached:7.1f} s")
    print(f"speed-up: {every_epoch / cached:.1f}x (it grows with the epochs and the encoder's size)")


if __name__ == "__main__":
    main()
