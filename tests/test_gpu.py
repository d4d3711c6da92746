"""Checks that need a CUDA GPU (marked ``gpu``: skipped with the reason elsewhere; run by
`make gpu-check`)."""

import copy

import pytest
import torch

from common import config as config_io
from common.schema import Config
from conftest import REPO, synthetic_config
from data.annotations import AnnotationIndex
from data.feature_cache import FeatureCache
from data.synthetic import SyntheticSpec, make_synthetic_benchmark
from models.imagebind import build_imagebind
from models.segment_encoder import SegmentEncoder, resolve_device
from pipeline import extraction, training
from pipeline.synthetic_cache import make_synthetic_cache

pytestmark = pytest.mark.gpu


def test_the_configured_gpu_becomes_the_current_device():
    last = torch.cuda.device_count() - 1
    assert resolve_device(f"cuda:{last}") == torch.device("cuda", last)
    assert torch.cuda.current_device() == last
    resolve_device("cuda:0")


def test_random_weights_are_the_same_model_on_cpu_and_gpu(synthetic_bench, tmp_path):
    config = synthetic_config(synthetic_bench, tmp_path / "cache")
    on_gpu = extraction.build_encoder(config, torch.device("cuda", 0)).model.state_dict()
    on_cpu = extraction.build_encoder(config, torch.device("cpu")).model.state_dict()
    for name, tensor in on_cpu.items():
        assert torch.equal(on_gpu[name].cpu(), tensor), name


@pytest.mark.parametrize("precision, tolerance", [("fp32", 1e-4), ("tf32", 2e-2), ("bf16", 5e-2)])
def test_gpu_encoding_matches_the_cpu(precision, tolerance):
    torch.manual_seed(0)
    model = build_imagebind("small")
    clips, frames = torch.randn(2, 10, 1, 128, 204), torch.randn(2, 10, 3, 224, 224)
    on_cpu = SegmentEncoder(copy.deepcopy(model), torch.device("cpu")).segments(clips, frames)
    on_gpu = SegmentEncoder(model, torch.device("cuda", 0), precision).segments(clips, frames)
    for a, b in zip(on_cpu, on_gpu):
        assert torch.isfinite(b).all()
        relative = (a - b).norm(dim=-1) / a.norm(dim=-1)
        assert relative.max() < tolerance, (precision, float(relative.max()))


def test_resident_training_batches_on_the_gpu_equal_the_cpu_ones(tmp_path):
    paths = make_synthetic_benchmark(tmp_path, SyntheticSpec(train_per_class=5), write_media=False)
    config = config_io.load(Config, REPO / "configs" / "v1_fine_tuning.yaml", [
        f"data.meta_csv={paths['meta_csv']}", f"data.label_json={paths['label_json']}",
        f"cache.dir={tmp_path / 'cache'}", "encoder.size=small", "encoder.checkpoint=random"])
    index = AnnotationIndex.load(paths["meta_csv"], paths["label_json"])
    make_synthetic_cache(config, index, splits=("train",))
    data = training.load_split(FeatureCache(config.cache.dir), index, "train", index.seen_vocabulary)
    on_gpu = training.SegmentBatches(data, 8, 1, torch.device("cuda", 0))
    on_cpu = training.SegmentBatches(data, 8, 1, torch.device("cpu"))
    assert on_gpu.resident and on_gpu.streams["audio"].is_cuda
    for (gpu_streams, gpu_targets), (cpu_streams, cpu_targets) in zip(on_gpu.epoch(1), on_cpu.epoch(1)):
        assert torch.equal(gpu_targets.cpu(), cpu_targets)
        for name in cpu_streams:
            assert torch.equal(gpu_streams[name].cpu(), cpu_streams[name])
