"""CueRator's decoding rule (cvsp-lab/cuerator, MIT; the formula in ../shared/DESIGN.md), vectorised
over videos in numpy float32.

Per video, from the audio-text and visual-text cosine similarities ``A``, ``V`` (``[T, C]``, the C
candidate classes without ``other``) and 10 parameters, every segment and class gets an audio and
a visual threshold built from margins to the best competing class (``rival``), their time-averaged
versions and a burstiness term; a class passes a modality when its similarity is strictly above
that modality's threshold, each modality votes for its most similar passing class (the lowest
index on ties), and a segment gets the class when both votes exist and agree, else background
(index C).
"""

from __future__ import annotations

import numpy as np

# The box each parameter lives in: a_bias, a_blended_contender, a_visual_cross_check,
# a_sustained_support, a_burstiness, v_bias, v_blended_contender, v_sustained_support,
# v_burstiness, v_audio_cross_check.
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


def rival(scores: np.ndarray) -> np.ndarray:
    """Per class, the best other class's score minus its own (the top class: second best minus
    best), over the last axis."""
    order = np.argsort(-scores, axis=-1, kind="stable")[..., :2]
    top1 = np.take_along_axis(scores, order[..., :1], axis=-1)
    top2 = np.take_along_axis(scores, order[..., 1:2], axis=-1)
    winner = np.arange(scores.shape[-1]) == order[..., :1]
    return top1 + (top2 - top1) * winner.astype(scores.dtype) - scores


def _params(params, videos: int) -> np.ndarray:
    params = np.asarray(params, dtype=np.float32)
    if params.shape == (NUM_PARAMS,):
        params = np.broadcast_to(params, (videos, NUM_PARAMS))
    if params.shape != (videos, NUM_PARAMS):
        raise ValueError(f"params must be [{NUM_PARAMS}] or [{videos}, {NUM_PARAMS}], got {params.shape}")
    return params[:, :, None, None]  # [N, 10, 1, 1]


def thresholds(sim_audio, sim_visual, params) -> tuple[np.ndarray, np.ndarray]:
    """Audio and visual thresholds ``[N, T, C]`` for similarities ``[N, T, C]`` and parameters
    ``[N, 10]`` (one vector per video) or ``[10]`` (one for all)."""
    a = np.asarray(sim_audio, dtype=np.float32)
    v = np.asarray(sim_visual, dtype=np.float32)
    p = _params(params, len(a))
    joint = np.minimum(a, v)
    a_support = np.float32(0.5) * (a + joint)
    v_support = np.float32(0.5) * (v + joint)
    a_contend, a_cross = rival(a_support), rival(v)
    a_sustain = rival(a_support.mean(axis=1, keepdims=True))
    a_burst = a - a_support.mean(axis=1, keepdims=True)
    v_contend, v_cross = rival(v_support), rival(a)
    v_sustain = rival(v_support.mean(axis=1, keepdims=True))
    v_burst = v - v_support.mean(axis=1, keepdims=True)
    audio = p[:, 0] + p[:, 1] * a_contend + p[:, 2] * a_cross + p[:, 3] * a_sustain + p[:, 4] * a_burst
    visual = p[:, 5] + p[:, 6] * v_contend + p[:, 7] * v_sustain + p[:, 8] * v_burst + p[:, 9] * v_cross
    return audio, visual


def vote(sim_audio, sim_visual, audio_thresholds, visual_thresholds) -> np.ndarray:
    """Per segment, the class both modalities vote for, else background (index C)."""
    a = np.asarray(sim_audio, dtype=np.float32)
    v = np.asarray(sim_visual, dtype=np.float32)
    a_pass, v_pass = a > audio_thresholds, v > visual_thresholds
    a_vote = np.where(a_pass, a, -np.inf).argmax(axis=-1)
    v_vote = np.where(v_pass, v, -np.inf).argmax(axis=-1)
    agree = (a_vote == v_vote) & a_pass.any(axis=-1) & v_pass.any(axis=-1)
    return np.where(agree, a_vote, a.shape[-1]).astype(np.int64)


def decide(sim_audio, sim_visual, params) -> np.ndarray:
    """``[N, T]`` labels by the rule, background = C."""
    return vote(sim_audio, sim_visual, *thresholds(sim_audio, sim_visual, params))
