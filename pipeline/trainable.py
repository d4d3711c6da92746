"""What train.py trains on the cached embeddings (``train.model``): the published temporal
layers, or complex-valued fusion. Each kind says which cache streams it reads, how it is built,
the logits its loss takes, how it labels a split, and what its checkpoint holds; the trainer
(pipeline/training.py) runs either the same way: batches, selection, resume, outputs."""

from __future__ import annotations

import dataclasses

import torch

from common.schema import ComplexSettings, Config, TemporalSettings
from data.companions import STREAMS as COMPANION_STREAMS
from models import strategies
from models.complex_fusion import FUSION_LAYOUT, ComplexFusion, fusion_from_checkpoint
from models.complex_fusion import STREAMS as FUSION_STREAMS
from models.decoders import decode_fine_tuning
from models.similarity import cosine, segment_similarities
from models.strategies.complex_fusion import decode_fused
from models.temporal import LAYOUT, TemporalModel, checkpoint_settings, model_from_checkpoint, training_scores
from pipeline.evaluate import Evaluation, fused_scores, score


def texts_by_modality(texts) -> dict:
    """``(audio, vision)`` text tables as ``{"audio": ..., "vision": ...}``."""
    return {"audio": texts[0], "vision": texts[1]}


class TemporalLayers:
    """The fine-tuning baseline: temporal layers per modality, then the published fused score."""

    name = "temporal"
    streams = ("audio", "vision")

    def __init__(self, settings: TemporalSettings):
        self.settings = settings

    @classmethod
    def configured(cls, config: Config) -> "TemporalLayers":
        return cls(config.temporal)

    def build(self, widths: dict) -> torch.nn.Module:
        return TemporalModel(widths, self.settings)

    def logits(self, model, streams: dict, texts) -> torch.Tensor:
        audio, vision = model(streams["audio"], streams["vision"])
        return training_scores(cosine(audio, texts[0]), cosine(vision, texts[1]), self.settings)

    def evaluate(self, model, data, texts, config: Config) -> Evaluation:
        """The model's segment embeddings decoded against all class names: ``v1`` scoring, or a
        training-free rule on them (``train.test_strategy``, as the published evaluation can)."""
        model.eval()
        strategy = config.train.test_strategy
        sim_a, sim_v = segment_similarities(data.features, data.rows, *texts, config.eval.block_videos,
                                            transform=model)
        if strategy == "v1":
            decoded = decode_fine_tuning(sim_a, sim_v, self.settings.fusion)
        else:
            decoded = strategies.strategy(strategy, "train.test_strategy", needs="similarities").decoder().decode(
                sim_a, sim_v)
        return score(data.videos, decoded, strategy, data.excluded, f1_batch=config.eval.f1_batch)

    def payload(self, model) -> dict:
        return {"model": model.state_dict(), "temporal": dataclasses.asdict(self.settings), "layout": LAYOUT}

    @staticmethod
    def from_checkpoint(state: dict, device, path="checkpoint"):
        return model_from_checkpoint(state, device, path)

    def describe(self) -> str:
        s = self.settings
        if s.kind == "linear":
            model = f"{s.num_layers} linear layer(s)"
        else:
            model = f"{s.num_layers} temporal layer(s), {s.attention} attention, {s.num_heads} head(s)"
        return f"fine-tuning ({model}, {s.fusion} fusion)"

    def recorded(self, config: Config) -> Config:
        """``config`` with the settings this model was trained with (what an evaluation records)."""
        return dataclasses.replace(config, temporal=self.settings,
                                   train=dataclasses.replace(config.train, model=self.name))


class FusionLayers:
    """Complex-valued fusion: a temporal head per stream, complex channels of their similarities,
    the complex CNN; labels are each segment's best fused score."""

    name = "complex_fusion"

    def __init__(self, settings: ComplexSettings, temporal: TemporalSettings):
        self.settings, self.temporal = settings, temporal
        self.streams = FUSION_STREAMS[settings.streams]

    @classmethod
    def configured(cls, config: Config) -> "FusionLayers":
        return cls(config.complex, config.temporal)

    @property
    def companions(self) -> bool:
        return any(stream in COMPANION_STREAMS for stream in self.streams)

    def build(self, widths: dict) -> torch.nn.Module:
        return ComplexFusion(widths, self.settings, self.temporal)

    def logits(self, model, streams: dict, texts) -> torch.Tensor:
        return model(streams, texts_by_modality(texts))

    def evaluate(self, model, data, texts, config: Config) -> Evaluation:
        model.eval()
        scores = fused_scores(model, data, texts_by_modality(texts), config.eval.block_videos)
        return score(data.videos, decode_fused(scores), "complex_fusion", data.excluded, f1_batch=config.eval.f1_batch)

    def payload(self, model) -> dict:
        return {"model": model.state_dict(), "complex": dataclasses.asdict(self.settings),
                "temporal": dataclasses.asdict(self.temporal), "layout": FUSION_LAYOUT}

    @staticmethod
    def from_checkpoint(state: dict, device, path="checkpoint"):
        return fusion_from_checkpoint(state, device, path)

    def describe(self) -> str:
        s = self.settings
        swap = ", swapped" if s.swap else ""
        return f"complex-valued fusion ({s.streams} streams, {s.fusion} CNN{swap})"

    def recorded(self, config: Config) -> Config:
        return dataclasses.replace(config, temporal=self.temporal, complex=self.settings,
                                   train=dataclasses.replace(config.train, model=self.name))


KINDS = {"temporal": TemporalLayers, "complex_fusion": FusionLayers}


def configured_kind(config: Config):
    return KINDS[config.train.model].configured(config)


def kind_of_checkpoint(state: dict, path):
    """The kind that wrote a checkpoint of train.py."""
    if "complex" in state:
        return FusionLayers(ComplexSettings(**state["complex"]), TemporalSettings(**state["temporal"]))
    return TemporalLayers(checkpoint_settings(state, path))
