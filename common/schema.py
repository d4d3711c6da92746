"""The config schema: every key a YAML file may set, its type and its default."""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Annotated, Literal, Optional

from common.config import InvalidValue, Range

PositiveInt = Annotated[int, Range(1)]
NonNegativeInt = Annotated[int, Range(0)]
PositiveFloat = Annotated[float, Range(0, low_open=True)]
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")
RANDOM_CHECKPOINT = "random"  # encoder.checkpoint value for seeded random weights (demo, tests)


@dataclass(frozen=True)
class DataConfig:
    """Where the annotations and media are; relative paths are taken from the working directory."""

    meta_csv: str = "ovave_dataset_preprocessed/ovave_dataset_meta.csv"
    label_json: str = "ovave_dataset_preprocessed/released_ovavel_dataset_anno.json"
    media_root: str = "ovave_dataset_preprocessed"


@dataclass(frozen=True)
class EncoderConfig:
    family: Literal["imagebind", "clip_clap", "languagebind"] = "imagebind"  # a module of models/families/
    size: str = "huge"  # a size file of the family (imagebind: models/imagebind_sizes/)
    checkpoint: str = ".checkpoints/imagebind_huge.pth"  # or "random": seeded random weights (demo, tests)
    audio_checkpoint: Optional[str] = None  # a family's separate audio model (clip_clap: the CLAP folder;
    # languagebind: the LanguageBind_Audio_FT folder)
    precision: Literal["fp32", "tf32", "bf16", "fp16"] = "fp32"  # fp32: IEEE float32, the published precision
    text_template: str = "{}"  # how a class name becomes text; "{}" = the name as it is
    text_template_audio: Optional[str] = None  # for scoring the audio; null = text_template
    text_template_vision: Optional[str] = None  # for scoring the frames; null = text_template

    def __post_init__(self):
        for key in ("text_template", "text_template_audio", "text_template_vision"):
            template = getattr(self, key)
            if template is None:
                continue
            try:
                fits = template.count("{}") == 1 and template.format("x") == template.replace("{}", "x")
            except (IndexError, KeyError, ValueError):
                fits = False
            if not fits:
                raise InvalidValue(key, f"{template!r} must hold exactly one {{}} where the class name goes (and no "
                                        "other braces), e.g. \"a video of {}\"")

    def template(self, modality: str) -> str:
        own = self.text_template_audio if modality == "audio" else self.text_template_vision
        return self.text_template if own is None else own


@dataclass(frozen=True)
class CacheConfig:
    dir: Optional[str] = None  # null: cache/<family>_<size>[_<precision>][_<dtype>][_random], see Config
    dtype: Literal["float16", "float32"] = "float32"  # float32: as the published pipeline; float16: half the disk


@dataclass(frozen=True)
class ExtractConfig:
    batch_size: PositiveInt = 8  # videos per encoder call (10 segments each)
    num_workers: Optional[NonNegativeInt] = None  # media decoding processes; null = usable cores - 2 (per rank)
    chunk_size: PositiveInt = 256  # videos per durable chunk: what a killed run can lose
    skip_bad_media: bool = False  # true: leave unreadable videos out, report and count them


@dataclass(frozen=True)
class VideoConfig:
    """How video files are read (localize.py, the web app, tools/prepare_videos.py)."""

    audio_track: Optional[NonNegativeInt] = None  # null: the track marked default (what a player plays), else
    # the first; n: the n-th audio track, counting from 0
    worker_timeout: PositiveFloat = 600  # seconds a decoding worker may go without a window before its video
    # is named, reported as timed_out and the others go on


@dataclass(frozen=True)
class EvalConfig:
    split: Literal["val", "test"] = "test"
    strategy: str = "v01"  # a strategy of models/strategies; checked when a run starts
    checkpoint: Optional[str] = None  # the trained file a checkpoint strategy decodes with (v1, cuerator_policy)
    block_videos: PositiveInt = 2048  # videos per similarity block: bounds memory, never changes results
    f1_batch: Optional[PositiveInt] = None  # null: F1 = mean over videos; n: mean of per-batch means (published: 32)


Attention = Literal["self", "cross", "both"]
Fusion = Literal["geometric", "arithmetic", "feature_mean"]


