"""CueRator's rule against the numbers its published code computed
(../shared/golden/cuerator_reference.npz): box mapping, thresholds, decisions, and its per-video
metrics equal to ours."""

import numpy as np
import pytest
import torch

import metrics
from models import cuerator, strategies


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


def test_a_split_larger_than_one_block_is_decided_as_each_video_alone(golden):
    """decide() works in blocks of videos: each video's labels, with its own parameters, are those
    it gets on its own, across block boundaries."""
    case = {key.split("/", 1)[1]: value for key, value in golden.items() if key.startswith("rule_c67/")}
    repeats = -(-(cuerator.DECIDE_BLOCK + 37) // len(case["a_sim"]))
    a, v = (np.concatenate([case[k]] * repeats) for k in ("a_sim", "v_sim"))
    params = cuerator.map_params(np.random.default_rng(0).standard_normal((len(a), cuerator.NUM_PARAMS)))
    labels = cuerator.decide(a, v, params)
    alone = [cuerator.decide(a[i:i + 1], v[i:i + 1], params[i])[0] for i in range(len(a))]
    np.testing.assert_array_equal(labels, np.stack(alone))
    assert len(set(map(bytes, labels))) > 1  # the videos are decided differently: a mix-up would show


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


def _policy(golden) -> tuple:
    config = dict(zip(golden["policy/config_names"], golden["policy/config"].tolist()))
    policy = cuerator.CueRatorPolicy(config["video_dim"], config["audio_dim"], config["model_dim"],
                                     config["transformer_nhead"], config["transformer_ff_dim"],
                                     float(golden["policy/dropout"]))
    state = {key.split("/", 2)[2]: torch.from_numpy(value) for key, value in golden.items()
             if key.startswith("policy/state_dict/")}
    policy.load_state_dict(state, strict=True)  # CueRator's own keys, as they are
    return policy.eval(), config


def test_the_policy_loads_their_state_dict_and_gives_their_parameters(golden):
    policy, config = _policy(golden)
    visual, audio = (torch.from_numpy(golden[f"policy/{m}"]) for m in ("visual", "audio"))
    with torch.no_grad():
        mu = policy(visual, audio)
        torch.testing.assert_close(mu, torch.from_numpy(golden["policy/mu"]), rtol=0, atol=1e-5)
        np.testing.assert_allclose(cuerator.map_params(mu.numpy()), golden["policy/params"], rtol=0, atol=1e-5)
        np.testing.assert_allclose(policy.fixed_log_std.exp().numpy(), 0.3, rtol=1e-6)
        long = torch.from_numpy(golden["policy/long_context"])  # 12 segments: the first 10 are read
        video_dim = config["video_dim"]
        torch.testing.assert_close(policy(long[..., :video_dim], long[..., video_dim:]),
                                   torch.from_numpy(golden["policy/mu_long"]), rtol=0, atol=1e-5)
        mu_padded = policy(torch.zeros(1, 10, video_dim), torch.zeros(1, 10, config["audio_dim"]))
        np.testing.assert_allclose(mu_padded.numpy(), golden["policy/mu_all_padding"], rtol=0, atol=1e-5,
                                   equal_nan=True)
        batch = policy(torch.cat([visual[:1], torch.zeros_like(visual[:1])]),
                       torch.cat([audio[:1], torch.zeros_like(audio[:1])]))  # a video next to an all-padding one
        np.testing.assert_allclose(batch.numpy(), golden["policy/mu_all_padding_in_batch"], rtol=0, atol=1e-5)
    assert (golden["policy/padding_mask"] == (np.abs(golden["policy/context"]).sum(-1) <= 1e-12)).all()


@pytest.mark.parametrize("case", ["K", "K1", "K3"])
def test_the_reinforce_loss_and_its_gradient(golden, case):
    data = {key.split("/", 2)[2]: value for key, value in golden.items() if key.startswith(f"reinforce/{case}/")}
    mu = torch.from_numpy(data["mu"]).requires_grad_(True)
    loss = cuerator.reinforce_loss(mu, torch.from_numpy(data["eps"]), data["rewards"])
    loss.backward()
    torch.testing.assert_close(loss.detach(), torch.tensor(float(data["loss"])), rtol=0, atol=1e-5)
    torch.testing.assert_close(mu.grad, torch.from_numpy(data["grad_mu"]), rtol=0, atol=1e-5)


def test_a_class_passes_only_strictly_above_its_threshold():
    sims = np.array([[[0.5, 0.2]]], np.float32)  # one video, one segment, two classes
    at_threshold = np.array([[[0.5, 0.0]]], np.float32)  # class 0 exactly at its threshold
    assert cuerator.vote(sims, sims, at_threshold, at_threshold).tolist() == [[1]]  # class 1 is the vote
    nothing = np.array([[[0.5, 0.2]]], np.float32)
    assert cuerator.vote(sims, sims, nothing, nothing).tolist() == [[2]]  # no class passes: background


def test_their_policy_checkpoint_decodes_as_their_inference_does(golden, tmp_path):
    """Their whole inference (evaluate_policy_on_split) on 6 videos, through our strategy: a policy
    checkpoint in their layout, its per-video parameters, the rule, and our metrics."""
    _, config = _policy(golden)
    state = {key.split("/", 2)[2]: torch.from_numpy(value) for key, value in golden.items()
             if key.startswith("policy/state_dict/")}
    path = tmp_path / "policy_best.ckpt"
    torch.save({"policy_state_dict": state, "epoch": 7, "config": {
        "encoder": "imagebind", "video_dim": config["video_dim"], "audio_dim": config["audio_dim"],
        "policy_model_dim": config["model_dim"], "policy_transformer_nhead": config["transformer_nhead"],
        "policy_transformer_ff_dim": config["transformer_ff_dim"], "policy_dropout": float(golden["policy/dropout"])}},
        path)
    chosen = strategies.for_checkpoint(path)
    decoder = chosen.decoder(path)
    assert chosen.name == "cuerator_policy" and decoder.widths == {"audio": 48, "vision": 48}
    visual, audio = (torch.from_numpy(golden[f"policy/{m}"]) for m in ("visual", "audio"))
    case = {key.split("/", 1)[1]: value for key, value in golden.items() if key.startswith("e2e/")}
    with torch.no_grad():
        options = decoder.per_video(audio, visual)
    np.testing.assert_allclose(options["params"], golden["policy/params"], rtol=0, atol=1e-5)
    with_other = [np.concatenate([sim, np.zeros_like(sim[..., :1])], axis=-1) for sim in (case["a_sim"], case["v_sim"])]
    decoded = decoder.decode(*with_other, **options)
    np.testing.assert_array_equal(decoded.segment_labels, case["pred"])
    background = int(case["bg_id"])
    truth = _their_truth(case["category_ids"], case["avc_labels"], background)
    scores = metrics.score_videos(decoded.pred_matrix, metrics.labels_to_matrix(truth, background + 1),
                                  decoded.segment_labels, truth)
    ours = np.stack([scores.correct_segments / scores.num_segments, scores.segment_f1, scores.event_f1], axis=1)
    np.testing.assert_allclose(ours, case["per_video_metrics"][:, :3], rtol=0, atol=1e-6)
    for group, mask in (("all", np.ones(6, bool)), ("close", case["cls_types"] == "close"),
                        ("open", case["cls_types"] == "open")):
        summary = scores.summary(mask)
        np.testing.assert_allclose([summary[key] for key in ("accuracy", "segment_f1", "event_f1", "average")],
                                   case[f"group_metrics_{group}"][:4], rtol=0, atol=1e-6)


def test_the_oracle_keeps_the_first_of_equally_good_candidates():
    sims = np.full((3, 10, 5), -1.0, np.float32)  # below every threshold: each candidate says background
    params, accuracy = cuerator.global_oracle(sims, sims, np.full((3, 10), 5), 16)
    assert accuracy == 1.0
    np.testing.assert_array_equal(params, cuerator.sobol_candidates(16)[0])
