import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from common.errors import UserError
from conftest import REPO, synthetic_config, synthetic_overrides
from data import feature_cache, loading
from data.annotations import AnnotationIndex
from data.feature_cache import CacheError, FeatureCache
from data.loading import media_paths
from data.preprocess import MediaError, audio_segments, tokenize, video_frames
from models import segment_encoder
from models.families import imagebind as imagebind_family
from pipeline import extraction
from pipeline.extraction import ensure_features, extract

SPLITS = ("train", "val", "test")


@pytest.fixture(scope="module")
def reference_cache(synthetic_bench, tmp_path_factory):
    """One uninterrupted single-process extraction that other runs must equal."""
    config = synthetic_config(synthetic_bench, tmp_path_factory.mktemp("reference") / "cache")
    return extract(config, SPLITS)


def _assert_same_cache(a: FeatureCache, b: FeatureCache):
    for split in SPLITS:
        fa, fb = a.split(split), b.split(split)
        np.testing.assert_array_equal(fa.vid_names, fb.vid_names)
        # float32 rows: equal up to rounding (the summation order of a matrix product depends on
        # how many threads a process has; torchrun gives each process one)
        np.testing.assert_allclose(np.asarray(fa.audio), np.asarray(fb.audio), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(np.asarray(fa.vision), np.asarray(fb.vision), rtol=1e-5, atol=1e-6)
    names = ["other", "dog barking", "cat purring"]
    for modality in ("audio", "vision"):
        np.testing.assert_allclose(a.text(names, "{}", modality), b.text(names, "{}", modality), rtol=1e-5, atol=1e-6)


def _direct_embeddings(config, split):
    index = AnnotationIndex.load(config.data.meta_csv, config.data.label_json)
    videos = index.videos(split)
    encoder = extraction.build_encoder(config, torch.device("cpu"))
    audio, vision = [], []
    for vid, category in zip(videos.vid_names, videos.categories):
        wav, frames = media_paths(config.data.media_root, split, category, vid)
        audio.append(encoder.audio(audio_segments(wav)[None])[0].numpy())
        vision.append(encoder.vision(video_frames(frames)[None])[0].numpy())
    return videos, np.stack(audio), np.stack(vision), encoder, index


def test_cache_layout_and_rows_equal_direct_encoding(synthetic_bench, reference_cache, tmp_path):
    config = synthetic_config(synthetic_bench, reference_cache.root)
    videos, audio, vision, encoder, index = _direct_embeddings(config, "test")
    cached = reference_cache.split("test")
    np.testing.assert_array_equal(cached.vid_names, videos.vid_names)
    assert cached.audio.dtype == np.float32 and isinstance(cached.audio, np.memmap)  # the default, as published
    assert cached.audio.shape == (len(videos), 10, 16)
    np.testing.assert_allclose(np.asarray(cached.audio), audio, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(cached.vision), vision, rtol=1e-5, atol=1e-5)
    names = list(index.all_vocabulary.names)
    text = encoder.text(tokenize(names)).numpy()
    for modality in ("audio", "vision"):  # one ImageBind text tower serves both
        np.testing.assert_allclose(reference_cache.text(names, "{}", modality), text, rtol=1e-5, atol=1e-5)
    assert not (reference_cache.root / ".work").exists()


def test_float16_cache_is_within_one_rounding(synthetic_bench, tmp_path):
    config = synthetic_config(synthetic_bench, tmp_path / "cache16", "cache.dtype=float16", "extract.batch_size=1")
    cached = extract(config, ["val"]).split("val")
    _, audio, vision, _, _ = _direct_embeddings(config, "val")
    assert cached.audio.dtype == np.float16
    for stored, direct in ((cached.audio, audio), (cached.vision, vision)):
        scale = np.abs(direct).max(axis=-1, keepdims=True)
        assert (np.abs(stored.astype(np.float32) - direct) <= scale * 2.0 ** -10).all()


def _extract_command(bench, cache_dir, *extra, torchrun=False):
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"] \
        if torchrun else [sys.executable]
    return launcher + [str(REPO / "tools" / "extract_features.py"), "--config",
                       str(REPO / "configs" / "_base_" / "default.yaml"), *synthetic_overrides(bench, cache_dir, *extra)]


@pytest.mark.slow
def test_torchrun_resumes_a_partial_extraction(synthetic_bench, reference_cache, tmp_path, monkeypatch):
    cache_dir = tmp_path / "cache"
    config = synthetic_config(synthetic_bench, cache_dir, "extract.chunk_size=1")

    def killed_before_merge(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(extraction, "_merge", killed_before_merge)
    with pytest.raises(KeyboardInterrupt):
        extract(config, ["train"])
    chunks = sorted((cache_dir / ".work" / "train").glob("chunk_*.npz"))
    for chunk in chunks[::2]:
        chunk.unlink()  # half the chunks done, scattered
    result = subprocess.run(_extract_command(synthetic_bench, cache_dir, "extract.chunk_size=1", torchrun=True),
                            cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    _assert_same_cache(FeatureCache(cache_dir), reference_cache)


@pytest.mark.slow
def test_killed_extraction_resumes_without_redoing_finished_chunks(synthetic_bench, reference_cache, tmp_path,
                                                                   monkeypatch):
    cache_dir = tmp_path / "cache"
    work = cache_dir / ".work" / "train"
    process = subprocess.Popen(_extract_command(synthetic_bench, cache_dir, "extract.chunk_size=1",
                                                "extract.batch_size=1"),
                               cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(work.glob("chunk_*.npz"))) < 2:
        assert process.poll() is None, "extraction finished before it could be killed"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = {p.name for p in work.glob("chunk_*.npz")}
    assert finished and not (cache_dir / "train").exists()
    (cache_dir / ".train.merging").mkdir()  # as if a merge had been killed too
    (cache_dir / ".train.merging" / "audio.npy").write_bytes(b"half written")

    decoded = []
    original = loading.MediaDataset.__getitem__
    monkeypatch.setattr(loading.MediaDataset, "__getitem__",
                        lambda self, i: decoded.append(self.positions[i]) or original(self, i))
    config = synthetic_config(synthetic_bench, cache_dir, "extract.chunk_size=1", "extract.batch_size=1")
    resumed = extract(config, SPLITS)
    done = {int(name[len("chunk_"):-len(".npz")]) for name in finished}  # chunk_size 1: chunk = video
    num_train = len(resumed.split("train").vid_names)
    assert sorted(decoded[:num_train - len(done)]) == sorted(set(range(num_train)) - done)
    assert len(decoded) == sum(len(resumed.split(s).vid_names) for s in SPLITS) - len(done)
    _assert_same_cache(resumed, reference_cache)


def test_provenance_mismatch_is_an_error_naming_the_difference(synthetic_bench, reference_cache):
    config = synthetic_config(synthetic_bench, reference_cache.root, "encoder.precision=bf16", "cache.dtype=float16")
    index = AnnotationIndex.load(config.data.meta_csv, config.data.label_json)
    with pytest.raises(CacheError, match=r"(?s)made differently.*dtype: 'float32' -> 'float16'"
                                         r".*encoder.precision: 'fp32' -> 'bf16'"):
        ensure_features(config, ["test"], index)


def test_checkpoint_identity_is_compared_and_remembered(synthetic_bench, tmp_path, monkeypatch):
    torch.manual_seed(1)
    checkpoint = tmp_path / "weights.pth"
    from models.imagebind import build_imagebind
    torch.save(build_imagebind("tiny").state_dict(), checkpoint)
    config = synthetic_config(synthetic_bench, tmp_path / "cache", f"encoder.checkpoint={checkpoint}")
    cache = extract(config, ["val"])
    assert cache.provenance()["models"]["imagebind"]["sha256"] == feature_cache.file_sha256(checkpoint)
    index = AnnotationIndex.load(config.data.meta_csv, config.data.label_json)
    monkeypatch.setattr(feature_cache, "file_sha256", lambda path: pytest.fail("hash recomputed"))
    ensure_features(config, ["val"], index)  # same size and mtime: the remembered hash is used
    monkeypatch.undo()
    torch.manual_seed(2)
    torch.save(build_imagebind("tiny").state_dict(), checkpoint)  # other weights, same size
    with pytest.raises(CacheError, match=r"models.imagebind.sha256: '[0-9a-f]{64}' -> '[0-9a-f]{64}'"):
        ensure_features(config, ["val"], index)


def _broken_bench(synthetic_bench, tmp_path):
    bench = {k: v for k, v in synthetic_bench.items()}
    media = tmp_path / "media"
    shutil.copytree(synthetic_bench["media_root"], media)
    bench["media_root"] = media
    index = AnnotationIndex.load(bench["meta_csv"], bench["label_json"])
    test = index.videos("test")
    wav, _ = media_paths(media, "test", test.categories[1], test.vid_names[1])
    wav.write_bytes(b"RIFF garbage")
    return bench, test.vid_names[1], wav


def test_bad_media_stops_with_path_or_is_counted_when_allowed(synthetic_bench, tmp_path):
    bench, bad_vid, wav = _broken_bench(synthetic_bench, tmp_path)
    with pytest.raises(MediaError, match=rf"(?s)cannot read audio {wav}.*{bad_vid}.*skip_bad_media"):
        extract(synthetic_config(bench, tmp_path / "strict"), ["test"])
    cache = extract(synthetic_config(bench, tmp_path / "lenient", "extract.skip_bad_media=true"), ["test"])
    features = cache.split("test")
    assert list(features.excluded) == [bad_vid] and "cannot read audio" in features.excluded[bad_vid]
    assert bad_vid not in features.vid_names
    rows, excluded = features.rows(AnnotationIndex.load(bench["meta_csv"], bench["label_json"]).videos("test").vid_names)
    assert excluded.sum() == 1 and (rows[~excluded] >= 0).all()


def test_missing_frames_name_the_folder(synthetic_bench, tmp_path):
    bench, _, _ = _broken_bench(synthetic_bench, tmp_path)
    index = AnnotationIndex.load(bench["meta_csv"], bench["label_json"])
    val = index.videos("val")
    _, frames = media_paths(bench["media_root"], "val", val.categories[0], val.vid_names[0])
    (frames / "03.png").unlink()
    with pytest.raises(MediaError, match=rf"frame folder {frames} holds 9 images"):
        extract(synthetic_config(bench, tmp_path / "cache"), ["val"])


def test_unwritable_or_full_cache_folder(synthetic_bench, tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(CacheError, match=r"cannot write the feature cache at .*file/cache"):
        extract(synthetic_config(synthetic_bench, blocker / "cache"), ["val"])

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", full_disk)
    with pytest.raises(CacheError, match=r"cannot write the feature cache at .*: the disk is full.*resumes"):
        extract(synthetic_config(synthetic_bench, tmp_path / "full"), ["val"])
    monkeypatch.undo()

    def read_only(*args, **kwargs):
        raise PermissionError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(os, "replace", read_only)  # root ignores chmod, so simulate the file system
    with pytest.raises(CacheError, match=r"the file system is read-only"):
        extract(synthetic_config(synthetic_bench, tmp_path / "readonly"), ["val"])
    monkeypatch.undo()

    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10, 10, 1))
    with pytest.raises(CacheError, match=r"not enough disk space .* GB needed"):
        extract(synthetic_config(synthetic_bench, tmp_path / "small"), ["val"])


def test_no_cache_and_no_media_says_both_ways_out(synthetic_bench, tmp_path):
    config = synthetic_config(synthetic_bench, tmp_path / "cache", f"data.media_root={tmp_path / 'nowhere'}",
                              f"encoder.checkpoint={tmp_path / 'absent.pth'}")
    index = AnnotationIndex.load(config.data.meta_csv, config.data.label_json)
    with pytest.raises(UserError, match=r"(?s)lacks test.*checkpoint not found.*no media for the test split"
                                        r".*or point cache.dir at an existing cache"):
        ensure_features(config, ["test"], index)


def test_cache_from_another_video_list(synthetic_bench, reference_cache):
    with pytest.raises(CacheError, match=r"lack 1 of the 2 videos asked for .*'unknown_video'"):
        reference_cache.split("test").rows(np.array([reference_cache.split("test").vid_names[0], "unknown_video"]))


def test_full_disk_during_the_merge_is_one_message_and_a_rerun_finishes(synthetic_bench, reference_cache, tmp_path,
                                                                          monkeypatch):
    cache_dir = tmp_path / "cache"
    config = synthetic_config(synthetic_bench, cache_dir)

    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full)  # the merge allocates its arrays before writing them
    with pytest.raises(CacheError, match=rf"cannot write the feature cache at {cache_dir}/.train.merging: the disk "
                                         r"is full.*resumes"):
        extract(config, ["train"])
    assert not (cache_dir / ".train.merging").exists() and not (cache_dir / "train").exists()
    assert list((cache_dir / ".work" / "train").glob("chunk_*.npz"))  # the encoded chunks are kept
    monkeypatch.undo()
    extract(config, ["train"])
    np.testing.assert_array_equal(np.asarray(FeatureCache(cache_dir).split("train").audio),
                                  np.asarray(reference_cache.split("train").audio))


def test_non_finite_embeddings_are_never_cached(synthetic_bench, tmp_path, monkeypatch):
    config = synthetic_config(synthetic_bench, tmp_path / "cache", "encoder.precision=fp16")
    original = segment_encoder.SegmentEncoder.audio

    def overflowing(self, clips):
        out = original(self, clips)
        out[-1, 3] = float("inf")
        return out

    monkeypatch.setattr(segment_encoder.SegmentEncoder, "audio", overflowing)
    with pytest.raises(CacheError, match=r"NaN or infinite embeddings for 1 video\(s\) \('syn_val_\w+'\) under "
                                         r"encoder.precision=fp16.*use encoder.precision: bf16"):
        extract(config, ["val"])
    assert not FeatureCache(tmp_path / "cache").has_split("val")


def test_non_finite_or_truncated_cache_files_are_named(synthetic_bench, reference_cache, tmp_path):
    cache_dir = tmp_path / "cache"
    shutil.copytree(reference_cache.root, cache_dir)
    audio_path = cache_dir / "test" / "audio.npy"
    audio = np.load(audio_path)
    audio[1, 4, 0] = np.nan
    np.save(audio_path, audio)
    features = FeatureCache(cache_dir).split("test")
    with pytest.raises(CacheError, match=rf"{audio_path} holds NaN or infinite values \(row 1, video "
                                         rf"'{features.vid_names[1]}'.*--splits test --refresh"):
        features.gather(np.arange(len(features.vid_names)))
    audio_path.write_bytes(audio_path.read_bytes()[:-100])
    with pytest.raises(CacheError, match=rf"{audio_path} is damaged or truncated .*--splits test --refresh"):
        FeatureCache(cache_dir).split("test")


def test_refresh_re_extracts_a_split_after_its_media_were_fixed(synthetic_bench, reference_cache, tmp_path):
    bench, bad_vid, wav = _broken_bench(synthetic_bench, tmp_path)
    config = synthetic_config(bench, tmp_path / "cache", "extract.skip_bad_media=true")
    assert list(extract(config, ["test"]).split("test").excluded) == [bad_vid]
    shutil.copy(media_paths(synthetic_bench["media_root"], "test", wav.parent.name, bad_vid)[0], wav)  # fixed
    assert list(extract(config, ["test"]).split("test").excluded) == [bad_vid]  # a plain re-run reuses the split
    command = [sys.executable, str(REPO / "tools" / "extract_features.py"), "--splits", "test",
               *synthetic_overrides(bench, tmp_path / "cache", "extract.skip_bad_media=true"), "--refresh",
               "--config", str(REPO / "configs" / "_base_" / "default.yaml")]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    refreshed = FeatureCache(tmp_path / "cache").split("test")
    assert not refreshed.excluded
    np.testing.assert_array_equal(np.asarray(refreshed.audio), np.asarray(reference_cache.split("test").audio))


def test_bad_media_message_names_the_video_plainly(synthetic_bench, tmp_path):
    bench, bad_vid, _ = _broken_bench(synthetic_bench, tmp_path)
    with pytest.raises(MediaError) as err:
        extract(synthetic_config(bench, tmp_path / "cache"), ["test"])
    assert f"(video '{bad_vid}' of the test split" in str(err.value) and "np.str_" not in str(err.value)


SIMULATED_ONE_GPU = """
import torch
torch.cuda.is_available = lambda: True
torch.cuda.device_count = lambda: 1


def _set_device(device):
    index = device if isinstance(device, int) else torch.device(device).index
    if index is None or index >= 1:
        raise RuntimeError("CUDA error: invalid device ordinal")


torch.cuda.set_device = _set_device
"""


@pytest.mark.slow
@pytest.mark.slow
def test_torchrun_two_processes_give_the_same_cache_on_a_machine_with_one_gpu(synthetic_bench, reference_cache,
                                                                              tmp_path):
    """Two ranks share the work and give the cache one process gives; on a (simulated) one-GPU
    machine they coordinate over gloo and never ask for a GPU of their own when the config says
    cpu."""
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(SIMULATED_ONE_GPU)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(_extract_command(synthetic_bench, tmp_path / "cache", torchrun=True), cwd=REPO,
                            capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "[rank 1/2]" in result.stderr  # both ranks did work
    _assert_same_cache(FeatureCache(tmp_path / "cache"), reference_cache)


def test_random_weights_are_drawn_on_the_cpu_whatever_the_device(synthetic_bench, tmp_path, monkeypatch):
    config = synthetic_config(synthetic_bench, tmp_path / "cache")
    built = {}

    class Recorder:
        def __init__(self, model, device, precision):
            built.update(model=model, device=device)

    monkeypatch.setattr(imagebind_family, "ImageBindEncoder", Recorder)
    extraction.build_encoder(config, torch.device("cuda", 0))
    assert built["device"] == torch.device("cuda", 0)
    torch.manual_seed(imagebind_family.RANDOM_INIT_SEED)
    on_cpu = imagebind_family.build_imagebind(config.encoder.size, "cpu")
    for name, tensor in on_cpu.state_dict().items():
        assert built["model"].state_dict()[name].device.type == "cpu"
        assert torch.equal(built["model"].state_dict()[name], tensor), name


def test_decoding_workers_default_to_the_usable_cores_and_need_shared_memory(monkeypatch):
    monkeypatch.setattr(loading, "usable_cores", lambda: 16)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert loading.num_workers(None) == 14 and loading.num_workers(3) == 3
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")  # four torchrun ranks on this node share the cores
    assert loading.num_workers(None) == 3
    monkeypatch.setattr(loading, "usable_cores", lambda: 2)
    assert loading.num_workers(None) == 1
    monkeypatch.setattr(loading, "shared_memory_free", lambda: 64 * 2 ** 20)  # a default container
    with pytest.raises(UserError, match=r"/dev/shm has 64 MB free, but 14 decoding workers with "
                                        r"extract.batch_size=8 hand over about 1\d\d\d MB .*--shm-size=\dg.*"
                                        r"num_workers: 0"):
        loading.check_shared_memory(14, 8)
    loading.check_shared_memory(0, 8)  # no workers: nothing goes through /dev/shm
    monkeypatch.setattr(loading, "shared_memory_free", lambda: None)
    loading.check_shared_memory(14, 8)


def test_provenance_records_the_numerics(synthetic_bench, tmp_path):
    config = synthetic_config(synthetic_bench, tmp_path / "cache", "encoder.precision=tf32")
    encoder = extraction.wanted_provenance(config)["encoder"]
    assert encoder["precision"] == "tf32"
    assert encoder["numerics"] == {"autocast": None, "fp32_matmul": "tf32", "fp32_conv": "tf32"}


def _count_draw_encodings(monkeypatch):
    calls = []
    original = imagebind_family.ImageBindEncoder.audio_draw
    monkeypatch.setattr(imagebind_family.ImageBindEncoder, "audio_draw",
                        lambda self, clips, masks: calls.append(len(clips)) or original(self, clips, masks))
    return calls


def test_audio_draws_are_reproducible_extended_not_redone_and_checked(synthetic_bench, tmp_path, monkeypatch):
    from data import audio_draws

    cache_dir = tmp_path / "cache"
    # the small size: its second audio block has a drop rate above 0 (the tiny one has one block, rate 0)
    config = synthetic_config(synthetic_bench, cache_dir, "train.audio_draws=2", "encoder.size=small")
    calls = _count_draw_encodings(monkeypatch)
    extract(config, ["train"], audio_draws=2)
    train_videos = AnnotationIndex.load(config.data.meta_csv, config.data.label_json).videos("train")
    assert sum(calls) == 2 * len(train_videos)  # each draw encodes every video's audio once
    draws = audio_draws.AudioDraws(FeatureCache(cache_dir), "train", 2, 0.1)
    np.testing.assert_array_equal(draws.vid_names, train_videos.vid_names)

    # Draw k of a video is the encoder in train mode with that video's seeded masks.
    encoder = extraction.build_encoder(config, torch.device("cpu"))
    keep = torch.tensor(encoder.model.modality_trunks["audio"].drop_keep_probabilities())
    vid, category = str(train_videos.vid_names[3]), train_videos.categories[3]
    clips = audio_segments(media_paths(config.data.media_root, "train", category, vid)[0])[None]
    for k in (0, 1):
        masks = audio_draws.draw_masks(k, vid, keep, encoder.model.audio_tokens)
        np.testing.assert_allclose(draws.gather([3], k)[0], encoder.audio_draw(clips, masks)[0].numpy(), rtol=1e-5,
                                   atol=1e-5)
    eval_mode = FeatureCache(cache_dir).split("train").gather([3])[0][0]
    assert not np.allclose(draws.gather([3], 0)[0], eval_mode) and not np.allclose(draws.gather([3], 0),
                                                                                  draws.gather([3], 1))

    calls.clear()
    extract(config, ["train"], audio_draws=2)  # already there: nothing encoded
    assert not calls
    extract(config, ["train"], audio_draws=3)  # one more draw: only draw 2 is encoded
    assert sum(calls) == len(train_videos)
    before = np.array(draws.arrays[1])
    np.testing.assert_array_equal(audio_draws.AudioDraws(FeatureCache(cache_dir), "train", 3, 0.1).arrays[1], before)

    other_rate = synthetic_config(synthetic_bench, cache_dir, "train.audio_drop_path=0.2", "encoder.size=small")
    with pytest.raises(CacheError, match=r"train_audio_draws holds audio draws made with audio_drop_path 0.1 .*"
                                         r"asks for 0.2. Set train.audio_drop_path to match, or delete the folder"):
        extract(other_rate, ["train"], audio_draws=2)


@pytest.mark.slow
def test_audio_draws_resume_after_a_kill_and_match_two_processes(synthetic_bench, tmp_path, monkeypatch):
    from data import audio_draws

    small = ("train.audio_draws=2", "encoder.size=small")
    whole = tmp_path / "whole"
    extract(synthetic_config(synthetic_bench, whole, *small), ["train"], audio_draws=2)
    expected = audio_draws.AudioDraws(FeatureCache(whole), "train", 2, 0.1)

    cut = tmp_path / "cut"
    config = synthetic_config(synthetic_bench, cut, *small, "extract.chunk_size=1")
    merge = extraction._merge

    def killed_before_merging_the_draws(job, *args):
        if job.folder == "train_audio_draws":
            raise KeyboardInterrupt
        return merge(job, *args)

    monkeypatch.setattr(extraction, "_merge", killed_before_merging_the_draws)
    with pytest.raises(KeyboardInterrupt):
        extract(config, ["train"], audio_draws=2)
    monkeypatch.undo()
    chunks = sorted((cut / ".work" / "train_audio_draws.draw_000-draw_001").glob("chunk_*.npz"))
    assert len(chunks) == 6 and not (cut / "train_audio_draws").exists()
    for chunk in chunks[::2]:  # half the draws' chunks done, scattered
        chunk.unlink()
    result = subprocess.run(_extract_command(synthetic_bench, cut, *small, "extract.chunk_size=1",
                                             torchrun=True) + ["--splits", "train"],
                            cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    resumed = audio_draws.AudioDraws(FeatureCache(cut), "train", 2, 0.1)
    for k in (0, 1):
        np.testing.assert_allclose(np.asarray(resumed.arrays[k]), np.asarray(expected.arrays[k]), rtol=1e-5, atol=1e-6)

    # Killed while drawing 2-3, then asked for 5: the unfinished set is dropped, 2-4 are drawn.
    monkeypatch.setattr(extraction, "_merge", killed_before_merging_the_draws)
    with pytest.raises(KeyboardInterrupt):
        extract(synthetic_config(synthetic_bench, cut, *small), ["train"], audio_draws=4)
    monkeypatch.undo()
    assert (cut / ".work" / "train_audio_draws.draw_002-draw_003").is_dir()
    extract(synthetic_config(synthetic_bench, cut, *small), ["train"], audio_draws=5)
    assert not (cut / ".work").exists()
    assert audio_draws.AudioDraws(FeatureCache(cut), "train", 5, 0.1).count == 5


def test_each_modality_has_its_own_text_template(synthetic_bench, reference_cache, tmp_path):
    cache_dir = tmp_path / "cache"
    shutil.copytree(reference_cache.root, cache_dir)
    config = synthetic_config(synthetic_bench, cache_dir, "encoder.text_template_audio=the sound of {}")
    index = AnnotationIndex.load(config.data.meta_csv, config.data.label_json)
    cache = ensure_features(config, ["test"], index)  # only the audio's text is new
    names = list(index.all_vocabulary.names)
    encoder = extraction.build_encoder(config, torch.device("cpu"))
    np.testing.assert_allclose(cache.text(names, "the sound of {}", "audio"),
                               encoder.text(tokenize(names, "the sound of {}")).numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(cache.text(names, "{}", "vision"), reference_cache.text(names, "{}", "vision"))
    assert (cache_dir / "text" / "audio").is_dir() and (cache_dir / "text" / "vision").is_dir()


def test_a_cache_of_the_earlier_format_is_named_with_the_way_out(synthetic_bench, reference_cache, tmp_path):
    cache_dir = tmp_path / "cache"
    shutil.copytree(reference_cache.root, cache_dir)
    provenance = json.loads((cache_dir / "provenance.json").read_text())
    (cache_dir / "provenance.json").write_text(json.dumps({**provenance, "format_version": 1}))
    config = synthetic_config(synthetic_bench, cache_dir)
    with pytest.raises(CacheError, match=r"has format 1, written by an earlier version.*reads format 2.*"
                                         r"Point cache.dir at a new folder"):
        ensure_features(config, ["test"], AnnotationIndex.load(config.data.meta_csv, config.data.label_json))


def test_a_cache_made_with_other_preprocessing_is_refused(synthetic_bench, tmp_path, monkeypatch):
    config = synthetic_config(synthetic_bench, tmp_path / "cache")
    extract(config, ["val"])
    index = AnnotationIndex.load(config.data.meta_csv, config.data.label_json)
    made_with = imagebind_family.preprocessing()
    other = json.loads(json.dumps(made_with))
    other["audio"]["num_mel_bins"] = 64  # everything else as the cache was made
    assert other != made_with and set(other) == set(made_with)
    monkeypatch.setattr(imagebind_family, "preprocessing", lambda: other)
    with pytest.raises(CacheError, match=r"(?s)made differently.*preprocessing.audio.num_mel_bins: 128 -> 64"):
        ensure_features(config, ["val"], index)
