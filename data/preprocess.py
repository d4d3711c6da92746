"""Turn one video's WAV and frames, and the class names, into ImageBind inputs exactly as the
published OV-AVEL pipeline does (pinned by ``golden/preprocessing_reference.npz``).

- audio: 16 kHz, cut or zero-padded to 10 s, ten 1 s clips each tiled to 2 s, Kaldi fbank
  (128 mel bins, 25 ms / 10 ms hanning frames), padded to 204 frames, normalised;
- frames: the folder's 10 images in sorted name order, RGB, bicubic resize of the short side
  to 224, centre crop, CLIP normalisation;
- text: CLIP BPE tokens, 77 per class name.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import soundfile
import torch
import torchaudio
from PIL import Image, UnidentifiedImageError
from torchvision import transforms

from common.errors import UserError

NUM_SEGMENTS = 10
SAMPLE_RATE = 16000
SEGMENT_SAMPLES = SAMPLE_RATE  # one second per segment
CLIP_REPEATS = 2  # each 1 s segment is tiled to the 2 s ImageBind was trained on
NUM_MEL_BINS = 128
TARGET_FRAMES = 204
FBANK_MEAN, FBANK_STD = -4.268, 9.138
IMAGE_SIZE = 224
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")

AUDIO_SHAPE = (NUM_SEGMENTS, 1, NUM_MEL_BINS, TARGET_FRAMES)
FRAMES_SHAPE = (NUM_SEGMENTS, 3, IMAGE_SIZE, IMAGE_SIZE)

# Everything that changes the encoder inputs, per modality; stored with every feature cache.
PREPROCESSING = {
    "audio": {"sample_rate": SAMPLE_RATE, "num_segments": NUM_SEGMENTS, "clip_repeats": CLIP_REPEATS,
              "num_mel_bins": NUM_MEL_BINS, "target_frames": TARGET_FRAMES, "fbank_mean": FBANK_MEAN,
              "fbank_std": FBANK_STD},
    "vision": {"image_size": IMAGE_SIZE, "resize": "bicubic-short-side+center-crop",
               "clip_mean": list(CLIP_MEAN), "clip_std": list(CLIP_STD)},
    "text": {"tokenizer": "clip-bpe-77"},
}


class MediaError(UserError):
    """A WAV or frame that cannot be used; the message names the file."""


def read_waveform(path) -> tuple[torch.Tensor, int]:
    """``[channels, samples]`` float32 in [-1, 1] and the sample rate."""
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"audio file not found: {path}")
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as err:
        raise MediaError(f"cannot read audio {path}: {err}") from None
    if data.shape[0] == 0:
        raise MediaError(f"audio {path} has no samples")
    if not np.isfinite(data).all():
        raise MediaError(f"audio {path} holds NaN or infinite samples")
    return torch.from_numpy(np.ascontiguousarray(data.T)), rate


def _fbank(clip: torch.Tensor) -> torch.Tensor:
    """``[channels, samples]`` -> ``[1, 128, 204]`` normalised log-mel clip.

    Stereo as published: the mean over all channels is removed, then Kaldi fbank reads the
    first channel only.
    """
    clip = clip - clip.mean()
    fbank = torchaudio.compliance.kaldi.fbank(
        clip, htk_compat=True, sample_frequency=SAMPLE_RATE, use_energy=False, window_type="hanning",
        num_mel_bins=NUM_MEL_BINS, dither=0.0, frame_length=25, frame_shift=10).T
    missing = TARGET_FRAMES - fbank.shape[1]
    fbank = torch.nn.functional.pad(fbank, (0, missing)) if missing > 0 else fbank[:, :TARGET_FRAMES]
    return ((fbank - FBANK_MEAN) / FBANK_STD).unsqueeze(0)


def ten_seconds(path) -> torch.Tensor:
    """One video's WAV at 16 kHz, cut or zero-padded to 10 s: ``[channels, 160000]``."""
    waveform, rate = read_waveform(path)
    if rate != SAMPLE_RATE:
        waveform = torchaudio.functional.resample(waveform, orig_freq=rate, new_freq=SAMPLE_RATE)
    total = NUM_SEGMENTS * SEGMENT_SAMPLES
    if waveform.shape[1] < total:
        waveform = torch.nn.functional.pad(waveform, (0, total - waveform.shape[1]))
    return waveform[:, :total]


