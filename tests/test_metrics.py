import numpy as np
import pytest

import metrics
from tools.bench_metrics import loop_scores


def test_golden_matrix_cases(golden_decoding):
    for case in golden_decoding["matrix_cases"]:
        assert metrics.segment_level_f1(case["pred"], case["gt"]) == pytest.approx(case["segment_f1"], abs=1e-9)
        assert metrics.event_level_f1(case["pred"], case["gt"]) == pytest.approx(case["event_f1"], abs=1e-9)


def test_golden_matrix_cases_batched_equal_single(golden_decoding):
    cases = [c for c in golden_decoding["matrix_cases"] if len(c["pred"]) == 7]
    pred = np.array([c["pred"] for c in cases])
    gt = np.array([c["gt"] for c in cases])
    np.testing.assert_allclose(metrics.batch_segment_level_f1(pred, gt), [c["segment_f1"] for c in cases], atol=1e-9)
    np.testing.assert_allclose(metrics.batch_event_level_f1(pred, gt), [c["event_f1"] for c in cases], atol=1e-9)


def _random_matrices(rng, n, k=6, t=10):
    labels_pred = rng.integers(0, k, size=(n, t))
    labels_gt = rng.integers(0, k, size=(n, t))
    return metrics.labels_to_matrix(labels_pred, k), metrics.labels_to_matrix(labels_gt, k), labels_pred, labels_gt


def test_vectorised_equals_straightforward_loop():
    rng = np.random.default_rng(0)
    pred, gt, lp, lg = _random_matrices(rng, 300)
    pred[::7] = rng.random(pred[::7].shape) < 0.5  # multi-label rows too
    fast = metrics.score_videos(pred, gt, lp, lg)
    slow = loop_scores(pred, gt, lp, lg)
    np.testing.assert_allclose(fast.segment_f1, slow.segment_f1, atol=1e-9)
    np.testing.assert_allclose(fast.event_f1, slow.event_f1, atol=1e-12)
    np.testing.assert_array_equal(fast.correct_segments, slow.correct_segments)


def test_per_video_values_do_not_depend_on_batching():
    rng = np.random.default_rng(1)
    pred, gt, _, _ = _random_matrices(rng, 97)
    whole = metrics.batch_event_level_f1(pred, gt)
    pieces = np.concatenate([metrics.batch_event_level_f1(pred[i:i + 13], gt[i:i + 13]) for i in range(0, 97, 13)])
    np.testing.assert_array_equal(whole, pieces)
    whole = metrics.batch_segment_level_f1(pred, gt, np.float32)
    pieces = np.concatenate([metrics.batch_segment_level_f1(pred[i:i + 5], gt[i:i + 5], np.float32)
                             for i in range(0, 97, 5)])
    np.testing.assert_array_equal(whole, pieces)


def test_hand_computed_event_f1():
    # one row: predicted runs [0-2] and [5-5]; true runs [1-3] (IoU 2/4 = 0.5 -> match) and [8-9]
    pred = np.array([[1, 1, 1, 0, 0, 1, 0, 0, 0, 0]])
    gt = np.array([[0, 1, 1, 1, 0, 0, 0, 0, 1, 1]])
    assert metrics.event_level_f1(pred, gt) == pytest.approx(2 * 1 / (2 * 1 + 1 + 1))
    # IoU 1/3 < 0.5: no match at all
    assert metrics.event_level_f1([[1, 1, 0, 0]], [[0, 1, 1, 0]]) == 0.0
    assert metrics.segment_level_f1([[1, 1, 0, 0]], [[0, 1, 1, 0]]) == pytest.approx(0.5)


def test_empty_video_scores_one_and_inactive_rows_are_ignored():
    empty = np.zeros((3, 10), int)
    assert metrics.segment_level_f1(empty, empty) == 1.0
    assert metrics.event_level_f1(empty, empty) == 1.0
    pred = empty.copy(); pred[0] = 1
    assert metrics.segment_level_f1(pred, pred) == 1.0  # rows 1 and 2 do not count


def test_published_float32_rounding_is_opt_in():
    pred = np.array([[[1, 0, 1, 0, 0, 0, 0, 1, 1, 0], [0, 1, 0, 1, 1, 1, 1, 0, 0, 1]]], bool)
    gt = np.array([[[1] * 10, [0] * 10]], bool)
    f64 = metrics.batch_segment_level_f1(pred, gt)[0]
    f32 = metrics.batch_segment_level_f1(pred, gt, np.float32)[0]
    assert f64 == pytest.approx(8 / 14 / 2, abs=1e-15)
    assert f32 == np.float32(np.float32(8 / 14) / np.float32(2)) and f32 != f64


def test_summary_pools_accuracy_and_averages_f1():
    scores = metrics.VideoScores(segment_f1=np.array([1.0, 0.0, 0.5]), event_f1=np.array([0.5, 0.5, 0.0]),
                                 correct_segments=np.array([10, 0, 5]), num_segments=10)
    total = scores.summary()
    assert total["accuracy"] == pytest.approx(0.5)
    assert total["segment_f1"] == pytest.approx(0.5)
    assert total["event_f1"] == pytest.approx(1 / 3)
    assert total["average"] == pytest.approx((0.5 + 0.5 + 1 / 3) / 3)
    assert scores.summary([True, False, False])["accuracy"] == 1.0
    with pytest.raises(ValueError, match="empty"):
        scores.summary([False, False, False])


@pytest.mark.parametrize("pred, gt, message", [
    (np.zeros((2, 10)), np.zeros((3, 10)), "shapes differ"),
    (np.full((2, 10), 2), np.zeros((2, 10)), "only 0 and 1"),
    (np.zeros(10), np.zeros(10), "2 dimensions"),
])
def test_bad_inputs_raise(pred, gt, message):
    with pytest.raises(ValueError, match=message):
        metrics.segment_level_f1(pred, gt)


