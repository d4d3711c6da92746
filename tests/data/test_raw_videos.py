import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
from PIL import Image

from common.errors import UserError
from conftest import REPO
from data import preprocess
from data.raw_videos import FRAME_TIMES, SAMPLE_RATE, prepare_video
from data.synthetic import write_video
from tools import prepare_videos

FPS = 5


def encode_video(path, seconds: float, audio: bool = True, codec: str = "libx264", audio_codec: str = "aac",
                 size=(64, 48)):
    """Frame k is flat grey 4*k, so the frame chosen for a time tells its timestamp; the
    audio is a 440 Hz stereo tone at 44.1 kHz."""
    rate = 48000 if audio_codec == "libopus" else 44100
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(rate * seconds)) / rate)).astype(np.float32)
    pictures = (np.full((size[1], size[0], 3), 4 * k, np.uint8) for k in range(int(seconds * FPS)))
    write_video(path, pictures, np.stack([tone] * 2)[None] if audio else None, FPS, rate, "stereo", codec,
                audio_codec)


def test_frames_at_segment_midpoints_and_16k_audio(tmp_path):
    source = tmp_path / "clip.mp4"
    encode_video(source, 12)
    wav, frames = tmp_path / "out" / "clip.wav", tmp_path / "out" / "clip"
    assert prepare_video(source, wav, frames).status == "ok"
    images = sorted(frames.glob("*.png"))
    assert len(images) == 10
    for i, image in enumerate(images):
        expected_frame = int(FRAME_TIMES[i] * FPS + 1e-9)  # the frame on screen at i + 0.5 s
        assert abs(np.asarray(Image.open(image)).mean() - 4 * expected_frame) < 3, image.name
    samples, rate = soundfile.read(wav)
    assert rate == SAMPLE_RATE and samples.ndim == 1 and samples.size == 10 * SAMPLE_RATE
    spectrum = np.abs(np.fft.rfft(samples[SAMPLE_RATE:2 * SAMPLE_RATE]))
    assert abs(np.argmax(spectrum) - 440) <= 2  # 1 Hz bins over one second
    assert tuple(preprocess.video_frames(frames).shape) == preprocess.FRAMES_SHAPE
    assert tuple(preprocess.audio_segments(wav).shape) == preprocess.AUDIO_SHAPE
    assert prepare_video(source, wav, frames).status == "done_before"


def test_a_phone_clip_and_a_late_sound_are_prepared_as_a_player_plays_them(tmp_path):
    picture = np.zeros((48, 64, 3), np.uint8)
    picture[:16, :16] = (255, 0, 0)  # a red square at the top left of the stored frame
    t = np.arange(12 * 48000) / 48000
    tone = (0.3 * np.sin(2 * np.pi * 440 * t) * (t >= 4)).astype(np.float32)[None]  # heard from 6 s on
    write_video(tmp_path / "phone.mp4", [picture] * (12 * FPS), [tone], FPS, 48000, rotation=-90, sound_start=2)
    wav, frames = tmp_path / "o" / "phone.wav", tmp_path / "o" / "phone"
    assert prepare_video(tmp_path / "phone.mp4", wav, frames).status == "ok"
    first = np.asarray(Image.open(sorted(frames.glob("*.png"))[0]))
    assert first.shape == (64, 48, 3)  # portrait, as a player shows it
    red = np.argwhere(first[..., 0] > 200)
    assert red[:, 0].mean() < 16 and red[:, 1].mean() > 32  # turned clockwise: the square is at the top right
    samples, _ = soundfile.read(wav)
    loud = [int(np.abs(samples[s * SAMPLE_RATE:(s + 1) * SAMPLE_RATE]).mean() > 0.05) for s in range(10)]
    assert loud == [0] * 6 + [1] * 4  # the sound's own seconds: silent before it starts, the tone from 6 s


def test_webm_with_opus(tmp_path):
    source = tmp_path / "clip.webm"
    encode_video(source, 10.4, codec="libvpx", audio_codec="libopus")
    outcome = prepare_video(source, tmp_path / "o" / "clip.wav", tmp_path / "o" / "clip")
    assert outcome.status == "ok", outcome.detail


@pytest.mark.parametrize("name, make, status, detail", [
    ("short.mp4", lambda p: encode_video(p, 6), "too_short", "lasts 6.00 s"),
    ("mute.mkv", lambda p: encode_video(p, 11, audio=False), "no_audio", "no audio track"),
    ("broken.mp4", lambda p: p.write_bytes(b"\x00not a video" * 50), "undecodable", ""),
])
def test_unusable_videos_are_reported_not_written(tmp_path, name, make, status, detail):
    source = tmp_path / name
    make(source)
    wav, frames = tmp_path / "o" / "x.wav", tmp_path / "o" / "x"
    outcome = prepare_video(source, wav, frames)
    assert outcome.status == status and detail in outcome.detail
    assert not wav.exists() and not frames.exists()


