"""Properties of the metrics and decoders for any input Hypothesis draws: equal to the definitions
written out one row at a time (tools/bench_metrics.loop_scores; the decoders' written here),
independent of video order and batching, and equivariant where the classes are only renamed."""

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import metrics
from models.decoders import decode_fine_tuning, decode_training_free, fine_tuning_scores
from tools.bench_metrics import loop_scores

SETTINGS = settings(max_examples=60, deadline=None)


def matrices(max_videos=6, max_classes=5, max_segments=12):
    """A pair of binary ``[N, K, T]`` matrices of one shape."""
    return st.tuples(st.integers(1, max_videos), st.integers(1, max_classes), st.integers(1, max_segments)).flatmap(
        lambda shape: st.tuples(arrays(bool, shape), arrays(bool, shape)))


@SETTINGS
@given(matrices())
def test_f1s_equal_the_definitions_written_out_row_by_row(pair):
    pred, gt = pair
    labels = np.zeros(pred.shape[::2], np.int64)
    expected = loop_scores(pred, gt, labels, labels)  # the published arithmetic: float32 row sums
    assert metrics.batch_segment_level_f1(pred, gt, np.float32).tolist() == expected.segment_f1.tolist()
    np.testing.assert_allclose(metrics.batch_segment_level_f1(pred, gt), expected.segment_f1, rtol=0, atol=1e-6)
    np.testing.assert_allclose(metrics.batch_event_level_f1(pred, gt), expected.event_f1, rtol=0, atol=1e-12)


@SETTINGS
@given(matrices(max_videos=8), st.randoms(use_true_random=False))
def test_per_video_scores_follow_their_video_whatever_the_order(pair, random):
    pred, gt = pair
    order = list(range(len(pred)))
    random.shuffle(order)
    for f1 in (metrics.batch_segment_level_f1, metrics.batch_event_level_f1):
        np.testing.assert_array_equal(f1(pred[order], gt[order]), f1(pred, gt)[order])
    one_by_one = [metrics.segment_level_f1(p, g) for p, g in zip(pred, gt)]
    np.testing.assert_array_equal(metrics.batch_segment_level_f1(pred, gt), one_by_one)


@SETTINGS
@given(st.integers(1, 8), st.integers(2, 6), st.integers(1, 12), st.data())
def test_summaries_are_batch_independent_and_perfect_labels_score_one(n, k, t, data):
    labels = data.draw(arrays(np.int64, (n, t), elements=st.integers(0, k - 1)))
    truth = data.draw(arrays(np.int64, (n, t), elements=st.integers(0, k - 1)))
    scores = metrics.score_videos(metrics.labels_to_matrix(labels, k), metrics.labels_to_matrix(truth, k), labels,
                                  truth)
    whole = scores.summary()
    assert whole["accuracy"] == (labels == truth).mean()
    assert whole["segment_f1"] == np.mean(scores.segment_f1) and whole["event_f1"] == np.mean(scores.event_f1)
    perfect = metrics.score_videos(metrics.labels_to_matrix(truth, k), metrics.labels_to_matrix(truth, k), truth,
                                   truth).summary()
    assert perfect == {"accuracy": 1.0, "segment_f1": 1.0, "event_f1": 1.0, "average": 1.0}
    assert scores.summary(f1_batch=n)["segment_f1"] == whole["segment_f1"]  # one batch holding every video


def similarities(max_videos=5, max_classes=6, max_segments=10):
    """Audio and visual similarities ``[N, T, K+1]`` (``other`` last) with ties likely (coarse values)."""
    shape = st.tuples(st.integers(1, max_videos), st.integers(1, max_segments), st.integers(2, max_classes + 1))
    values = st.integers(-4, 4).map(lambda v: np.float32(v / 4))
    return shape.flatmap(lambda s: st.tuples(arrays(np.float32, s, elements=values),
                                             arrays(np.float32, s, elements=values)))


def reference_training_free(sim_a, sim_v, use_other: bool):
    """The published rule, one segment at a time: the first maximum of each modality; the video's
    class from the first agreeing segment; event segments take it, the others background."""
    n, t, k = sim_a.shape
    columns = k if use_other else k - 1
    labels = np.full((n, t), k - 1)
    for i in range(n):
        agree = [int(np.argmax(sim_a[i, s, :columns])) == int(np.argmax(sim_v[i, s, :columns])) for s in range(t)]
        if any(agree):
            chosen = int(np.argmax(sim_a[i, agree.index(True), :columns]))
            labels[i] = [chosen if a else k - 1 for a in agree]
    return labels


@SETTINGS
@given(similarities(), st.booleans())
def test_the_training_free_rule_equals_its_definition(pair, use_other):
    sim_a, sim_v = pair
    decoded = decode_training_free(sim_a, sim_v, use_other)
    np.testing.assert_array_equal(decoded.segment_labels, reference_training_free(sim_a, sim_v, use_other))


def distinct_similarities(max_videos=4, max_classes=6, max_segments=8):
    """Similarities whose values are all different (no ties within a segment)."""
    shape = st.tuples(st.integers(1, max_videos), st.integers(1, max_segments), st.integers(2, max_classes + 1))
    values = st.integers(-999, 999).map(lambda v: np.float32(v / 1000))
    return shape.flatmap(lambda s: st.tuples(arrays(np.float32, s, elements=values, unique=True),
                                             arrays(np.float32, s, elements=values, unique=True)))


@SETTINGS
@given(distinct_similarities(), st.sampled_from(["geometric", "arithmetic"]), st.randoms(use_true_random=False))
def test_renaming_the_classes_renames_the_fine_tuning_labels(pair, fusion, random):
    sim_a, sim_v = pair
    k = sim_a.shape[2]
    fused = fine_tuning_scores(sim_a, sim_v, fusion)
    ranked = np.sort(np.nan_to_num(fused, nan=-1.0), axis=2)
    assume((ranked[..., -1] > ranked[..., -2]).all())  # a tie is decided by class order, by design
    order = list(range(k - 1))
    random.shuffle(order)
    order.append(k - 1)  # `other` stays last
    base = decode_fine_tuning(sim_a, sim_v, fusion, "background").segment_labels
    renamed = decode_fine_tuning(sim_a[..., order], sim_v[..., order], fusion, "background").segment_labels
    np.testing.assert_array_equal(np.asarray(order)[renamed], base)
