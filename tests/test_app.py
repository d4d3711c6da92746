"""The web app's handlers without a browser: a video and words in, status, timeline, events and
scores out; re-queries that encode no video; the --videos folder's confinement, the upload
limit and bad uploads; the safe launch settings."""

import dataclasses
import os
import re
import socket
import threading

import numpy as np
import pytest
import soundfile
import torch

pytest.importorskip("gradio", reason="the web app's requirements are not installed: pip install -r "
                                     "requirements-app.txt")

import app  # noqa: E402
from common import cli  # noqa: E402
from models.temporal import LAYOUT, TemporalModel, TemporalSettings  # noqa: E402
from pipeline.localize import Localizer  # noqa: E402
from stand_in import AUDIO_WIDTH, SCRIPT, VISION_WIDTH, write_scene  # noqa: E402
from webapp import page  # noqa: E402
from pipeline.localize import parse_class_text  # noqa: E402
from webapp.explorer import Explorer  # noqa: E402
from webapp.page import NO_WORDS, Handlers  # noqa: E402


@pytest.fixture
def videos(tmp_path):
    folder = tmp_path / "videos"
    write_scene(folder / "scene.mp4", SCRIPT)
    write_scene(folder / "sub" / "short.mkv", SCRIPT[:10])
    return folder


@pytest.fixture
def handlers(stand_in, videos):
    return Handlers(Explorer(Localizer(stand_in), videos, max_upload_mb=1))


def labelled_seconds(timeline: str, name: str) -> list[int]:
    """The seconds the timeline marks as labelled with the class (what its tooltip says), read
    back from its SVG."""
    row = timeline.split(f">{name}</span>")[1].split("</svg>")[0]
    return [int(t) for t, title in re.findall(r'<rect x="(\d+)"[^>]*><title>([^<]*)</title>', row)
            if title.endswith("(labelled)")]


def test_a_video_and_words_give_timeline_events_and_scores(handlers):
    assert handlers.explorer.choices() == ["scene.mp4", "sub/short.mkv"]
    video, status = handlers.pick("scene.mp4")
    assert video.endswith("scene.mp4") and status == ""
    answer, status, timeline, events, choice, scores = handlers.query(video, "dog barking, car horn,",
                                                                      "training-free v01")
    assert "video encoded now" in status and "20 s" in status and "training-free v01" in status
    assert labelled_seconds(timeline, "dog barking") == [3, 4, 5, 6]
    assert labelled_seconds(timeline, "car horn") == [12, 13, 14, 15]
    assert re.findall(r'<tr class="ovl-event" data-seek="(\d+)"><td[^>]*>([^<]+)</td><td>([^<]+)</td>', events) == [
        ("3", "dog barking", "00:03–00:07"), ("12", "car horn", "00:12–00:16")]
    assert choice["choices"] == ["dog barking", "car horn"] and choice["value"] == "dog barking"
    audio_line = re.search(r'<polyline[^>]*points="([^"]+)"', scores).group(1).split()
    assert len(audio_line) == 20 and audio_line[3] == "3.5,0.00"  # p_audio(dog barking) = 1 at second 3
    assert handlers.player(video, answer) == video
    car = handlers.scores(answer, "car horn")
    assert car.count('fill-opacity="0.18"') == 4 and handlers.scores(answer, "not asked") == ""


def test_other_words_reuse_the_stored_video(handlers):
    video, _ = handlers.pick("scene.mp4")
    first = handlers.query(video, "dog barking", "training-free v01")
    second = handlers.query(video, "car horn, dog barking", "training-free v01")
    assert "video encoded now" in first[1] and "2 new name(s) encoded" in first[1]  # with "other"
    assert "video not re-encoded" in second[1] and "1 new name(s) encoded" in second[1]
    assert labelled_seconds(second[2], "car horn") == [12, 13, 14, 15]
    third = handlers.query(video, "car horn", "training-free v0")  # no `other` column: every second agrees
    assert "training-free v0 " in third[1] and "video not re-encoded" in third[1] and "no new name" in third[1]
    assert labelled_seconds(third[2], "car horn") == list(range(20))


