"""Complex-valued fusion's parts, each against what the paper defines: the complex convolution
equals complex arithmetic done independently, the CNN's size, class-agnostic kernels (permuting
classes permutes the scores; a class's scores never depend on another class's similarities),
the iHSV companion and the instantaneous frequency on known inputs."""

import math

import numpy as np
import pytest
import torch

from common.config import InvalidValue
from common.schema import ComplexSettings, TemporalSettings
from models.complex_fusion import (ComplexCNN, ComplexConv2d, ComplexFusion, RealCNN, hsv_to_rgb, ihsv,
                                   instantaneous_frequency, matched_real_width, minmax, parameter_count, rgb_to_hsv)


def test_the_complex_convolution_is_complex_arithmetic():
    torch.manual_seed(0)
    conv = ComplexConv2d(2, 3, (5, 1), padding=(2, 0))
    x = torch.complex(torch.randn(4, 2, 10, 7, dtype=torch.float64), torch.randn(4, 2, 10, 7, dtype=torch.float64))
    conv = conv.double()
    weight = torch.complex(conv.real.weight, conv.imag.weight)  # W = W_R + i W_I
    bias = torch.complex(conv.real.bias - conv.imag.bias, conv.real.bias + conv.imag.bias)
    padded = torch.nn.functional.pad(x, (0, 0, 2, 2))
    expected = torch.zeros(4, 3, 10, 7, dtype=torch.complex128)
    for o in range(3):  # a complex correlation written out in complex numbers
        for i in range(2):
            for dt in range(5):
                expected[:, o] += weight[o, i, dt, 0] * padded[:, i, dt:dt + 10]
        expected[:, o] += bias[o]
    y_re, y_im = conv(x.real, x.imag)
    torch.testing.assert_close(torch.complex(y_re, y_im), expected, rtol=0, atol=1e-12)


def test_the_cnn_has_about_33k_parameters_and_the_real_one_as_many():
    assert parameter_count(ComplexCNN(1)) == 31874  # 2 streams: one complex channel
    assert parameter_count(ComplexCNN(2)) == 32194  # 4 streams: two
    for channels in (1, 2):
        width = matched_real_width(channels, 32, 4, 5)
        real = parameter_count(RealCNN(channels, width))
        assert abs(real - parameter_count(ComplexCNN(channels))) / parameter_count(ComplexCNN(channels)) < 0.02


@pytest.mark.parametrize("cnn", [ComplexCNN(2), RealCNN(2, 45)])
def test_kernels_never_mix_classes(cnn):
    torch.manual_seed(1)
    cnn.eval()
    x_re, x_im = torch.randn(3, 2, 10, 9), torch.randn(3, 2, 10, 9)
    out = cnn(x_re, x_im)
    order = torch.randperm(9)
    torch.testing.assert_close(cnn(x_re[..., order], x_im[..., order]), out[..., order])  # permuted classes
    changed_re, changed_im = x_re.clone(), x_im.clone()
    changed_re[..., 4], changed_im[..., 4] = 5.0, -3.0  # another class's similarities change
    after = cnn(changed_re, changed_im)
    keep = [k for k in range(9) if k != 4]
    torch.testing.assert_close(after[..., keep], out[..., keep])
    assert cnn(x_re[..., :5], x_im[..., :5]).shape == (3, 10, 5)  # any number of classes


def test_the_fused_scores_are_min_max_rescaled_magnitudes_and_equivariant_in_the_classes():
    torch.manual_seed(2)
    widths = {"audio": 8, "vision": 12}
    model = ComplexFusion(widths, ComplexSettings(streams=4), TemporalSettings(attn_dim=8, ffn_dim=8)).eval()
    streams = {"vision": torch.randn(2, 10, 12), "ihsv": torch.randn(2, 10, 12), "audio": torch.randn(2, 10, 8),
               "phase": torch.randn(2, 10, 8)}
    texts = {"audio": torch.randn(6, 8), "vision": torch.randn(6, 12)}
    scores = model(streams, texts)
    assert scores.shape == (2, 10, 6)
    torch.testing.assert_close(scores.amin(-1), torch.zeros(2, 10))
    torch.testing.assert_close(scores.amax(-1), torch.ones(2, 10), atol=1e-6, rtol=0)
    order = torch.tensor([3, 0, 5, 1, 4, 2])
    permuted = model(streams, {k: v[order] for k, v in texts.items()})
    torch.testing.assert_close(permuted, scores[..., order], atol=1e-5, rtol=0)  # float32 sums in another order


