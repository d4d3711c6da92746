"""CueRator's decoding rule (cvsp-lab/cuerator, MIT; the formula in ../shared/DESIGN.md), vectorised
over videos in torch float32 (as published; numpy arrays in and out of the public functions), its
policy, REINFORCE loss and global oracle, and its files: rule files and policy checkpoints.

Per video, from the audio-text and visual-text cosine similarities ``A``, ``V`` (``[T, C]``, the C
candidate classes without ``other``) and 10 parameters, every segment and class gets an audio and
a visual threshold built from margins to the best competing class (``rival``), their time-averaged
versions and a burstiness term; a class passes a modality when its similarity is strictly above
that modality's threshold, each modality votes for its most similar passing class (the lowest
index on ties), and a segment gets the class when both votes exist and agree, else background
(index C). A policy network (:class:`CueRatorPolicy`, trained by :func:`reinforce_loss`) gives
each video its own parameters; the global oracle gives one vector for a split.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from common.errors import UserError

PARAM_NAMES = ("a_bias", "a_blended_contender_penalty", "a_visual_cross_check_penalty", "a_sustained_support_penalty",
               "a_burstiness_penalty", "v_bias", "v_blended_contender_penalty", "v_sustained_support_penalty",
               "v_burstiness_penalty", "v_audio_cross_check_penalty")  # CueRator's names
# The box each parameter lives in.
PARAM_RANGES = np.array([(-0.1, 0.5), (0.0, 2.0), (0.0, 2.0), (0.0, 1.8), (0.0, 1.8),
                         (0.0, 0.8), (0.0, 2.1), (0.0, 2.0), (0.0, 2.0), (0.0, 1.8)])
NUM_PARAMS = len(PARAM_RANGES)


def map_params(raw) -> np.ndarray:
    """Raw values (``[..., 10]``) into the box: ``low + sigmoid(raw) * (high - low)``, in the raw
    values' precision."""
    raw = np.asarray(raw)
    dtype = raw.dtype if raw.dtype in (np.float32, np.float64) else np.float32
    low, high = PARAM_RANGES[:, 0].astype(dtype), PARAM_RANGES[:, 1].astype(dtype)
    with np.errstate(over="ignore"):  # exp(-raw) of a very negative raw is inf: sigmoid 0, as it should
        sigmoid = (1 / (1 + np.exp(-raw.astype(dtype)))).astype(dtype)
    return (low + sigmoid * (high - low)).astype(dtype)


def _tensor(values, device=None) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values, dtype=np.float32) if not torch.is_tensor(values) else values,
                           dtype=torch.float32, device=device)


def rival(scores: torch.Tensor) -> torch.Tensor:
    """Per class, the best other class's score minus its own (the top class: second best minus
    best), over the last axis; the top class is the first maximum. The top class's value is
    ``(top1 + (top2 - top1)) - top1`` in float32, as the published expression rounds it."""
    top1, first = scores.max(dim=-1, keepdim=True)
    winner = torch.zeros(scores.shape, dtype=torch.bool, device=scores.device).scatter_(-1, first, True)
    top2 = scores.masked_fill(winner, -torch.inf).amax(dim=-1, keepdim=True)
    return (top1 - scores).scatter_(-1, first, (top1 + (top2 - top1)) - top1)


def cues(sim_audio, sim_visual) -> tuple[torch.Tensor, ...]:
    """The rule's parameter-free terms ``[..., T, C]`` (``[..., 1, C]`` for the time-averaged
    ones): audio contender, cross-check, sustained support and burstiness, then the visual ones."""
    a, v = _tensor(sim_audio), _tensor(sim_visual, device=_tensor(sim_audio).device)
    joint = torch.minimum(a, v)
    a_support = 0.5 * (a + joint)
    v_support = 0.5 * (v + joint)
    a_mean, v_mean = a_support.mean(dim=-2, keepdim=True), v_support.mean(dim=-2, keepdim=True)
    return (rival(a_support), rival(v), rival(a_mean), a - a_mean,
            rival(v_support), rival(v_mean), v - v_mean, rival(a))


