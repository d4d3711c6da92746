"""The CLIP + CLAP family: OpenAI's CLIP ViT-B/32 for the frames (open_clip) and LAION's CLAP
with the HTSAT audio encoder, unfused, for the audio (Hugging Face ``transformers``); each
modality is scored against its own model's text tower. The libraries are the reference: the
frames go through open_clip's own image transform for the model, each 1 s of audio through
CLAP's own feature extractor (48 kHz; ``truncation="rand_trunc"``, the unfused model's
setting, which for a clip shorter than the 10 s window means repeat-padding it).

Weights load from local paths only: ``encoder.checkpoint`` is an open_clip state-dict file of
ViT-B-32 with OpenAI's weights (QuickGELU), ``encoder.audio_checkpoint`` a Hugging Face folder
of the unfused CLAP (``config.json``, the weights, the tokenizer and feature-extractor files);
``random`` builds seeded random models of ``encoder.size`` (``tiny`` for tests and the demo).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
import torchaudio
from torch import nn

from common.errors import UserError
from data.feature_cache import RANDOM_CHECKPOINT, checkpoint_identity
from data.preprocess import NUM_SEGMENTS, MediaError, frame_paths, read_waveform
from models.checkpoint import CheckpointError
from models.families import size_file
from models.segment_encoder import PRECISIONS, SegmentEncoder

SHARED_TEXT = False  # one text tower scores both modalities
AUDIO_DRAWS = False
PHASE_INPUT = None  # no phase stream (complex fusion's 4 streams): the imagebind family defines one
SIZES_DIR = Path(__file__).resolve().parent / "clip_clap_sizes"
RANDOM_INIT_SEED = 0
CLAP_RATE = 48000
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def size(config) -> dict:
    return size_file(SIZES_DIR, "clip_clap", config.encoder.size)


def _clap_config(spec: dict):
    from transformers import ClapConfig

    return ClapConfig(text_config=spec["text_config"], audio_config=spec["audio_config"],
                      projection_dim=spec["projection_dim"])


def widths(config) -> dict[str, int]:
    import open_clip

    spec = size(config)
    clip = spec["clip"]["embed_dim"] if "embed_dim" in spec["clip"] else \
        open_clip.get_model_config(spec["clip"]["model"])["embed_dim"]
    return {"audio": spec["clap"]["projection_dim"], "vision": clip}


def describe(config) -> str:
    return f"CLIP ViT-B/32 + CLAP HTSAT ({config.encoder.size}, {config.encoder.precision})"


def identity(config) -> dict:
    return {"family": "clip_clap", "size": config.encoder.size, "widths": widths(config),
            "precision": config.encoder.precision, "numerics": PRECISIONS[config.encoder.precision].record()}


def _clap_weights(folder: Path) -> Path | None:
    return next((folder / name for name in WEIGHT_FILES if (folder / name).is_file()), None)


def models(config, remembered: dict | None = None) -> dict:
    """Each model's weights file identity (None when it is not here)."""
    remembered = remembered or {}
    clip, clap = config.encoder.checkpoint, config.encoder.audio_checkpoint
    found = {"clip": None, "clap": None}
    if clip == RANDOM_CHECKPOINT or Path(clip).is_file():
        found["clip"] = checkpoint_identity(clip, remembered.get("clip"))
    if clap == RANDOM_CHECKPOINT:
        found["clap"] = checkpoint_identity(clap)
    elif clap and _clap_weights(Path(clap)) is not None:
        found["clap"] = checkpoint_identity(str(_clap_weights(Path(clap))), remembered.get("clap"))
    return found


def preprocessing() -> dict:
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

    return {
        "audio": {"library": "transformers ClapFeatureExtractor", "sampling_rate": CLAP_RATE,
                  "segment_seconds": 1, "num_segments": NUM_SEGMENTS, "truncation": "rand_trunc",
                  "padding": "repeatpad", "resample": "torchaudio.functional.resample", "channels": "mean"},
        "vision": {"library": "open_clip image_transform", "image_size": 224,
                   "resize": "bicubic-short-side+center-crop", "mean": list(OPENAI_DATASET_MEAN),
                   "std": list(OPENAI_DATASET_STD)},
        "text": {"vision": "open_clip ViT-B-32 tokenizer (CLIP BPE, 77)",
                 "audio": "the CLAP folder's RoBERTa tokenizer (random weights: a byte-level one)"},
    }