def test_f1_batch_is_the_published_mean_of_per_batch_means():
    rng = np.random.default_rng(0)
    seg, eve = rng.random(70), rng.random(70)
    scores = metrics.VideoScores(seg, eve, rng.integers(0, 11, 70), 10)
    batched = scores.summary(f1_batch=32)  # batches of 32, 32 and a partial 6
    assert batched["segment_f1"] == pytest.approx(np.mean([seg[:32].mean(), seg[32:64].mean(), seg[64:].mean()]),
                                                  abs=1e-15)
    assert batched["event_f1"] == pytest.approx(np.mean([eve[:32].mean(), eve[32:64].mean(), eve[64:].mean()]),
                                                abs=1e-15)
    plain = scores.summary()
    assert batched["accuracy"] == plain["accuracy"] and batched["segment_f1"] != plain["segment_f1"]
    assert scores.summary(f1_batch=70) == plain  # one batch: the per-video mean
    mask = np.arange(70) % 2 == 0  # the batches run over the masked videos, in order
    assert scores.summary(mask, f1_batch=16)["segment_f1"] == pytest.approx(
        np.mean([seg[mask][:16].mean(), seg[mask][16:32].mean(), seg[mask][32:].mean()]), abs=1e-15)


def test_float32_sums_row_by_row_as_published_where_float64_differs():
    rng = np.random.default_rng(5)
    pred, gt = rng.random((40, 67, 10)) < 0.3, rng.random((40, 67, 10)) < 0.3
    labels = np.zeros((40, 10), int)
    expected = loop_scores(pred, gt, labels, labels).segment_f1.tolist()  # float32 row sums, written out
    float32 = metrics.batch_segment_level_f1(pred, gt, np.float32)
    assert float32.tolist() == expected
    assert (float32 != metrics.batch_segment_level_f1(pred, gt)).any()  # the case the rounding is about
    assert metrics.segment_level_f1(pred[0], gt[0], np.float32) == expected[0]
    scores = metrics.score_videos(pred, gt, labels, labels)
    assert scores.segment_f1.tolist() == expected and scores.segment_f1.dtype == np.float64


@pytest.mark.parametrize("segments", [24, 25, 31, 53])
def test_row_codes_stay_exact_up_to_53_segments(segments):
    rng = np.random.default_rng(segments)
    pred, gt = rng.random((6, 4, segments)) < 0.5, rng.random((6, 4, segments)) < 0.5
    pred[0, 0], gt[0, 0] = True, True  # every bit set: the largest code
    labels = np.zeros((6, segments), int)
    expected = loop_scores(pred, gt, labels, labels)
    assert metrics.batch_segment_level_f1(pred, gt, np.float32).tolist() == expected.segment_f1.tolist()
    np.testing.assert_allclose(metrics.batch_event_level_f1(pred, gt), expected.event_f1, rtol=0, atol=1e-12)


def test_more_than_53_segments_are_refused():
    with pytest.raises(ValueError, match="at most 53 segments per video are supported, got 54"):
        metrics.batch_segment_level_f1(np.zeros((1, 2, 54), bool), np.zeros((1, 2, 54), bool))


@pytest.mark.parametrize("pred, gt, message", [
    (np.zeros((2, 3)), np.zeros((1, 2, 3)), "pred must have 3 dimensions"),
    (np.zeros((1, 2, 3)), np.zeros((2, 3)), "gt must have 3 dimensions"),
    (np.full((1, 2, 3), 2), np.zeros((1, 2, 3)), "pred must hold only 0 and 1"),
    (np.zeros((1, 2, 3)), np.full((1, 2, 3), 0.5), "gt must hold only 0 and 1"),
    (np.zeros((1, 2, 3)), np.zeros((1, 2, 4)), r"pred and gt shapes differ: \(1, 2, 3\) vs \(1, 2, 4\)"),
])
def test_wrong_matrices_name_the_argument(pred, gt, message):
    with pytest.raises(ValueError, match=message):
        metrics.batch_segment_level_f1(pred, gt)


def test_labels_become_one_hot_rows_and_out_of_range_labels_are_refused():
    matrix = metrics.labels_to_matrix([[0, 2, 2], [1, 1, 0]], 3)
    assert matrix.tolist() == [[[True, False, False], [False, False, False], [False, True, True]],
                               [[False, False, True], [True, True, False], [False, False, False]]]
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\), got 0..3"):
        metrics.labels_to_matrix([[0, 3]], 3)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\), got -1..1"):
        metrics.labels_to_matrix([[-1, 1]], 3)
    with pytest.raises(ValueError, match=r"labels must be \[N, T\], got shape \(3,\)"):
        metrics.labels_to_matrix([0, 1, 2], 3)


def test_summaries_take_a_mask_of_zeros_and_ones_and_refuse_an_empty_one():
    rng = np.random.default_rng(2)
    pred, gt, lp, lg = _random_matrices(rng, 6)
    scores = metrics.score_videos(pred, gt, lp, lg)
    assert scores.summary([1, 0, 1, 1, 0, 0]) == scores.summary(np.array([1, 0, 1, 1, 0, 0], bool))
    assert scores.summary([1, 0, 1, 1, 0, 0]) != scores.summary()
    with pytest.raises(ValueError, match="cannot summarise an empty set of videos"):
        scores.summary([0] * 6)
    with pytest.raises(ValueError, match=r"label shapes must be equal \[N, T\]: \(6, 10\) vs \(6, 9\)"):
        metrics.score_videos(pred, gt, lp, lg[:, :9])
