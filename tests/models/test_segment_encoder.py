"""Device choice and numerics of the per-segment encoders, checked on the CPU by simulating
GPU counts where needed."""

import pytest
import torch

from common.errors import UserError
from models import segment_encoder
from models.imagebind import build_imagebind
from models.segment_encoder import PRECISIONS, SegmentEncoder, resolve_device


@pytest.fixture
def gpus(monkeypatch):
    """A simulated machine with ``gpus.count`` GPUs; ``gpus.current`` records set_device."""
    class Machine:
        count = 1
        current = None

    machine = Machine()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: machine.count)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: setattr(machine, "current", device))
    return machine


def test_ranks_spread_over_the_gpus_and_may_share_one(gpus):
    assert resolve_device("cuda", local_rank=1) == torch.device("cuda", 0)  # two ranks, one GPU
    assert gpus.current == torch.device("cuda", 0)
    gpus.count = 2
    assert resolve_device("auto", local_rank=3) == torch.device("cuda", 1)
    assert resolve_device("cuda:1") == torch.device("cuda", 1) and gpus.current == torch.device("cuda", 1)


def test_cpu_ranks_never_touch_cuda(gpus):
    assert resolve_device("cpu", local_rank=5) == torch.device("cpu") and gpus.current is None


def test_an_absent_gpu_index_is_one_line(gpus):
    with pytest.raises(UserError, match=r"device 'cuda:5' does not exist: this machine has 1 GPU\(s\), cuda:0 to "
                                        r"cuda:0; use one of those"):
        resolve_device("cuda:5")


def test_no_cuda_at_all(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(UserError, match="no CUDA GPU is visible"):
        resolve_device("cuda")


@pytest.mark.parametrize("precision, matmul, conv", [("fp32", "ieee", "ieee"), ("tf32", "tf32", "tf32"),
                                                     ("bf16", "ieee", "ieee")])
def test_each_precision_sets_matmul_and_convolution_modes_explicitly(precision, matmul, conv):
    seen = []
    model = build_imagebind("tiny")
    encoder = SegmentEncoder(model, torch.device("cpu"), precision)
    original = model.encode_audio

    def spy(x):
        seen.append((torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision))
        return original(x)

    model.encode_audio = spy
    before = (torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision)
    encoder.audio(torch.randn(1, 10, 1, 128, 204))
    assert seen == [(matmul, conv)]
    assert (torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision) == before
    assert PRECISIONS[precision].record()["fp32_matmul"] == matmul


def test_segments_returns_both_modalities_in_one_copy():
    torch.manual_seed(0)
    encoder = SegmentEncoder(build_imagebind("tiny"), torch.device("cpu"))
    clips, frames = torch.randn(2, 10, 1, 128, 204), torch.randn(2, 10, 3, 224, 224)
    audio, vision = encoder.segments(clips, frames)
    torch.testing.assert_close(audio, encoder.audio(clips), rtol=0, atol=0)
    torch.testing.assert_close(vision, encoder.vision(frames), rtol=0, atol=0)
    assert segment_encoder.PRECISIONS["bf16"].record() == {"autocast": "bfloat16", "fp32_matmul": "ieee",
                                                           "fp32_conv": "ieee"}


def test_segments_of_different_widths_come_back_whole():
    class TwoWidths(torch.nn.Module):
        def encode_audio(self, x):
            return x.flatten(1)[:, :3]

        def encode_vision(self, x):
            return x.flatten(1)[:, :5]

    encoder = SegmentEncoder(TwoWidths(), torch.device("cpu"))
    clips, frames = torch.randn(2, 10, 1, 4, 4), torch.randn(2, 10, 3, 4, 4)
    audio, vision = encoder.segments(clips, frames)
    torch.testing.assert_close(audio, clips.flatten(2)[:, :, :3], rtol=0, atol=0)
    torch.testing.assert_close(vision, frames.flatten(2)[:, :, :5], rtol=0, atol=0)