def missing_weights(config) -> list[str]:
    reasons = []
    clip, clap = config.encoder.checkpoint, config.encoder.audio_checkpoint
    if clip != RANDOM_CHECKPOINT and not Path(clip).is_file():
        reasons.append(f"CLIP weights not found at {clip} (encoder.checkpoint): an open_clip state-dict file of "
                       "ViT-B-32 with OpenAI's weights; `python tools/download_clip_clap.py` fetches it when you ask")
    if clap is None:
        reasons.append("encoder.audio_checkpoint is not set: the folder of the unfused CLAP (or random)")
    elif clap != RANDOM_CHECKPOINT and (not Path(clap).is_dir() or _clap_weights(Path(clap)) is None):
        reasons.append(f"CLAP weights not found in {clap} (encoder.audio_checkpoint): a Hugging Face folder with "
                       f"config.json and {' or '.join(WEIGHT_FILES)}; `python tools/download_clip_clap.py` fetches it")
    return reasons


@functools.lru_cache(maxsize=1)
def _feature_extractor():
    from transformers import ClapFeatureExtractor

    return ClapFeatureExtractor()  # its defaults are the unfused model's: 48 kHz, 64 mel bins, 10 s window


@functools.lru_cache(maxsize=1)
def _image_transform():
    import open_clip

    return open_clip.image_transform(224, is_train=False)


def segment_waveforms(mono: torch.Tensor, rate: int, seconds: int) -> np.ndarray:
    """``[1, samples]`` -> ``[seconds, 48000]``: resampled to 48 kHz, cut or zero-padded, one
    row per 1 s segment."""
    if rate != CLAP_RATE:
        mono = torchaudio.functional.resample(mono, orig_freq=rate, new_freq=CLAP_RATE)
    total = seconds * CLAP_RATE
    mono = torch.nn.functional.pad(mono, (0, max(0, total - mono.shape[1])))[:, :total]
    return mono.reshape(seconds, CLAP_RATE).numpy()


def _clap_inputs(rows: np.ndarray) -> torch.Tensor:
    """Each 1 s row as CLAP's feature extractor prepares a clip: ``[n, 1, 1001, 64]``."""
    return _feature_extractor()(list(rows), sampling_rate=CLAP_RATE, truncation="rand_trunc", padding="repeatpad",
                                return_tensors="pt")["input_features"]


def decode_audio(wav) -> torch.Tensor:
    """One video's WAV -> ``[10, 1, 1001, 64]`` (mono: the channels' mean)."""
    waveform, rate = read_waveform(wav)
    return _clap_inputs(segment_waveforms(waveform.mean(dim=0, keepdim=True), rate, NUM_SEGMENTS))