def test_two_streams_put_vision_real_and_audio_imaginary_unless_swapped():
    sims = {"vision": torch.full((1, 10, 3), 0.25), "audio": torch.full((1, 10, 3), 0.75)}
    plain = ComplexFusion({"audio": 4, "vision": 4}, ComplexSettings(), TemporalSettings(attn_dim=4, ffn_dim=4))
    swapped = ComplexFusion({"audio": 4, "vision": 4}, ComplexSettings(swap=True),
                            TemporalSettings(attn_dim=4, ffn_dim=4))
    assert [float(part.flatten()[0]) for part in plain.channels(sims)] == [0.25, 0.75]
    assert [float(part.flatten()[0]) for part in swapped.channels(sims)] == [0.75, 0.25]


@pytest.mark.parametrize("key, value, message", [
    ("swap", True, "swaps the two parts of the single channel of 2 streams"),
    ("kernel_t", 4, "4 is even"),
])
def test_settings_that_cannot_go_together_are_refused(key, value, message):
    with pytest.raises(InvalidValue, match=message) as refused:
        ComplexSettings(**{"streams": 4, key: value})
    assert refused.value.key == key


# Known pixels: (R, G, B) in [0, 255] -> (H, S, V) with H in radians.
HSV_CASES = [((255, 0, 0), (0.0, 1.0, 1.0)), ((0, 255, 0), (2 * math.pi / 3, 1.0, 1.0)),
             ((0, 0, 255), (4 * math.pi / 3, 1.0, 1.0)), ((255, 255, 0), (math.pi / 3, 1.0, 1.0)),
             ((128, 128, 128), (0.0, 0.0, 128 / 255)), ((0, 0, 0), (0.0, 0.0, 0.0)),
             ((255, 0, 255), (5 * math.pi / 3, 1.0, 1.0)), ((100, 50, 0), (math.pi / 6, 1.0, 100 / 255))]


@pytest.mark.parametrize("rgb, hsv", HSV_CASES)
def test_hsv_of_known_pixels_and_back(rgb, hsv):
    h, s, v = rgb_to_hsv(np.array(rgb, np.float64) / 255)
    np.testing.assert_allclose([h, s, v], hsv, atol=1e-12)
    np.testing.assert_allclose(hsv_to_rgb(h, s, v), np.array(rgb) / 255, atol=1e-12)


def test_ihsv_of_known_pixels():
    # Pure red: H 0, S 1, V 1 -> triplet (V, S sin H, S) = (1, 0, 1) read as HSV: hue a full turn (red again),
    # saturation (0 + 1) / 2 = 0.5 with the shift, value 1 -> (1, 0.5, 0.5).
    red = np.array([[[255, 0, 0]]], np.uint8)
    np.testing.assert_allclose(ihsv(red)[0, 0], [1.0, 0.5, 0.5], atol=1e-12)
    np.testing.assert_allclose(ihsv(red, "abs")[0, 0], [1.0, 1.0, 1.0], atol=1e-12)
    # Pure blue: H 4 pi / 3 (sin < 0): S sin H = -sqrt(3) / 2; the hue is V = 1 of a turn (red).
    blue = np.array([[[0, 0, 255]]], np.uint8)
    shifted = (1 - math.sqrt(3) / 2) / 2
    np.testing.assert_allclose(ihsv(blue)[0, 0], [1.0, 1 - shifted, 1 - shifted], atol=1e-12)
    np.testing.assert_allclose(ihsv(blue, "clip")[0, 0], [1.0, 1.0, 1.0], atol=1e-12)  # saturation 0: grey at S = 1
    np.testing.assert_allclose(ihsv(blue, "abs")[0, 0], [1.0, 1 - math.sqrt(3) / 2, 1 - math.sqrt(3) / 2], atol=1e-12)
    # Grey: S = 0 -> value 0: black, whatever the hue.
    np.testing.assert_allclose(ihsv(np.full((2, 2, 3), 128, np.uint8)), np.zeros((2, 2, 3)), atol=1e-12)


def test_instantaneous_frequency_of_known_phases():
    phase = torch.tensor([[0.0, 0.5, 1.0, -3.0, 3.0]])
    # differences: 0 (against 0), 0.5, 0.5, -4.0, 6.0 -> mod 2 pi -> minus pi
    expected = [(d % (2 * math.pi)) - math.pi for d in (0.0, 0.5, 0.5, -4.0, 6.0)]
    torch.testing.assert_close(instantaneous_frequency(phase), torch.tensor([expected]), atol=1e-6, rtol=0)
    # a steady advance of w radians a frame gives IF = w - pi from the second frame on
    steady = torch.arange(8.0)[None] * 0.3
    torch.testing.assert_close(instantaneous_frequency(steady)[0, 1:], torch.full((7,), 0.3 - math.pi))


def test_minmax_is_per_segment_over_classes():
    scores = torch.tensor([[[1.0, 3.0, 2.0], [5.0, 5.0, 5.0]]])
    torch.testing.assert_close(minmax(scores), torch.tensor([[[0.0, 1.0, 0.5], [0.0, 0.0, 0.0]]]), atol=1e-6,
                               rtol=0)