def combine(terms, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Thresholds from the terms and parameters ``p`` (``[..., 10, 1, 1]``, broadcast against them)."""
    a_contend, a_cross, a_sustain, a_burst, v_contend, v_sustain, v_burst, v_cross = terms
    audio = p[..., 0, :, :] + p[..., 1, :, :] * a_contend + p[..., 2, :, :] * a_cross \
        + p[..., 3, :, :] * a_sustain + p[..., 4, :, :] * a_burst
    visual = p[..., 5, :, :] + p[..., 6, :, :] * v_contend + p[..., 7, :, :] * v_sustain \
        + p[..., 8, :, :] * v_burst + p[..., 9, :, :] * v_cross
    return audio, visual


def vote(sim_audio, sim_visual, audio_thresholds, visual_thresholds) -> torch.Tensor:
    """Per segment, the class both modalities vote for, else background (index C)."""
    a, v = _tensor(sim_audio), _tensor(sim_visual)
    a_pass, v_pass = a > _tensor(audio_thresholds), v > _tensor(visual_thresholds)
    a_vote = torch.where(a_pass, a, -torch.inf).argmax(dim=-1)
    v_vote = torch.where(v_pass, v, -torch.inf).argmax(dim=-1)
    agree = (a_vote == v_vote) & a_pass.any(dim=-1) & v_pass.any(dim=-1)
    return torch.where(agree, a_vote, a.shape[-1])


def _params(params, videos: int) -> torch.Tensor:
    params = _tensor(params)
    if params.shape == (NUM_PARAMS,):
        params = params.expand(videos, NUM_PARAMS)
    if params.shape != (videos, NUM_PARAMS):
        raise ValueError(f"params must be [{NUM_PARAMS}] or [{videos}, {NUM_PARAMS}], got {tuple(params.shape)}")
    return params[:, :, None, None]  # [N, 10, 1, 1]


def thresholds(sim_audio, sim_visual, params) -> tuple[np.ndarray, np.ndarray]:
    """Audio and visual thresholds ``[N, T, C]`` for similarities ``[N, T, C]`` and parameters
    ``[N, 10]`` (one vector per video) or ``[10]`` (one for all)."""
    with torch.inference_mode():
        audio, visual = combine(cues(sim_audio, sim_visual), _params(params, len(sim_audio)))
    return audio.numpy(), visual.numpy()


DECIDE_BLOCK = 1024  # videos at a time: the temporaries stay in the CPU's cache (about 20% faster than all at once)


def decide(sim_audio, sim_visual, params) -> np.ndarray:
    """``[N, T]`` labels by the rule, background = C (computed in torch: float32, as published)."""
    with torch.inference_mode():
        a, v = _tensor(sim_audio), _tensor(sim_visual)
        p = _params(params, len(a))
        blocks = [slice(start, start + DECIDE_BLOCK) for start in range(0, max(len(a), 1), DECIDE_BLOCK)]
        return torch.cat([vote(a[b], v[b], *combine(cues(a[b], v[b]), p[b])) for b in blocks]).numpy()


def sobol_candidates(count: int, seed: int = 42) -> np.ndarray:
    """The first ``count`` points of a scrambled Sobol sequence (seed 42) of 2^ceil(log2 count)
    points, scaled into the box in float64, then float32: the oracle's candidates."""
    from scipy.stats import qmc

    points = qmc.Sobol(d=NUM_PARAMS, scramble=True, seed=seed).random_base2(int(np.ceil(np.log2(count))))[:count]
    return (points * (PARAM_RANGES[:, 1] - PARAM_RANGES[:, 0]) + PARAM_RANGES[:, 0]).astype(np.float32)


def candidate_accuracies(sim_audio, sim_visual, truth, candidates, block: int = 2 ** 22, device="cpu",
                         progress=None) -> np.ndarray:
    """Mean per-video frame accuracy ``[B]`` of each candidate parameter vector ``[B, 10]`` (each
    video's accuracy in float32, summed in float64), on ``device`` in blocks of about ``block``
    similarities, one candidate at a time. ``progress(count)`` is told of finished candidates."""
    a = np.asarray(sim_audio, dtype=np.float32)
    v = np.asarray(sim_visual, dtype=np.float32)
    n, t, c = a.shape
    videos = max(1, min(n, block // (t * c)))
    total = torch.zeros(len(candidates), dtype=torch.float64, device=device)
    params = _tensor(candidates, device)[:, :, None, None]
    with torch.inference_mode():
        for start in range(0, n, videos):
            part = slice(start, start + videos)
            sims = [_tensor(x[part], device) for x in (a, v)]
            terms = cues(*sims)
            wanted = torch.as_tensor(np.asarray(truth[part], dtype=np.int64), device=device)
            for index, p in enumerate(params):
                labels = vote(*sims, *combine(terms, p))
                total[index] += (labels == wanted).float().mean(dim=-1).double().sum()
            if progress is not None:
                progress(len(candidates) * (min(n, start + videos) - start) / n)
    return (total / n).cpu().numpy()


def global_oracle(sim_audio, sim_visual, gt_labels, num_candidates: int, seed: int = 42, device="cpu",
                  progress=None) -> tuple[np.ndarray, float]:
    """One parameter vector for a whole split: the candidate with the best mean per-video frame
    accuracy against ``gt_labels`` ``[N, T]`` (background = C), the first one on ties."""
    candidates = sobol_candidates(num_candidates, seed)
    accuracies = candidate_accuracies(sim_audio, sim_visual, np.asarray(gt_labels), candidates, device=device,
                                      progress=progress)
    best = int(np.argmax(accuracies))
    return candidates[best], float(accuracies[best])


FIXED_STD = 0.3  # the policy's action noise


class _Block(nn.Module):
    """Post-LayerNorm attention block (multi-head attention with the padding as key mask, then
    Linear-GELU-Dropout-Linear). Attending to itself it is a self-attention block; a cross block
    also zeroes its padded rows."""

    def __init__(self, dim: int, num_heads: int, ffn_dim: int, dropout: float, zero_padded: bool):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)
        self.norm1 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(ffn_dim, dim))
        self.norm2 = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        self.zero_padded = zero_padded

    def forward(self, x: torch.Tensor, context: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        attended, _ = self.attn(x, context, context, key_padding_mask=padding, need_weights=False)
        x = self.norm1(x + self.dropout(attended))
        x = self.norm2(x + self.dropout(self.ffn(x)))
        return x.masked_fill(padding[..., None], 0.0) if self.zero_padded else x


class CueRatorPolicy(nn.Module):
    """Reads a video's visual and audio segment embeddings and gives its own 10 raw rule
    parameters (``map_params`` puts them in the box). Its ``state_dict`` keys are CueRator's own,
    so its released policy loads as it is. The first ``SEGMENTS`` segments are read; a segment
    whose visual and audio rows are all zero is padding."""

    SEGMENTS = 10

    def __init__(self, video_dim: int, audio_dim: int, model_dim: int = 256, num_heads: int = 4,
                 ffn_dim: int = 512, dropout: float = 0.1):
        super().__init__()
        self.video_in_proj = nn.Linear(video_dim, model_dim)
        self.audio_in_proj = nn.Linear(audio_dim, model_dim)
        self.video_self, self.audio_self = (_Block(model_dim, num_heads, ffn_dim, dropout, False) for _ in range(2))
        self.video_cross, self.audio_cross = (_Block(model_dim, num_heads, ffn_dim, dropout, True) for _ in range(2))
        self.fuse = nn.Sequential(nn.Linear(2 * model_dim, model_dim), nn.GELU(), nn.Dropout(dropout))
        self.mu_head = nn.Linear(model_dim, NUM_PARAMS)
        self.register_buffer("fixed_log_std", torch.full((NUM_PARAMS,), math.log(FIXED_STD)))

    def forward(self, visual: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """``[B, T, D_v]``, ``[B, T, D_a]`` -> ``[B, 10]`` raw parameters (the mean action)."""
        visual, audio = visual[:, :self.SEGMENTS], audio[:, :self.SEGMENTS]
        padding = torch.cat([visual, audio], dim=-1).abs().sum(dim=-1) <= 1e-12
        v, a = self.video_in_proj(visual), self.audio_in_proj(audio)
        v, a = self.video_self(v, v, padding), self.audio_self(a, a, padding)
        v = self.video_cross(v, a, padding)
        a = self.audio_cross(a, v, padding)  # reads the video stream already updated
        valid = (~padding).float()[..., None]
        count = valid.sum(dim=1).clamp_min(1.0)
        pooled = torch.cat([(v * valid).sum(dim=1) / count, (a * valid).sum(dim=1) / count], dim=-1)
        return self.mu_head(self.fuse(pooled))


def sampled_actions(mu: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """The K raw actions ``[B, K, 10]`` per video around the mean ``mu`` ``[B, 10]``: ``mu + 0.3 eps``, detached."""
    std = torch.tensor(math.log(FIXED_STD), dtype=torch.float32, device=mu.device).exp()
    return (mu[:, None, :].expand_as(eps) + std * eps).detach()


def reinforce_loss(mu: torch.Tensor, eps: torch.Tensor, rewards) -> torch.Tensor:
    """REINFORCE with a leave-one-out baseline: K actions ``mu + 0.3 eps`` per video (``eps``
    ``[B, K, 10]``, the actions detached), their Normal log-probabilities summed over the 10
    values, each advantage its reward minus the mean of the video's other K - 1 rewards (0 when
    K = 1); the loss is minus the mean advantage x log-probability."""
    std = torch.tensor(math.log(FIXED_STD), dtype=torch.float32, device=mu.device).exp()
    mean = mu[:, None, :].expand_as(eps)
    actions = sampled_actions(mu, eps)
    log_prob = torch.distributions.Normal(mean, std).log_prob(actions).sum(dim=-1)  # [B, K]
    rewards = torch.as_tensor(rewards, dtype=torch.float32, device=mu.device)
    k = rewards.shape[1]
    baseline = (rewards.sum(dim=1, keepdim=True) - rewards) / (k - 1) if k > 1 else torch.zeros_like(rewards)
    return -((rewards - baseline) * log_prob).mean()


# --- rule files and policy checkpoints ---------------------------------------------------------

RULE_FORMAT = "cuerator-rule/1"  # the JSON file run_cuerator.sh --fit-rule writes


def checked_params(values, where: str) -> np.ndarray:
    """Ten parameters inside the box, as float32; anything else is one message naming ``where``."""
    try:
        params = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise UserError(f"{where}: the parameters must be {NUM_PARAMS} numbers, got {values!r}") from None
    if params.shape != (NUM_PARAMS,):
        raise UserError(f"{where}: CueRator's rule takes {NUM_PARAMS} parameters ({', '.join(PARAM_NAMES)}), "
                        f"got {params.size}")
    outside = [f"{name} = {value:g} not in [{low:g}, {high:g}]" for name, value, (low, high)
               in zip(PARAM_NAMES, params, PARAM_RANGES) if not low <= value <= high]
    if outside:
        raise UserError(f"{where}: parameters outside the rule's box: {'; '.join(outside)}")
    return params.astype(np.float32)


def read_rule_file(path) -> dict:
    """A rule file (``run_cuerator.sh --fit-rule``): its ``params`` checked, with the family it was
    fitted on."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"CueRator rule file not found: {path} (run_cuerator.sh --fit-rule writes one)")
    try:
        rule = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise UserError(f"{path} is not a CueRator rule file (not JSON: {err})") from None
    if not isinstance(rule, dict) or rule.get("format") != RULE_FORMAT:
        raise UserError(f"{path} is not a CueRator rule file: it lacks \"format\": \"{RULE_FORMAT}\" "
                        "(run_cuerator.sh --fit-rule writes one)")
    rule["params"] = checked_params(rule.get("params"), f"{path} key params")
    return rule


def is_policy_checkpoint(state) -> bool:
    """A policy checkpoint in CueRator's layout (theirs, or what run_cuerator.sh writes)."""
    return (isinstance(state, dict) and isinstance(state.get("policy_state_dict"), dict)
            and isinstance(state.get("config"), dict))


def policy_from_checkpoint(state: dict, path, device) -> CueRatorPolicy:
    """The policy of a checkpoint in CueRator's layout, in eval mode; its architecture comes from
    the checkpoint's config (their key names)."""
    config = state["config"]
    try:
        policy = CueRatorPolicy(int(config["video_dim"]), int(config["audio_dim"]),
                                int(config.get("policy_model_dim", 256)),
                                int(config.get("policy_transformer_nhead", 4)),
                                int(config.get("policy_transformer_ff_dim", 512)),
                                float(config.get("policy_dropout", 0.1)))
        policy.load_state_dict(state["policy_state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        detail = f"its config lacks {err}" if isinstance(err, KeyError) else (lines[1] if len(lines) > 1 else lines[0])
        raise UserError(f"{path}: its weights do not fit the policy its config describes ({detail})") from None
    return policy.to(device).eval()
