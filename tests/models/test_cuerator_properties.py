"""CueRator's rule for any similarities and parameters Hypothesis draws: blocks of videos decide
as each video alone does (with its own parameters), a class passes exactly when it is strictly
above its threshold, and the oracle's batching never changes a candidate's accuracy."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from models import cuerator

SETTINGS = settings(max_examples=40, deadline=None)
VALUES = st.integers(-20, 20).map(lambda v: np.float32(v / 20))  # coarse: ties and equalities are likely


@st.composite
def rule_inputs(draw, max_videos=9):
    n, t, c = draw(st.integers(1, max_videos)), draw(st.integers(1, 6)), draw(st.integers(1, 5))
    sims = [draw(arrays(np.float32, (n, t, c), elements=VALUES)) for _ in range(2)]
    unit = draw(arrays(np.float64, (n, cuerator.NUM_PARAMS), elements=st.floats(0, 1)))
    low, high = cuerator.PARAM_RANGES[:, 0], cuerator.PARAM_RANGES[:, 1]
    return (*sims, (low + unit * (high - low)).astype(np.float32))


def by_definition(sim_a, sim_v, a_thr, v_thr) -> np.ndarray:
    """Each modality votes for its best class strictly above its threshold (the first on ties);
    agreeing votes give the class, anything else background (C)."""
    n, t, c = sim_a.shape
    labels = np.full((n, t), c)
    for i in range(n):
        for s in range(t):
            votes = []
            for sim, thr in ((sim_a, a_thr), (sim_v, v_thr)):
                passing = [k for k in range(c) if sim[i, s, k] > thr[i, s, k]]
                votes.append(max(passing, key=lambda k: (sim[i, s, k], -k)) if passing else None)
            if votes[0] is not None and votes[0] == votes[1]:
                labels[i, s] = votes[0]
    return labels


@SETTINGS
@given(rule_inputs(), st.integers(1, 4))
def test_blocks_of_videos_decide_as_each_video_alone(inputs, block):
    sim_a, sim_v, params = inputs
    alone = np.concatenate([cuerator.decide(sim_a[i:i + 1], sim_v[i:i + 1], params[i]) for i in range(len(sim_a))])
    original = cuerator.DECIDE_BLOCK
    cuerator.DECIDE_BLOCK = block  # more videos than one block, and a part-filled last block
    try:
        together = cuerator.decide(sim_a, sim_v, params)
    finally:
        cuerator.DECIDE_BLOCK = original
    np.testing.assert_array_equal(together, alone)


@SETTINGS
@given(rule_inputs())
def test_votes_follow_the_definition_with_the_rules_own_thresholds(inputs):
    sim_a, sim_v, params = inputs
    a_thr, v_thr = cuerator.thresholds(sim_a, sim_v, params)
    np.testing.assert_array_equal(cuerator.decide(sim_a, sim_v, params), by_definition(sim_a, sim_v, a_thr, v_thr))


@SETTINGS
@given(rule_inputs(max_videos=7), st.integers(1, 3), st.data())
def test_the_oracle_scores_a_candidate_the_same_in_any_block_size(inputs, block_videos, data):
    sim_a, sim_v, params = inputs
    n, t, c = sim_a.shape
    truth = data.draw(arrays(np.int64, (n, t), elements=st.integers(0, c)))
    candidates = params[: min(3, n)]
    whole = cuerator.candidate_accuracies(sim_a, sim_v, truth, candidates)
    blocked = cuerator.candidate_accuracies(sim_a, sim_v, truth, candidates, block=block_videos * t * c)
    expected = [np.mean((cuerator.decide(sim_a, sim_v, p) == truth).mean(axis=1)) for p in candidates]
    np.testing.assert_allclose(whole, expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(blocked, whole, rtol=0, atol=1e-12)


def test_parameters_of_another_length_are_refused():
    with pytest.raises(ValueError, match=r"params must be \[10\] or \[2, 10\]"):
        cuerator.decide(np.zeros((2, 3, 4)), np.zeros((2, 3, 4)), np.zeros(9))
