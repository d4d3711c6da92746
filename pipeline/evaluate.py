"""Score decoded predictions on one split, per subset, the way the paper's table reports them.

Candidate classes are always all classes plus ``other``, for the seen subset too. Videos the
feature cache left out (unreadable media, with ``extract.skip_bad_media``) are not scored and
are counted in every result.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

import metrics
from common.errors import UserError
from common.schema import Config
from data.annotations import SUBSETS, AnnotationIndex, VideoSet
from data.feature_cache import FeatureCache
from models import strategies
from models.decoders import Decoded
from models.families import family
from models.segment_encoder import resolve_device
from models.similarity import segment_similarities
from models.strategies import Decoder
from models.temporal import check_fits
from pipeline.extraction import ensure_features


@dataclass
class Evaluation:
    split: str
    strategy: str
    videos: VideoSet  # the videos scored, in order
    decoded: Decoded
    scores: metrics.VideoScores
    summaries: dict  # subset -> metric dict, or None for an empty subset
    counts: dict  # subset -> videos scored
    excluded: dict  # subset -> videos left out
    excluded_reason: str  # why they were left out


def _subset_masks(videos: VideoSet) -> dict[str, np.ndarray]:
    return {"seen": videos.seen, "unseen": ~videos.seen, "total": np.ones(len(videos), bool)}


CACHE_EXCLUSION = "unreadable media; see the cache's {split}/excluded.csv"


def subset_counts(videos: VideoSet) -> dict[str, int]:
    """``{"seen": n, "unseen": n, "total": n}``."""
    return {s: int(m.sum()) for s, m in _subset_masks(videos).items()}


def score(videos: VideoSet, decoded: Decoded, strategy: str, excluded: VideoSet,
          excluded_reason: str = CACHE_EXCLUSION, f1_batch: int | None = None) -> Evaluation:
    """Per-video scores and the seen / unseen / total summaries of decoded predictions
    (``f1_batch``: F1 aggregated per batch of videos, as the published script; ``eval.f1_batch``)."""
    gt_labels = videos.segment_classes
    scores = metrics.score_videos(decoded.pred_matrix, metrics.labels_to_matrix(gt_labels, len(videos.vocabulary)),
                                  decoded.segment_labels, gt_labels)
    masks = _subset_masks(videos)
    return Evaluation(
        split=videos.split, strategy=strategy, videos=videos, decoded=decoded, scores=scores,
        summaries={s: scores.summary(masks[s], f1_batch) if masks[s].any() else None for s in SUBSETS},
        counts={s: int(masks[s].sum()) for s in SUBSETS},
        excluded=subset_counts(excluded),
        excluded_reason=excluded_reason.format(split=videos.split),
    )


def cached_videos(cache: FeatureCache, videos: VideoSet):
    """The split's cached features, the cache rows of the videos kept, and both video sets."""
    features = cache.split(videos.split)
    rows, excluded = features.rows(videos.vid_names)
    return features, rows[~excluded], videos.select(~excluded), videos.select(excluded)


def identical_rows(table: np.ndarray) -> np.ndarray:
    """Pairs ``(i, j)``, i < j, of rows equal up to float32 rounding (squared distance over the
    squared norm below 1e-10), from one ``[K, K]`` product."""
    rows = table.astype(np.float64)
    norms = (rows ** 2).sum(axis=1)
    distance = norms[:, None] + norms[None] - 2 * rows @ rows.T
    return np.argwhere(np.triu(distance <= 1e-10 * np.maximum(norms[:, None], 1e-30), k=1))


def class_texts(cache: FeatureCache, config: Config, names, device) -> tuple[torch.Tensor, torch.Tensor]:
    """The class names' cached text embeddings as scored against the audio and the frames. Two
    names with one embedding (a text encoder keeps a fixed number of tokens, so names that differ
    only after it are one) are refused: one of them could never be chosen."""
    texts = []
    for modality in ("audio", "vision"):
        table = cache.text(names, config.encoder.template(modality), modality)
        same = identical_rows(table)
        if len(same):
            first, second = (names[k] for k in same[0])
            raise UserError(f"class names {first!r} and {second!r} get the same {modality} text embedding: the text "
                            "encoder keeps only the start of a long text, and they differ only after it. Make them "
                            "differ in their first words")
        texts.append(torch.from_numpy(table).to(device))
    return tuple(texts)


def decoder_similarities(decoder: Decoder, features, rows, texts, block_videos: int) -> tuple:
    """The similarities ``decoder`` decodes and its per-video options, in one pass over the
    cached embeddings (a policy reads each block as the similarities are computed from it)."""
    options = []

    def transform(audio, vision):
        if decoder.per_video is not None:
            options.append(decoder.per_video(audio, vision))
        return decoder.transform(audio, vision) if decoder.transform is not None else (audio, vision)

    sim_a, sim_v = segment_similarities(features, rows, *texts, block_videos, transform=transform)
    per_video = {key: np.concatenate([part[key] for part in options]) for key in options[0]} if options else {}
    return sim_a, sim_v, per_video


def configured_decoder(config: Config, device) -> Decoder:
    """``eval.strategy``, with ``eval.checkpoint`` for a checkpoint strategy, checked (the
    checkpoint against the configured encoder too) before any work."""
    chosen = strategies.strategy(config.eval.strategy, "eval.strategy")
    checkpoint = config.eval.checkpoint
    if chosen.needs != "checkpoint":
        if checkpoint is not None:
            raise UserError(f"eval.checkpoint is {checkpoint}, but eval.strategy {chosen.name} decodes the frozen "
                            f"embeddings; a checkpoint is decoded by {', '.join(strategies.names('checkpoint'))}")
        return chosen.decoder(config=config)
    if checkpoint is None:
        raise UserError(f"eval.strategy {chosen.name} decodes with a trained model: give its checkpoint "
                        "(--checkpoint or eval.checkpoint)")
    decoder = chosen.decoder(checkpoint, device)
    check_fits(checkpoint, decoder.encoder, decoder.widths, config, family(config.encoder.family))
    return decoder


def evaluate_strategy(config: Config, index: AnnotationIndex | None = None, decoder: Decoder | None = None
                      ) -> Evaluation:
    """The configured strategy (``eval.strategy``) on the configured split, from the feature cache."""
    device = resolve_device(config.device)
    decoder = decoder or configured_decoder(config, device)
    index = index or AnnotationIndex.load(config.data.meta_csv, config.data.label_json)
    index.require_splits({config.eval.split: "eval.split"})
    cache = ensure_features(config, [config.eval.split], index)
    videos = index.videos(config.eval.split, vocabulary=index.all_vocabulary)
    features, rows, kept, excluded = cached_videos(cache, videos)
    texts = class_texts(cache, config, index.all_vocabulary.names, device)
    sim_a, sim_v, per_video = decoder_similarities(decoder, features, rows, texts, config.eval.block_videos)
    decoded = decoder.decode(sim_a, sim_v, **per_video)
    return score(kept, decoded, decoder.strategy.name, excluded, f1_batch=config.eval.f1_batch)