@dataclass(frozen=True)
class TemporalSettings:
    """The temporal layers of the fine-tuning baseline (built by models/temporal.py); a checkpoint
    records them."""

    kind: Literal["transformer", "linear"] = "transformer"
    num_layers: PositiveInt = 1
    attention: Attention = "self"  # self: within a modality; cross: queries from one, keys/values from the other
    num_heads: PositiveInt = 1
    attn_dim: PositiveInt = 256
    ffn_dim: PositiveInt = 512
    dropout: Annotated[float, Range(0, 1, high_open=True)] = 0.1
    fusion: Fusion = "geometric"  # geometric: sqrt(relu(cos_a * cos_v)) as published; arithmetic: the mean;
    # feature_mean: one cosine of the mean of the audio and frame embeddings (one embedding space)
    init: Literal["shared", "independent"] = "shared"  # shared: every block a copy of one, as published
    attention_scale: Literal["model", "head"] = "model"  # model: 1/sqrt(attn_dim), as published
    cross_context: Literal["original", "previous"] = "original"  # what cross-attention reads
    both_combine: Literal["sum", "mean", "learned"] = "sum"  # how `both` joins its two stacks
    arithmetic_minmax: bool = False  # train arithmetic fusion on min-max normalised scores (published: no)
    # The published module's other options (off by default, as in the paper's table):
    distance_prior: bool = False  # use_adj_in_attn: exp(-|w d^2 - b|) over segment distance d added to the logits
    distance_gamma: float = 0.6  # w's initial value (learned, one per block)
    distance_bias: float = 0.2  # b's initial value (learned, one per block)
    local_window: Optional[PositiveInt] = None  # use_mask_in_attn: a local attention over win_size segments too
    power_norm: bool = False  # norm_flag: signed square root, then L2 normalisation over time (their dim=1)
    cross_layers: Optional[PositiveInt] = None  # XA_LAYER_NUM: cross-attention layers; null = num_layers

    def __post_init__(self):
        if self.attn_dim % self.num_heads:
            raise InvalidValue("num_heads", f"{self.num_heads} heads do not divide attn_dim {self.attn_dim}; "
                                            "choose a divisor of attn_dim")

    @property
    def scale(self) -> float:
        width = self.attn_dim if self.attention_scale == "model" else self.attn_dim // self.num_heads
        return 1 / math.sqrt(width)


@dataclass(frozen=True)
class ComplexSettings:
    """Complex-valued fusion (models/complex_fusion.py), trained by train.py with train.model:
    complex_fusion; a checkpoint records them. The temporal heads are ``temporal.*``."""

    streams: Literal[2, 4] = 2  # 2: visual + i audio; 4: (RGB + i iHSV, mel + i translated phase)
    fusion: Literal["complex", "real"] = "complex"  # real: the ablation's real CNN of the same parameter count
    swap: bool = False  # 2 streams: audio real, visual imaginary (the paper's swap ablation)
    hidden: PositiveInt = 32  # channels of the CNN's hidden layers
    layers: PositiveInt = 4  # (kernel_t, 1) convolutions before the 1 x 1 one
    kernel_t: PositiveInt = 5  # the convolutions' extent in time (odd: the time axis keeps its length)
    ihsv_negative: Literal["shift", "abs", "clip"] = "shift"  # how S sin H in [-1, 1] becomes a saturation
    generator: Optional[str] = None  # 4 streams: the phase generator train_phase_gan.py writes

    def __post_init__(self):
        if self.kernel_t % 2 == 0:
            raise InvalidValue("kernel_t", f"{self.kernel_t} is even; an odd extent keeps the segments aligned")
        if self.swap and self.streams != 2:
            raise InvalidValue("swap", "swaps the two parts of the single channel of 2 streams; with 4 streams each "
                                       "modality keeps its own channel. Set complex.swap: false or complex.streams: 2")


@dataclass(frozen=True)
class PhaseGanConfig:
    """The phase stream's CycleGAN (train_phase_gan.py), as the paper gives it."""

    size: Literal["paper", "tiny"] = "paper"  # paper: ResNet-9, 64 filters (about 11M parameters a generator)
    epochs: PositiveInt = 200
    batch_size: PositiveInt = 16  # segments per step
    lr_generator: PositiveFloat = 2e-4  # Adam (0.5, 0.999), cosine schedule over the epochs
    lr_discriminator: PositiveFloat = 1e-4
    cycle_weight: Annotated[float, Range(0)] = 10.0
    identity_weight: Annotated[float, Range(0)] = 2.0
    distribution_weight: Annotated[float, Range(0)] = 2.0
    real_label: Annotated[float, Range(0, 1)] = 0.9  # one-sided label smoothing
    instance_noise: Annotated[float, Range(0)] = 0.05  # std of the noise on the discriminators' inputs
    skip_discriminator_below: Annotated[float, Range(0)] = 0.1  # no discriminator step when its loss is this low
    max_videos: Optional[PositiveInt] = None  # train-split videos learnt from (null: all)
    seed: Annotated[int, Range(0, 2 ** 32 - 1)] = 0
    tensorboard: bool = True


