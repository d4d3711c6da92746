"""The LanguageBind family: LanguageBind_Image for the frames and LanguageBind_Audio_FT for the
audio, both ViT-L/14 CLIP towers bound to one frozen CLIP text tower (models/languagebind.py
builds them on ``transformers``' own CLIP classes; none of the reference package is needed).

Weights load from local folders only, in the released Hugging Face layout (``config.json`` in
LanguageBind's composite format, ``model.safetensors`` or ``pytorch_model.bin``):
``encoder.checkpoint`` is the LanguageBind_Image folder, ``encoder.audio_checkpoint`` the
LanguageBind_Audio_FT folder. The architecture is read from each folder's ``config.json``, so any
size loads; ``random`` builds seeded random towers of ``encoder.size`` (``tiny`` for tests and the
demo, ``large`` for the released geometry). Every checkpoint carries the same frozen text tower;
the image folder's is used, for both modalities.

Per segment: each 1 s of audio through the audio transform (98 filterbank frames tiled to 1036),
each segment's frame through the image transform.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from common.errors import UserError
from data.feature_cache import RANDOM_CHECKPOINT, checkpoint_identity
from data.preprocess import NUM_SEGMENTS, MediaError, frame_paths, read_waveform
from models import languagebind as towers
from models.checkpoint import CheckpointError
from models.families import size_file
from models.segment_encoder import PRECISIONS, SegmentEncoder

audio_transform = towers.audio_transform  # (waveform [channels, samples], rate) -> [3, 112, 1036]
image_transform = towers.image_transform  # PIL picture -> [3, 224, 224]

SHARED_TEXT = True  # one text tower scores both modalities
AUDIO_DRAWS = False  # no stochastic depth in the audio tower at inference
PHASE_INPUT = None  # no phase stream (complex fusion's 4 streams): the imagebind family defines one
SIZES_DIR = Path(__file__).resolve().parent / "languagebind_sizes"
RANDOM_INIT_SEED = 0
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
MODEL_TYPES = {"image": "LanguageBindImage", "audio": "LanguageBindAudio"}
FOLDERS = {"image": "LanguageBind_Image", "audio": "LanguageBind_Audio_FT"}
KEYS = {"image": "encoder.checkpoint", "audio": "encoder.audio_checkpoint"}


def size(config) -> dict:
    return size_file(SIZES_DIR, "languagebind", config.encoder.size)


def _folders(config) -> dict:
    return {"image": config.encoder.checkpoint, "audio": config.encoder.audio_checkpoint}


def _weights_file(folder: Path) -> Path | None:
    return next((folder / name for name in WEIGHT_FILES if (folder / name).is_file()), None)


def read_config(folder, modality: str) -> dict:
    """A folder's LanguageBind config, checked: its type, and no LoRA in the audio tower."""
    folder, key = Path(folder), KEYS[modality]
    if not folder.is_dir():
        raise CheckpointError(f"{key} {folder}: no such folder; it is the {FOLDERS[modality]} folder (config.json "
                              f"and {' or '.join(WEIGHT_FILES)}); `python tools/download_languagebind.py` fetches it")
    path = folder / "config.json"
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{key} {folder}: cannot read config.json ({err}); it is the {FOLDERS[modality]} "
                              "folder") from None
    if config.get("model_type") != MODEL_TYPES[modality]:
        raise CheckpointError(f"{path} is a {config.get('model_type')!r} config; {key} needs the {FOLDERS[modality]} "
                              f"folder (model_type {MODEL_TYPES[modality]})")
    if (config.get("vision_config") or {}).get("lora_r", 0):
        raise CheckpointError(f"{folder} is a LoRA checkpoint (lora_r = {config['vision_config']['lora_r']}, "
                              f"LanguageBind_Audio); {key} needs the fully fine-tuned {FOLDERS[modality]}")
    return config