@pytest.mark.parametrize("name", ["../outside.mp4", "nowhere.mp4", "link.mp4", "/etc/passwd", ""])
def test_picking_cannot_leave_the_videos_folder(handlers, videos, name):
    write_scene(videos.parent / "outside.mp4", SCRIPT[:10])
    (videos / "link.mp4").symlink_to(videos.parent / "outside.mp4")
    assert "link.mp4" not in handlers.explorer.choices()
    video, status = handlers.pick(name)
    assert video is None
    assert "is not a video of the --videos folder" in status if name else "Pick a video" in status


def test_an_upload_over_the_limit_is_refused_with_the_key_to_change(handlers, tmp_path):
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * 1_000_001)
    video, status = handlers.upload(str(big))
    assert video is None and "big.mp4 is 1.0 MB; the limit is app.max_upload_mb = 1" in status


@pytest.mark.parametrize("make, reason", [
    (lambda path: path.write_text("not a video at all"), "(not_a_video): "),
    (lambda path: write_scene(path, SCRIPT[:10], audio=False), "(no_audio): no audio track"),
    (lambda path: write_scene(path, ["dog barking"], frames_per_second=3), "(too_short): less than one whole second"),
    (lambda path: soundfile.write(path, np.zeros(16000, np.float32), 16000, format="WAV"),
     "(no_picture): no video stream"),
])
def test_a_bad_upload_shows_the_localizers_reason(handlers, tmp_path, make, reason):
    path = tmp_path / "upload.mkv"
    make(path)
    video, _ = handlers.upload(str(path))
    answer, status, timeline, events, choice, scores = handlers.query(video, "dog barking", "training-free v01")
    assert status.startswith("**upload.mkv** could not be localized") and reason in status
    assert "Traceback" not in status and timeline == events == scores == ""
    assert handlers.player(video, answer) is None


@pytest.mark.parametrize("words, message", [
    ("dog barking, dog barking", "**Error:** duplicate class name(s): 'dog barking'"),
    ("dog barking, other", "**Error:** 'other' is the background class"),
    ("  ", NO_WORDS),
])
def test_word_mistakes_are_one_line_in_the_page(handlers, words, message):
    video, _ = handlers.pick("scene.mp4")
    assert handlers.query(video, words, "training-free v01")[1].startswith(message)
    assert handlers.query(video, "dog barking", "no such decoding")[1].startswith("**Error:** unknown decoding")


def test_words_are_split_on_commas_and_lines():
    assert parse_class_text("dog barking, car horn,\nlawn mower\n\n , siren") == [
        "dog barking", "car horn", "lawn mower", "siren"]
    assert parse_class_text('"hello, world", dog') == ["hello, world", "dog"]  # as localize.py --classes reads it


def test_the_benchmark_classes_come_from_the_configured_files(stand_in, shared):
    bench = shared / "ovavebench"
    explorer = Explorer(Localizer(stand_in), benchmark_files=(bench / "ovave_dataset_meta.csv",
                                                              bench / "released_ovavel_dataset_anno.json"))
    words, status = Handlers(explorer).benchmark_words("")
    assert len(parse_class_text(words)) == 67 and status == ""
    missing = Explorer(Localizer(stand_in), benchmark_files=("nowhere.csv", "nowhere.json"))
    words, status = Handlers(missing).benchmark_words("kept")
    assert words == "kept" and status.startswith("**Error:**") and "nowhere.csv" in status


def test_the_app_listens_on_loopback_with_the_configured_limits(stand_in, videos, monkeypatch):
    served = {}
    monkeypatch.setattr(page.gr.Blocks, "launch", lambda self, **settings: served.update(settings))
    monkeypatch.setattr(app, "Localizer", lambda config: Localizer(stand_in))
    app.main(["--videos", str(videos), "app.max_upload_mb=2.5"])
    assert served["server_name"] == "127.0.0.1" and served["max_file_size"] == 2_500_000
    assert served["allowed_paths"] == [str(videos.resolve())] and served["show_error"] is False
    with pytest.raises(app.UserError, match="--videos nowhere: no such folder"):
        app.main(["--videos", "nowhere"])


