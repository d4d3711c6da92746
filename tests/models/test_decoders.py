import numpy as np
import pytest

import metrics
from models.decoders import fine_tuning_scores
from models.strategies import decode


def _ground_truth(golden):
    background = golden["background_index"]
    labels = np.array([[v["category_index"] if on else background for on in v["segment_labels"]]
                       for v in golden["decode_cases"]["videos"]])
    return labels, metrics.labels_to_matrix(labels, len(golden["class_names"]))


@pytest.mark.parametrize("strategy", ["v0", "v01", "v1"])
def test_golden_decode_cases(golden_decoding, strategy):
    cases = golden_decoding["decode_cases"]
    reference = cases[strategy]
    gt_labels, gt_matrix = _ground_truth(golden_decoding)
    out = decode(strategy, cases["sim_audio_text"], cases["sim_visual_text"])

    np.testing.assert_array_equal(out.segment_labels, reference["segment_pred_labels"])
    if "is_event" in reference:
        np.testing.assert_array_equal(out.is_event, np.array(reference["is_event"], bool))
        np.testing.assert_array_equal(out.video_class, reference["video_class"])
    scores = metrics.score_videos(out.pred_matrix, gt_matrix, out.segment_labels, gt_labels)
    np.testing.assert_allclose(scores.segment_f1, reference["segment_f1"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(scores.event_f1, reference["event_f1"], rtol=0, atol=1e-9)
    summary = scores.summary()
    assert summary["accuracy"] == pytest.approx(reference["accuracy"], abs=1e-9)
    assert summary["segment_f1"] == pytest.approx(reference["mean_segment_f1"], abs=1e-9)
    assert summary["event_f1"] == pytest.approx(reference["mean_event_f1"], abs=1e-9)


def test_golden_cases_cover_the_odd_branches(golden_decoding):
    """The golden file exercises every quirk the decoders document; keep it that way."""
    cases = golden_decoding["decode_cases"]
    background = golden_decoding["background_index"]
    v01 = cases["v01"]
    other_with_agreement = [c == background and any(e) for c, e in zip(v01["video_class"], v01["is_event"])]
    assert any(other_with_agreement)
    products = np.array(cases["sim_audio_text"]) * np.array(cases["sim_visual_text"])
    assert (products.max(axis=2) <= 0).any()


def test_training_free_rule_by_hand():
    # 1 video, 3 segments, classes A, B + other. Audio tops: A, B, A; visual tops: B, B, A.
    a = np.array([[[0.9, 0.1, 0.0], [0.1, 0.9, 0.0], [0.9, 0.1, 0.0]]])
    v = np.array([[[0.1, 0.9, 0.0], [0.1, 0.9, 0.0], [0.9, 0.1, 0.0]]])
    out = decode("v0", a, v)
    np.testing.assert_array_equal(out.is_event, [[False, True, True]])
    assert out.video_class.tolist() == [1]  # audio top-1 at the first agreeing segment
    np.testing.assert_array_equal(out.segment_labels, [[2, 1, 1]])
    np.testing.assert_array_equal(out.pred_matrix[0], [[0, 0, 0], [0, 1, 1], [1, 0, 0]])
    never = np.array([[[0.1, 0.9, 0.0], [0.9, 0.1, 0.0], [0.1, 0.9, 0.0]]])  # visual tops B, A, B
    none = decode("v0", a, never)
    assert none.video_class.tolist() == [2]
    np.testing.assert_array_equal(none.segment_labels, [[2, 2, 2]])
    np.testing.assert_array_equal(none.pred_matrix[0, 2], [1, 1, 1])


def test_v01_agreement_on_other_quirk():
    a = np.array([[[0.1, 0.2, 0.9], [0.9, 0.2, 0.1]]])
    v = np.array([[[0.1, 0.2, 0.9], [0.1, 0.9, 0.2]]])
    out = decode("v01", a, v)
    assert out.video_class.tolist() == [2]
    np.testing.assert_array_equal(out.segment_labels, [[2, 2]])
    # F1 matrix: background row is "not agreeing", so the agreeing segment has no positive row
    np.testing.assert_array_equal(out.pred_matrix[0], [[0, 0], [0, 0], [0, 1]])


def test_fine_tuning_scores_and_ties():
    a = np.array([[[0.5, 0.2, -0.3], [-0.2, -0.1, -0.3]]], np.float32)
    v = np.array([[[0.5, 0.8, 0.3], [0.4, 0.5, 0.6]]], np.float32)
    scores = fine_tuning_scores(a, v)
    expected = np.sqrt(np.maximum(a[0, 0] * v[0, 0], 0))
    expected = (expected - expected.min()) / (expected.max() - expected.min())
    np.testing.assert_allclose(scores[0, 0], expected, rtol=1e-6)
    assert np.isnan(scores[0, 1]).all()  # all products negative: 0 / 0, as published
    out = decode("v1", a, v)
    # segment 0: products 0.25, 0.16, -0.09 -> class 0; segment 1: all NaN -> first index, 0
    np.testing.assert_array_equal(out.segment_labels, [[0, 0]])


def test_unknown_strategy_and_bad_shapes():
    with pytest.raises(ValueError, match="unknown decoding strategy 'v2'"):
        decode("v2", np.zeros((1, 1, 2)), np.zeros((1, 1, 2)))
    with pytest.raises(ValueError, match=r"\[N, T, K\]"):
        decode("v1", np.zeros((1, 2)), np.zeros((1, 2)))