def _configs(config) -> dict:
    """Each modality's LanguageBind config: the folder's, or the size file's for random weights."""
    spec = None
    found = {}
    for modality, folder in _folders(config).items():
        if folder is None:
            raise UserError(f"{KEYS[modality]} is not set: the {FOLDERS[modality]} folder, or random")
        if folder == RANDOM_CHECKPOINT:
            spec = spec or size(config)
            found[modality] = spec[modality]
        else:
            found[modality] = read_config(folder, modality)
    return found


def widths(config) -> dict[str, int]:
    configs = _configs(config)
    return {"audio": configs["audio"]["vision_config"]["projection_dim"],
            "vision": configs["image"]["vision_config"]["projection_dim"]}


def describe(config) -> str:
    return f"LanguageBind ({config.encoder.size}, {config.encoder.precision})"


def identity(config) -> dict:
    return {"family": "languagebind", "size": config.encoder.size, "widths": widths(config),
            "precision": config.encoder.precision, "numerics": PRECISIONS[config.encoder.precision].record(),
            "text_tower": "the image folder's"}


def models(config, remembered: dict | None = None) -> dict:
    """Each folder's weights file identity (None when it is not here)."""
    remembered = remembered or {}
    found = {}
    for modality, folder in _folders(config).items():
        if folder == RANDOM_CHECKPOINT:
            found[modality] = checkpoint_identity(folder)
        elif folder and _weights_file(Path(folder)) is not None:
            found[modality] = checkpoint_identity(str(_weights_file(Path(folder))), remembered.get(modality))
        else:
            found[modality] = None
    return found


def preprocessing() -> dict:
    return {
        "audio": {"segment_seconds": 1, "num_segments": NUM_SEGMENTS, "sampling_rate": towers.SAMPLE_RATE,
                  "resample": "torchaudio.functional.resample", "mean": "removed over all channels",
                  "fbank": "kaldi, hanning, 25/10 ms, 112 bins, no dither, channel 0, float64",
                  "frames": towers.FRAMES, "short": "tiled", "long": "three crops", "norm_mean": towers.AUDIO_MEAN,
                  "norm_std": f"2 x {towers.AUDIO_STD}"},
        "vision": {"image_size": towers.IMAGE_SIZE, "resize": "bicubic-antialias-short-side+center-crop",
                   "mean": list(towers.CLIP_MEAN), "std": list(towers.CLIP_STD), "greyscale": "converted to RGB"},
        "text": {"tokenizer": "open_clip CLIP BPE, 77 tokens, padded with EOS", "tower": "the image folder's"},
    }


def missing_weights(config) -> list[str]:
    reasons = []
    for modality, folder in _folders(config).items():
        if folder is None:
            reasons.append(f"{KEYS[modality]} is not set: the {FOLDERS[modality]} folder (or random)")
        elif folder != RANDOM_CHECKPOINT and (not Path(folder).is_dir() or _weights_file(Path(folder)) is None):
            reasons.append(f"{FOLDERS[modality]} weights not found in {folder} ({KEYS[modality]}): a folder with "
                           f"config.json and {' or '.join(WEIGHT_FILES)}; `python tools/download_languagebind.py` "
                           "fetches it")
    return reasons


def _segments(waveform: torch.Tensor, rate: int, seconds: int) -> torch.Tensor:
    """``[channels, samples]`` -> ``[seconds, 3, 112, 1036]``: each 1 s (zero-padded at the end)
    through the audio transform."""
    total = seconds * rate
    waveform = torch.nn.functional.pad(waveform, (0, max(0, total - waveform.shape[1])))[:, :total]
    return torch.stack([towers.audio_transform(waveform[:, s * rate:(s + 1) * rate], rate) for s in range(seconds)])


def decode_audio(wav) -> torch.Tensor:
    """One video's WAV -> ``[10, 3, 112, 1036]``."""
    waveform, rate = read_waveform(wav)
    return _segments(waveform, rate, NUM_SEGMENTS)