def test_a_checkpoint_is_offered_as_a_decoding(stand_in, videos, tmp_path):
    settings = TemporalSettings(attn_dim=4, ffn_dim=4, num_heads=1)
    widths = {"audio": AUDIO_WIDTH, "vision": VISION_WIDTH}
    torch.save({"model": TemporalModel(widths, settings).state_dict(), "temporal": dataclasses.asdict(settings),
                "layout": LAYOUT, "widths": widths, "epoch": 1}, tmp_path / "best.pt")
    handlers = Handlers(Explorer(Localizer(stand_in), videos, [tmp_path / "best.pt"]))
    label = f"checkpoint {tmp_path / 'best.pt'}"
    assert list(handlers.explorer.decodings) == ["training-free v01", "training-free v0", label]
    video, _ = handlers.pick("sub/short.mkv")
    answer = handlers.query(video, "dog barking, car horn", label)[0]
    assert answer.method.endswith("(v1)") and len(answer.result.labels) == 10
    assert np.isfinite(answer.result.audio_probability).all() and os.path.isfile(video)


def test_a_video_added_after_start_is_offered(handlers, videos):
    write_scene(videos / "new.webm", SCRIPT[:4], "libvpx", "libopus")
    update = handlers.videos()  # what the video chooser asks for when it is opened
    assert update["choices"] == ["new.webm", "scene.mp4", "sub/short.mkv"]
    video, status = handlers.pick("new.webm")
    assert video.endswith("new.webm") and status == ""


def test_the_answer_time_counts_the_wait_for_another_query(handlers):
    video, _ = handlers.pick("sub/short.mkv")
    handlers.query(video, "dog barking", "training-free v01")  # encoded: the next answers are quick
    handlers.explorer._busy.acquire()  # another query holds the localizer for 0.4 s
    threading.Timer(0.4, handlers.explorer._busy.release).start()
    answer, status, *_ = handlers.query(video, "dog barking", "training-free v01")
    assert answer.seconds >= 0.4 and answer.waited >= 0.35
    assert re.search(r"answered in (\d+\.\d+) s \((\d+\.\d+) s of it waiting for another query\)", status)


def test_a_port_in_use_is_one_line_and_status_2(stand_in, videos, monkeypatch, capsys):
    monkeypatch.setattr(app, "Localizer", lambda config: Localizer(stand_in))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as exit_info:
            cli.run(lambda: app.main(["--videos", str(videos), "--port", str(port)]))
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Traceback" not in err
    assert err.startswith(f"error: cannot listen on 127.0.0.1:{port}") and "choose another --port" in err
    assert err.count("\n") == 1


def test_an_upload_of_exactly_the_limit_is_accepted(handlers, tmp_path):
    exact = tmp_path / "exact.mp4"
    exact.write_bytes(b"\0" * 1_000_000)  # app.max_upload_mb = 1: 10^6 bytes
    video, status = handlers.upload(str(exact))
    assert video == str(exact) and status == ""
    answer, status, *_ = handlers.query(video, "dog barking", "training-free v01")
    assert "(not_a_video): " in status  # accepted, then found not to be a video


@pytest.mark.parametrize("name, accepted", [("upper.MP4", True), ("clip.3gp", True), ("clip.ogv", True),
                                            ("notes.txt", False), ("clip", False)])
def test_only_video_suffixes_are_offered_and_picked(handlers, videos, name, accepted):
    (videos / name).write_bytes((videos / "scene.mp4").read_bytes())
    assert (name in handlers.explorer.choices()) is accepted
    video, status = handlers.pick(name)
    assert (video is not None) is accepted
    assert status == "" if accepted else "is not a video of the --videos folder" in status


def test_a_cut_upload_is_localized_and_says_partial(handlers, tmp_path):
    write_scene(tmp_path / "whole.mkv", (SCRIPT + SCRIPT)[:30])
    data = (tmp_path / "whole.mkv").read_bytes()
    (tmp_path / "cut.mkv").write_bytes(data[:len(data) // 2])
    video, _ = handlers.upload(str(tmp_path / "cut.mkv"))
    answer, status, timeline, events, *_ = handlers.query(video, "dog barking, car horn", "training-free v01")
    assert answer.ok and answer.result.status == "partial" and "partial: the container declares 30.0 s" in status
    assert "dog barking" in timeline and handlers.player(video, answer) == video