def audio_window(samples: np.ndarray) -> torch.Tensor:
    """``[n * 16000]`` mono 16 kHz float samples (a window of a streamed video) -> ``[n, 1, 1001, 64]``."""
    mono = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))[None]
    return _clap_inputs(segment_waveforms(mono, 16000, len(samples) // 16000))


def frame_window(images) -> torch.Tensor:
    """The window's pictures -> ``[n, 3, 224, 224]`` through open_clip's transform."""
    return torch.stack([_image_transform()(image.convert("RGB")) for image in images])


def decode_frames(folder) -> torch.Tensor:
    """``[10, 3, 224, 224]``: the folder's frames through open_clip's transform for the model."""
    from PIL import Image, UnidentifiedImageError

    frames = []
    for path in frame_paths(folder):
        try:
            with Image.open(path) as image:
                frames.append(_image_transform()(image.convert("RGB")))
        except (UnidentifiedImageError, OSError, ValueError) as err:
            raise MediaError(f"cannot read image {path}: {err}") from None
    return torch.stack(frames)


def byte_level_tokenizer():
    """A RoBERTa-style byte-level tokenizer without merges (260 ids): the text side of random CLAP
    models, which have no tokenizer files."""
    from tokenizers import Tokenizer, models as token_models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for char in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[char] = len(vocab)
    tokenizer = Tokenizer(token_models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>")


class ClipClap(nn.Module):
    """The two models side by side, with the ``encode_audio`` / ``encode_vision`` of the
    segment encoder: CLAP's projected audio embedding, CLIP's image embedding."""

    def __init__(self, clip: nn.Module, clap: nn.Module, clap_tokenizer):
        super().__init__()
        self.clip, self.clap = clip, clap
        self.clap_tokenizer = clap_tokenizer

    def encode_audio(self, features: torch.Tensor) -> torch.Tensor:
        return self.clap.get_audio_features(input_features=features).pooler_output

    def encode_vision(self, images: torch.Tensor) -> torch.Tensor:
        return self.clip.encode_image(images)


class ClipClapEncoder(SegmentEncoder):
    @property
    def widths(self) -> dict[str, int]:
        return {"audio": self.model.clap.config.projection_dim, "vision": self.model.clip.text_projection.shape[1]}

    def class_names(self, names, template: str, modality: str) -> torch.Tensor:
        """``[K, D_modality]`` on the CPU: CLAP's text tower for the audio, CLIP's for the frames."""
        import open_clip

        if "{}" not in template:
            raise UserError(f"text template {template!r} must contain '{{}}' where the class name goes")
        texts = [template.format(name) for name in names]
        with self._context():
            if modality == "audio":
                tokens = self.model.clap_tokenizer(texts, padding=True, return_tensors="pt").to(self.device)
                out = self.model.clap.get_text_features(**tokens).pooler_output
            else:
                out = self.model.clip.encode_text(open_clip.tokenize(texts).to(self.device))
        return out.float().cpu()


def _load_clip(spec: dict, checkpoint: str) -> nn.Module:
    import open_clip
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    if checkpoint == RANDOM_CHECKPOINT:
        if "model" in spec:
            return open_clip.create_model(spec["model"])
        return CLIP(embed_dim=spec["embed_dim"], vision_cfg=CLIPVisionCfg(**spec["vision_cfg"]),
                    text_cfg=CLIPTextCfg(**spec["text_cfg"]), quick_gelu=spec["quick_gelu"])
    if "model" not in spec:
        raise CheckpointError("encoder.size tiny has no released CLIP weights; use encoder.checkpoint: random")
    try:
        return open_clip.create_model(spec["model"], pretrained=checkpoint)
    except Exception as err:  # a foreign file can fail anywhere in loading
        raise CheckpointError(f"{checkpoint} cannot be loaded as {spec['model']} ({type(err).__name__}: "
                              f"{str(err)[:300]}); encoder.checkpoint must be an open_clip state dict of ViT-B-32 "
                              "with OpenAI's weights") from None


def _load_clap(spec: dict, folder: str):
    from transformers import AutoTokenizer, ClapModel

    if folder == RANDOM_CHECKPOINT:
        return ClapModel(_clap_config(spec)), byte_level_tokenizer()
    try:
        model = ClapModel.from_pretrained(folder, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except Exception as err:  # a foreign folder can fail anywhere in loading
        raise CheckpointError(f"{folder} cannot be loaded as a CLAP model ({type(err).__name__}: {str(err)[:300]}); "
                              "encoder.audio_checkpoint must be a Hugging Face folder of the unfused CLAP") from None
    if model.config.audio_config.enable_fusion:
        raise CheckpointError(f"{folder} holds the fused CLAP; this family uses the unfused model "
                              "(one 10 s window per clip, enable_fusion false)")
    return model, tokenizer


def build(config, device: torch.device) -> ClipClapEncoder:
    """Both models on ``device``, frozen; random weights are drawn on the CPU, then moved."""
    spec = size(config)
    torch.manual_seed(RANDOM_INIT_SEED)
    clip = _load_clip(spec["clip"], config.encoder.checkpoint)
    if config.encoder.audio_checkpoint is None:
        raise UserError("encoder.audio_checkpoint is not set: the folder of the unfused CLAP, or random")
    clap, tokenizer = _load_clap(spec["clap"], config.encoder.audio_checkpoint)
    return ClipClapEncoder(ClipClap(clip, clap, tokenizer), device, config.encoder.precision)