def test_tool_prepares_the_layout_with_workers_and_a_report(tmp_path, capsys):
    raw = tmp_path / "raw" / "nested"
    raw.mkdir(parents=True)
    encode_video(raw / "good1.mp4", 10.2)
    encode_video(raw / "good2.mkv", 12)
    encode_video(raw / "short.mp4", 4)
    rows = [("test", "dog barking", "close", "good1"), ("test", "cat purring", "open", "good2"),
            ("test", "dog barking", "close", "short"), ("train", "dog barking", "close", "absent")]
    meta, labels = tmp_path / "meta.csv", tmp_path / "labels.json"
    with open(meta, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["split", "cls_name", "cls_type", "vid_name"])
        writer.writerows(rows)
    labels.write_text(json.dumps({vid: {"category": cls, "label": str([1] * 10)} for _, cls, _, vid in rows}))
    media = tmp_path / "media"
    argv = ["--videos", str(tmp_path / "raw"), "--workers", "2", f"data.meta_csv={meta}",
            f"data.label_json={labels}", f"data.media_root={media}"]
    prepare_videos.main(argv)
    assert (media / "test" / "audio" / "dog barking" / "good1.wav").is_file()
    assert len(list((media / "test" / "video" / "cat purring" / "good2").glob("*.png"))) == 10
    with open(media / "prepare_report.csv", newline="") as handle:
        report = {row["vid_name"]: row for row in csv.DictReader(handle)}
    assert {vid: row["status"] for vid, row in report.items()} == {
        "good1": "ok", "good2": "ok", "short": "too_short", "absent": "not_found"}
    assert "not_found: 1, ok: 2, too_short: 1" in capsys.readouterr().out
    prepare_videos.main(argv)  # resumable: nothing is redone
    with open(media / "prepare_report.csv", newline="") as handle:
        statuses = {row["vid_name"]: row["status"] for row in csv.DictReader(handle)}
    assert statuses["good1"] == statuses["good2"] == "done_before"


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:  # fields after the command: state, ppid, ...
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find the worker processes")
def test_killing_the_tool_ends_its_workers(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for k in range(6):
        encode_video(raw / f"v{k}.mp4", 10.2, size=(320, 240))
    meta, labels = tmp_path / "meta.csv", tmp_path / "labels.json"
    meta.write_text("split,cls_name,cls_type,vid_name\n" + "".join(f"test,dog,close,v{k}\n" for k in range(6)))
    labels.write_text(json.dumps({f"v{k}": {"category": "dog", "label": str([1] * 10)} for k in range(6)}))
    tool = subprocess.Popen([sys.executable, str(REPO / "tools" / "prepare_videos.py"), "--videos", str(raw),
                             "--workers", "2", f"data.meta_csv={meta}", f"data.label_json={labels}",
                             f"data.media_root={tmp_path / 'media'}"], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while len(workers := _children(tool.pid)) < 2:
        assert tool.poll() is None and time.time() < deadline, "the tool ended before its workers started"
        time.sleep(0.05)
    tool.send_signal(signal.SIGKILL)
    tool.wait()
    deadline = time.time() + 10
    while any(_alive(pid) for pid in workers) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers)


def stuck_on_the_second(source, wav, frames, track):
    """A job that hangs on video b, as a decoder blocked in FFmpeg would."""
    if frames.name == "b":
        time.sleep(3600)
    return prepare_video(source, wav, frames, track)


def test_a_worker_that_stops_answering_is_named_and_the_others_are_prepared(tmp_path):
    for name in "abc":
        encode_video(tmp_path / f"{name}.mp4", 10.2)
    jobs = [(tmp_path / f"{name}.mp4", tmp_path / "o" / f"{name}.wav", tmp_path / "o" / name) for name in "abc"]
    start = time.monotonic()
    outcomes = prepare_videos.prepare_all(jobs, 2, None, 5, work=stuck_on_the_second)
    assert time.monotonic() - start < 60
    assert [(o.vid_name, o.status) for o in outcomes] == [("a", "ok"), ("b", "timed_out"), ("c", "ok")]
    assert "b.mp4 stopped answering for 5 s (video.worker_timeout)" in outcomes[1].detail


def test_splits_without_rows_are_refused(tmp_path):
    meta, labels = tmp_path / "meta.csv", tmp_path / "labels.json"
    meta.write_text("split,cls_name,cls_type,vid_name\ntest,dog barking,close,v\n")
    labels.write_text(json.dumps({"v": {"category": "dog barking", "label": str([1] * 10)}}))
    (tmp_path / "raw").mkdir()
    with pytest.raises(UserError, match=r"has no rows of split train \(--splits\); its splits: test"):
        prepare_videos.main(["--videos", str(tmp_path / "raw"), "--splits", "train", f"data.meta_csv={meta}",
                             f"data.label_json={labels}", f"data.media_root={tmp_path / 'media'}"])
    assert not (tmp_path / "media").exists()


@pytest.mark.slow
def test_ctrl_c_in_a_terminal_ends_the_workers_with_one_line(tmp_path):
    rows = [("test", "dog barking", "close", f"v{i:02d}") for i in range(16)]
    for _, _, _, vid in rows:
        encode_video(tmp_path / "raw" / f"{vid}.mp4", 10.2)
    meta, labels = tmp_path / "meta.csv", tmp_path / "labels.json"
    with open(meta, "w", newline="") as handle:
        csv.writer(handle).writerows([("split", "cls_name", "cls_type", "vid_name"), *rows])
    labels.write_text(json.dumps({vid: {"category": cls, "label": str([1] * 10)} for _, cls, _, vid in rows}))
    argv = [sys.executable, str(REPO / "tools" / "prepare_videos.py"), "--videos", str(tmp_path / "raw"), "--workers",
            "2", f"data.meta_csv={meta}", f"data.label_json={labels}", f"data.media_root={tmp_path / 'media'}"]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while len(list((tmp_path / "media").rglob("*.wav"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "interrupted" in err and "Traceback" not in err, err[-3000:]
    again = subprocess.run(argv, capture_output=True, text=True, timeout=300)  # resumes: the rest is prepared
    assert again.returncode == 0 and "ok:" in again.stdout and "done_before:" in again.stdout, again.stderr[-2000:]