@dataclass(frozen=True)
class TrainConfig:
    epochs: PositiveInt = 5  # the published script says 10; the authors later said 5
    batch_size: PositiveInt = 32
    lr: PositiveFloat = 5e-5  # Adam
    grad_clip: Optional[PositiveFloat] = 0.8  # max gradient norm; null = no clipping
    seed: Annotated[int, Range(0, 2 ** 32 - 1)] = 123
    selection: Literal["val", "test"] = "val"  # split whose mean of Acc/Seg-F1/Eve-F1 picks the epoch
    tensorboard: bool = True
    # Audio as the published training saw it: epoch e reads stochastic draw (e - 1) mod N of the
    # train split's audio (the frozen audio trunk in train mode); 0 = eval-mode audio.
    audio_draws: NonNegativeInt = 5
    audio_drop_path: Annotated[float, Range(0, 1, high_open=True)] = 0.1  # ImageBind's rate
    test_strategy: Literal["v0", "v01", "v1"] = "v1"  # how selection and test decode the trained embeddings
    lr_milestones: list[PositiveInt] = (10, 20, 30)  # MultiStepLR: the rate times lr_gamma after these epochs
    lr_gamma: PositiveFloat = 0.5
    model: Literal["temporal", "complex_fusion"] = "temporal"  # what is trained: the published temporal layers,
    # or complex-valued fusion (complex.*)


@dataclass(frozen=True)
class CueRatorConfig:
    """CueRator's rule and policy (run_cuerator.sh; strategies cuerator_rule and cuerator_policy)."""

    rule_file: Optional[str] = None  # the fitted parameters cuerator_rule decodes with (--fit-rule writes it)
    params: Optional[list[float]] = None  # or the 10 parameters themselves (instead of rule_file)
    oracle_candidates: PositiveInt = 131072  # Sobol candidates the global oracle scores (2^17, published)
    oracle_seed: NonNegativeInt = 42
    epochs: PositiveInt = 20
    batch_size: PositiveInt = 32  # videos per policy step
    samples: PositiveInt = 4  # K parameter vectors drawn per video (leave-one-out baseline; 1 = none)
    lr: PositiveFloat = 1e-4  # AdamW
    weight_decay: Annotated[float, Range(0)] = 0.0
    seed: Annotated[int, Range(0, 2 ** 32 - 1)] = 42
    selection: Literal["val", "test"] = "val"  # split whose mean per-video frame accuracy picks the epoch
    model_dim: PositiveInt = 256
    num_heads: PositiveInt = 4
    ffn_dim: PositiveInt = 512
    dropout: Annotated[float, Range(0, 1, high_open=True)] = 0.1
    tensorboard: bool = True

    def __post_init__(self):
        if self.model_dim % self.num_heads:
            raise InvalidValue("num_heads", f"{self.num_heads} heads do not divide model_dim {self.model_dim}; "
                                            "choose a divisor of model_dim")
        if self.params is not None and self.rule_file is not None:
            raise InvalidValue("params", "cuerator.params and cuerator.rule_file are both set; give one of them")


@dataclass(frozen=True)
class OutputConfig:
    root: str = "runs"
    name: Optional[str] = None  # run folder name; null = derived from the config file and the run
    plots: bool = True  # timelines, per-class F1 and training curves as PNG
    plot_videos: PositiveInt = 8  # videos drawn in timelines.png


@dataclass(frozen=True)
class AppConfig:
    """The web app (app.py)."""

    max_upload_mb: PositiveFloat = 500  # an upload larger than this many MB (10^6 bytes) is refused


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    video: VideoConfig = field(default_factory=VideoConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    temporal: TemporalSettings = field(default_factory=TemporalSettings)
    train: TrainConfig = field(default_factory=TrainConfig)
    complex: ComplexSettings = field(default_factory=ComplexSettings)
    phase_gan: PhaseGanConfig = field(default_factory=PhaseGanConfig)
    cuerator: CueRatorConfig = field(default_factory=CueRatorConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    app: AppConfig = field(default_factory=AppConfig)
    device: str = "auto"  # auto = CUDA when present; cpu; cuda; cuda:1

    def __post_init__(self):
        if self.cache.dir is None:  # frozen: set once, here
            object.__setattr__(self, "cache", dataclasses.replace(self.cache, dir=default_cache_dir(self)))
        if not DEVICE_PATTERN.fullmatch(self.device):
            raise InvalidValue("device", f"{self.device!r} is not a device; choose auto, cpu, cuda or cuda:<index>")


def default_cache_dir(config: Config) -> str:
    """A folder per encoder identity, so that a try with random weights (or another precision or
    storage type) never meets the real weights' cache: ``cache/imagebind_huge`` for the defaults,
    ``cache/imagebind_tiny_random`` for ``encoder.size=tiny encoder.checkpoint=random``."""
    encoder = config.encoder
    parts = [encoder.family, encoder.size]
    parts += [encoder.precision] if encoder.precision != "fp32" else []
    parts += [config.cache.dtype] if config.cache.dtype != "float32" else []
    parts += ["random"] if RANDOM_CHECKPOINT in (encoder.checkpoint, encoder.audio_checkpoint) else []
    return f"cache/{'_'.join(parts)}"