def audio_window(samples: np.ndarray) -> torch.Tensor:
    """``[n * 16000]`` mono 16 kHz samples (a window of a streamed video) -> ``[n, 3, 112, 1036]``."""
    mono = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))[None]
    return _segments(mono, towers.SAMPLE_RATE, len(samples) // towers.SAMPLE_RATE)


def frame_window(images) -> torch.Tensor:
    return torch.stack([towers.image_transform(image) for image in images])


def decode_frames(folder) -> torch.Tensor:
    """``[10, 3, 224, 224]``: the folder's frames through the image transform."""
    from PIL import Image, UnidentifiedImageError

    frames = []
    for path in frame_paths(folder):
        try:
            with Image.open(path) as image:
                frames.append(towers.image_transform(image))
        except (UnidentifiedImageError, OSError, ValueError) as err:
            raise MediaError(f"cannot read image {path}: {err}") from None
    return torch.stack(frames)


class LanguageBind(nn.Module):
    """The three towers, with the segment encoder's ``encode_audio`` / ``encode_vision``: the
    projected (unnormalised) audio and image embeddings."""

    def __init__(self, image: nn.Module, audio: nn.Module, text: nn.Module):
        super().__init__()
        self.image, self.audio, self.text = image, audio, text

    def encode_audio(self, filterbanks: torch.Tensor) -> torch.Tensor:
        return self.audio(pixel_values=filterbanks).image_embeds

    def encode_vision(self, images: torch.Tensor) -> torch.Tensor:
        return self.image(pixel_values=images).image_embeds


class LanguageBindEncoder(SegmentEncoder):
    @property
    def widths(self) -> dict[str, int]:
        return {"audio": self.model.audio.config.projection_dim, "vision": self.model.image.config.projection_dim}

    def class_names(self, names, template: str, modality: str) -> torch.Tensor:
        """``[K, D]`` on the CPU: the text tower, for either modality."""
        input_ids, attention_mask = towers.tokenize(template.format(name) for name in names)
        with self._context():
            out = self.model.text(input_ids=input_ids.to(self.device), attention_mask=attention_mask.to(self.device))
        return out.text_embeds.float().cpu()


def read_weights(folder) -> dict:
    path = _weights_file(Path(folder))
    if path is None:
        raise CheckpointError(f"{folder} has no {' or '.join(WEIGHT_FILES)}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(path)
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a damaged or foreign file can fail anywhere in loading
        raise CheckpointError(f"{path} is not a readable weights file ({type(err).__name__})") from None


def _load(tower: nn.Module, state: dict, prefixes: tuple, where) -> None:
    """The tower's own entries of a LanguageBind state dict (its key names), all of them, shapes
    checked; anything that does not fit is one message naming the folder."""
    wanted = {key: value for key, value in state.items() if key.startswith(prefixes)}
    try:
        tower.load_state_dict(wanted, strict=True)
    except RuntimeError as err:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        raise CheckpointError(f"{where}: its weights are not the architecture its config.json describes "
                              f"({lines[1] if len(lines) > 1 else lines[0]})") from None


def build(config, device: torch.device) -> LanguageBindEncoder:
    """The three towers on ``device``, frozen; random weights are drawn on the CPU, then moved."""
    configs = _configs(config)
    torch.manual_seed(RANDOM_INIT_SEED)
    image = towers.vision_tower(configs["image"]["vision_config"])
    audio = towers.vision_tower(configs["audio"]["vision_config"])
    text = towers.text_tower(configs["image"]["text_config"])
    folders = _folders(config)
    if folders["image"] != RANDOM_CHECKPOINT:
        state = read_weights(folders["image"])
        _load(image, state, ("vision_model.", "visual_projection."), folders["image"])
        _load(text, state, ("text_model.", "text_projection."), folders["image"])
    if folders["audio"] != RANDOM_CHECKPOINT:
        _load(audio, read_weights(folders["audio"]), ("vision_model.", "visual_projection."), folders["audio"])
    return LanguageBindEncoder(LanguageBind(image, audio, text), device, config.encoder.precision)
