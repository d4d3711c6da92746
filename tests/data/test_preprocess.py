import numpy as np
import pytest
import soundfile
from PIL import Image

from data import preprocess
from data.preprocess import MediaError

AUDIO_FILES = ["stereo_44k1_10s.wav", "mono_16k_7s5.wav", "mono_48k_12s.wav"]
FRAME_FILES = ["frame_gray_224x224.png", "frame_rgb_640x360.png", "frame_rgba_320x480.png"]
# A correct bicubic resize may differ from the reference's by at most one 8-bit grey level
# per pixel (its output is rounded to uint8 before normalisation): 1/255 / min(CLIP_STD).
ONE_GREY_LEVEL = 1 / 255 / min(preprocess.CLIP_STD)


@pytest.fixture(scope="module")
def reference(shared):
    return np.load(shared / "golden" / "preprocessing_reference.npz")


@pytest.mark.parametrize("name", AUDIO_FILES)
def test_audio_matches_reference(shared, reference, name):
    clips = preprocess.audio_segments(shared / "golden" / "media" / name)
    assert tuple(clips.shape) == preprocess.AUDIO_SHAPE
    np.testing.assert_allclose(clips.numpy(), reference[f"audio/{name}"], rtol=0, atol=1e-4)


@pytest.mark.parametrize("name", FRAME_FILES)
def test_frames_match_reference(shared, reference, name):
    frame = preprocess.load_frame(shared / "golden" / "media" / name).numpy()
    expected = reference[f"vision/{name}"]
    assert frame.shape == expected.shape == (3, 224, 224)
    assert np.abs(frame - expected).max() <= ONE_GREY_LEVEL + 1e-6
    assert np.abs(frame - expected).mean() < 1e-3


def test_text_tokens_match_reference(reference):
    tokens = preprocess.tokenize(list(reference["text/strings"]))
    np.testing.assert_array_equal(tokens.numpy(), reference["text/tokens"])


def test_text_template(reference):
    plain = preprocess.tokenize(["dog barking"])
    templated = preprocess.tokenize(["dog barking"], "a photo of {}.")
    assert (plain != templated).any()
    with pytest.raises(Exception, match="must contain"):
        preprocess.tokenize(["dog"], "a photo")


def _frame_folder(tmp_path, count, name="video"):
    folder = tmp_path / name
    folder.mkdir()
    for i in range(count):
        Image.new("RGB", (64, 48), (i * 20, 0, 0)).save(folder / f"{i:02d}.png")
    return folder


def test_video_frames_sorted_and_counted(tmp_path):
    frames = preprocess.video_frames(_frame_folder(tmp_path, 10))
    assert tuple(frames.shape) == preprocess.FRAMES_SHAPE
    red = frames[:, 0, 0, 0]
    assert (red[1:] > red[:-1]).all()  # sorted by name, one per segment
    with pytest.raises(MediaError, match=r"holds 9 images; expected exactly 10"):
        preprocess.video_frames(_frame_folder(tmp_path, 9, "short"))
    with pytest.raises(MediaError, match=r"frame folder not found"):
        preprocess.video_frames(tmp_path / "absent")


def test_unreadable_image(tmp_path):
    folder = _frame_folder(tmp_path, 10)
    (folder / "05.png").write_bytes(b"not an image")
    with pytest.raises(MediaError, match=r"cannot read image .*05.png"):
        preprocess.video_frames(folder)


def test_audio_errors(tmp_path):
    with pytest.raises(MediaError, match=r"audio file not found: .*absent.wav"):
        preprocess.audio_segments(tmp_path / "absent.wav")
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF....WAVEfmt garbage")
    with pytest.raises(MediaError, match=r"cannot read audio .*garbage.wav"):
        preprocess.audio_segments(garbage)
    empty = tmp_path / "empty.wav"
    soundfile.write(empty, np.zeros((0, 1), np.float32), 16000)
    with pytest.raises(MediaError, match=r"empty.wav has no samples"):
        preprocess.audio_segments(empty)
    nan = tmp_path / "nan.wav"
    samples = np.zeros(16000, np.float32)
    samples[100] = np.nan
    soundfile.write(nan, samples, 16000, subtype="FLOAT")
    with pytest.raises(MediaError, match=r"nan.wav holds NaN or infinite samples"):
        preprocess.audio_segments(nan)


def test_long_and_short_audio_are_cut_and_padded(tmp_path):
    rng = np.random.default_rng(0)
    long = tmp_path / "long.wav"
    signal = rng.standard_normal(16000 * 12).astype(np.float32) * 0.1
    soundfile.write(long, signal, 16000)
    cut = tmp_path / "cut.wav"
    soundfile.write(cut, signal[:16000 * 10], 16000)
    np.testing.assert_array_equal(preprocess.audio_segments(long).numpy(), preprocess.audio_segments(cut).numpy())
    short = tmp_path / "short.wav"
    soundfile.write(short, signal[:16000 * 3], 16000)
    clips = preprocess.audio_segments(short)
    silent = (0 - preprocess.FBANK_MEAN) / preprocess.FBANK_STD
    assert np.isfinite(clips.numpy()).all() and clips.shape[0] == 10
    assert not np.allclose(clips[2].numpy(), clips[5].numpy()) and np.allclose(clips[5], clips[9])
    assert clips[9, 0, 0, -1] == pytest.approx(silent)  # the 204-frame padding