def audio_segments(path) -> torch.Tensor:
    """One video's WAV -> ``[10, 1, 128, 204]`` fbank clips, one per 1 s segment."""
    return audio_clips(ten_seconds(path))


def audio_clips(waveform: torch.Tensor) -> torch.Tensor:
    """``[channels, n * 16000]`` at 16 kHz -> ``[n, 1, 128, 204]``: each second tiled to 2 s, fbank."""
    clips = waveform.reshape(waveform.shape[0], -1, SEGMENT_SAMPLES)
    return torch.stack([_fbank(clips[:, i].repeat(1, CLIP_REPEATS)) for i in range(clips.shape[1])])


FFT_SIZE = 512  # Kaldi's frame of 400 samples padded to the next power of two: 257 bins
PHASE_SHAPE = (1, FFT_SIZE // 2 + 1, TARGET_FRAMES)


def phase_clips(waveform: torch.Tensor) -> torch.Tensor:
    """``[channels, n * 16000]`` at 16 kHz -> ``[n, 1, 257, 204]`` STFT phase of each second tiled to
    2 s as :func:`audio_clips` frames it (25 ms symmetric Hann frames every 10 ms, the clip's mean
    removed, channel 0), zero-padded to 204 frames like the filterbank."""
    clips = waveform.reshape(waveform.shape[0], -1, SEGMENT_SAMPLES)
    window = torch.hann_window(400, periodic=False, dtype=torch.float64)
    out = []
    for i in range(clips.shape[1]):
        clip = clips[:, i].repeat(1, CLIP_REPEATS).to(torch.float64)
        frames = (clip - clip.mean())[0].unfold(0, 400, 160) * window
        phase = torch.angle(torch.fft.rfft(frames, n=FFT_SIZE)).T.to(torch.float32)  # [257, frames]
        out.append(torch.nn.functional.pad(phase, (0, TARGET_FRAMES - phase.shape[1]))[None])
    return torch.stack(out)


_FRAME_TRANSFORM = transforms.Compose([
    transforms.Resize(IMAGE_SIZE, interpolation=transforms.InterpolationMode.BICUBIC),
    transforms.CenterCrop(IMAGE_SIZE),
    transforms.ToTensor(),
    transforms.Normalize(CLIP_MEAN, CLIP_STD),
])


def frame_paths(folder) -> list[Path]:
    """The folder's images in sorted name order; exactly one per segment."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MediaError(f"frame folder not found: {folder}")
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if len(images) != NUM_SEGMENTS:
        raise MediaError(f"frame folder {folder} holds {len(images)} images; expected exactly "
                         f"{NUM_SEGMENTS} ({', '.join(IMAGE_SUFFIXES)}), one per 1 s segment")
    return images


def frame_tensor(image: Image.Image) -> torch.Tensor:
    """One picture -> ``[3, 224, 224]`` normalised."""
    return _FRAME_TRANSFORM(image.convert("RGB"))


def load_frame(path) -> torch.Tensor:
    """One image file -> ``[3, 224, 224]`` normalised."""
    try:
        with Image.open(path) as image:
            return frame_tensor(image)
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise MediaError(f"cannot read image {path}: {err}") from None


def video_frames(folder) -> torch.Tensor:
    """One video's frame folder -> ``[10, 3, 224, 224]``."""
    return torch.stack([load_frame(p) for p in frame_paths(folder)])


def tokenize(class_names, template: str = "{}") -> torch.Tensor:
    """Class names -> ``[K, 77]`` CLIP BPE tokens; ``template`` wraps each name (``"{}"``: as is)."""
    if "{}" not in template:
        raise UserError(f"text template {template!r} must contain '{{}}' where the class name goes")
    return _clip_tokenizer()([template.format(name) for name in class_names])


@functools.lru_cache(maxsize=1)
def _clip_tokenizer():
    """open_clip's BPE tokenizer; reading its vocabulary takes a quarter of a second, so once."""
    from open_clip.tokenizer import SimpleTokenizer  # heavy import, only where text is encoded

    return SimpleTokenizer()
