"""Score decoded predictions on one split, per subset, the way the paper's table reports them.

Candidate classes are always all classes plus ``other``, for the seen subset too. Videos the
feature cache left out (unreadable media, with ``extract.skip_bad_media``) are not scored and
are counted in every result.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

import metrics
from common.errors import UserError
from common.schema import Config
from data.annotations import SUBSETS, AnnotationIndex, VideoSet, Vocabulary
from data.companions import STREAMS as COMPANION_STREAMS
from data.companions import Companions
from data.feature_cache import FeatureCache, SplitFeatures
from models import strategies
from models.decoders import Decoded
from models.families import family
from models.segment_encoder import resolve_device
from models.similarity import segment_similarities
from models.strategies import Decoder
from models.temporal import check_fits
from pipeline.extraction import ensure_features, wanted_companions


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


@dataclass
class SplitData:
    features: SplitFeatures
    rows: np.ndarray  # cache rows of the videos kept
    videos: VideoSet  # kept videos, in order
    excluded: VideoSet  # videos the cache left out
    companions: Companions | None = None  # the split's companion streams, when the model reads them
    companion_rows: np.ndarray | None = None  # their rows of the videos kept

    def gather(self, positions, draws=None, draw_rows=None, draw: int | None = None) -> dict:
        """The streams of the kept videos at ``positions`` as float32 ``[n, 10, D]`` arrays:
        audio (or audio draw ``draw``), vision and the companions the split has."""
        audio, vision = self.features.gather(self.rows[positions])
        if draw is not None:
            audio = draws.gather(draw_rows[positions], draw)
        streams = {"audio": audio, "vision": vision}
        if self.companions is not None:
            streams.update(self.companions.gather(self.companion_rows[positions]))
        return streams


def load_split(cache: FeatureCache, index: AnnotationIndex, split: str, vocabulary: Vocabulary,
               companions: dict | None = None) -> SplitData:
    """A split's cached features; ``companions`` (their wanted provenance): its companion streams too."""
    data = SplitData(*cached_videos(cache, index.videos(split, vocabulary=vocabulary)))
    if companions is not None:
        data.companions = Companions(cache, split, companions)
        data.companion_rows = data.companions.rows(data.videos.vid_names)
    return data


def fused_scores(fuse, data: SplitData, texts: dict, block_videos: int) -> np.ndarray:
    """A fusing model's scores ``[N, T, K]`` (``fuse(streams, texts)``) over a split, in blocks of videos."""
    scores, device = [], texts["audio"].device
    with torch.inference_mode():
        for start in range(0, len(data.rows), block_videos):
            streams = data.gather(np.arange(start, min(start + block_videos, len(data.rows))))
            block = fuse({name: torch.from_numpy(array).to(device) for name, array in streams.items()}, texts)
            scores.append(block.float().cpu().numpy())
    empty = np.zeros((0, data.features.audio.shape[1], texts["audio"].shape[0]), np.float32)
    return np.concatenate(scores) if scores else empty


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
    if decoder.fuse is not None:
        fused_config(config, decoder)  # a 4-stream model's companions can be made here
    return decoder


def evaluate_strategy(config: Config, index: AnnotationIndex | None = None, decoder: Decoder | None = None
                      ) -> Evaluation:
    """The configured strategy (``eval.strategy``) on the configured split, from the feature cache."""
    device = resolve_device(config.device)
    decoder = decoder or configured_decoder(config, device)
    index = index or AnnotationIndex.load(config.data.meta_csv, config.data.label_json)
    index.require_splits({config.eval.split: "eval.split"})
    if decoder.fuse is not None:
        return _evaluate_fused(config, index, decoder, device)
    cache = ensure_features(config, [config.eval.split], index)
    videos = index.videos(config.eval.split, vocabulary=index.all_vocabulary)
    features, rows, kept, excluded = cached_videos(cache, videos)
    texts = class_texts(cache, config, index.all_vocabulary.names, device)
    sim_a, sim_v, per_video = decoder_similarities(decoder, features, rows, texts, config.eval.block_videos)
    decoded = decoder.decode(sim_a, sim_v, **per_video)
    return score(kept, decoded, decoder.strategy.name, excluded, f1_batch=config.eval.f1_batch)


def fused_config(config: Config, decoder: Decoder) -> tuple[Config, dict | None]:
    """The config a fusing decoder's streams are read with (its own companion settings) and the
    companions' wanted provenance (None when it reads no companion stream)."""
    if not set(decoder.streams) & set(COMPANION_STREAMS):
        return config, None
    config = dataclasses.replace(config, complex=decoder.settings)
    return config, wanted_companions(config)


def _evaluate_fused(config: Config, index: AnnotationIndex, decoder: Decoder, device) -> Evaluation:
    """A fusing model's labels on the split, the companion streams it reads extracted when missing."""
    config, companions = fused_config(config, decoder)
    split = config.eval.split
    cache = ensure_features(config, [split], index, companions=companions is not None)
    data = load_split(cache, index, split, index.all_vocabulary, companions)
    audio, vision = class_texts(cache, config, index.all_vocabulary.names, device)
    scores = fused_scores(decoder.fuse, data, {"audio": audio, "vision": vision}, config.eval.block_videos)
    return score(data.videos, decoder.strategy.rule(scores), decoder.strategy.name, data.excluded,
                 f1_batch=config.eval.f1_batch)
