"""CueRator's rule against the numbers its published code computed
(../shared/golden/cuerator_reference.npz): box mapping, thresholds, decisions, and its per-video
metrics equal to ours."""

import numpy as np
import pytest

import metrics
from models import cuerator


@pytest.fixture(scope="module")
def golden(shared):
    with np.load(shared / "golden" / "cuerator_reference.npz") as data:
        return {key: data[key] for key in data.files}


def test_the_box_and_its_mapping(golden):
    np.testing.assert_array_equal(cuerator.PARAM_RANGES, golden["param_ranges"])
    np.testing.assert_allclose(cuerator.map_params(golden["map/raw"]), golden["map/params"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(cuerator.map_params(golden["map/raw_float64"]), golden["map/params_float64"],
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize("classes", ["c46", "c67"])
@pytest.mark.parametrize("which", ["", "_global"])
def test_thresholds_and_decisions_equal_the_published_rule(golden, classes, which):
    case = {key.split("/", 1)[1]: value for key, value in golden.items() if key.startswith(f"rule_{classes}/")}
    params = case["params_global"] if which else case["params"]
    audio, visual = cuerator.thresholds(case["a_sim"], case["v_sim"], params)
    np.testing.assert_allclose(audio, case[f"a_thr{which}"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(visual, case[f"v_thr{which}"], rtol=0, atol=1e-6)
    labels = cuerator.decide(case["a_sim"], case["v_sim"], params)
    np.testing.assert_array_equal(labels, case[f"pred{which}"])
    assert int(case["bg_id"]) == case["a_sim"].shape[-1]


def _their_truth(category_ids, avc_labels, background):
    return np.where(avc_labels > 0, category_ids[:, None], background).astype(np.int64)


@pytest.mark.parametrize("cases", ["metric_cases", "rule_c46", "rule_c67"])
def test_their_per_video_metrics_are_ours(golden, cases):
    case = {key.split("/", 1)[1]: value for key, value in golden.items() if key.startswith(f"{cases}/")}
    background = int(case["bg_id"])
    predicted = case["pred"]
    truth = _their_truth(case["category_ids"], case["avc_labels"], background)
    k = background + 1
    scores = metrics.score_videos(metrics.labels_to_matrix(predicted, k), metrics.labels_to_matrix(truth, k),
                                  predicted, truth)
    np.testing.assert_allclose((predicted == truth).mean(axis=1), case["metrics"][:, 0], atol=1e-12)
    np.testing.assert_allclose(scores.segment_f1, case["metrics"][:, 1], atol=1e-6)
    np.testing.assert_allclose(scores.event_f1, case["metrics"][:, 2], atol=1e-6)


def test_the_global_oracle_picks_what_the_published_oracle_picks(golden):
    case = {key.split("/", 1)[1]: value for key, value in golden.items() if key.startswith("oracle/")}
    count = int(case["num_candidates"])
    grid = cuerator.sobol_candidates(count, int(case["sobol_seed"]))
    np.testing.assert_array_equal(grid, case["grid"])
    truth = _their_truth(case["category_ids"], case["avc_labels"], int(case["bg_id"]))
    accuracies = cuerator.candidate_accuracies(case["a_sim"], case["v_sim"], truth, grid, block=5000)  # many blocks
    np.testing.assert_allclose(accuracies, case["candidate_mean_frame_acc"], rtol=0, atol=1e-12)
    params, accuracy = cuerator.global_oracle(case["a_sim"], case["v_sim"], truth, count)
    np.testing.assert_array_equal(params, case["best_params"])
    assert accuracy == case["best_frame_acc"]
    np.testing.assert_array_equal(cuerator.decide(case["a_sim"], case["v_sim"], params), case["best_preds"])
