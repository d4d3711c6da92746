"""The web app end to end in a real headless Chromium (Debian's, driven by Playwright): upload a
video the test writes, type words, read the events the page lists, jump the player to an event,
ask again with other words (the page says the video was not encoded again), and bad or
oversized uploads. Skipped with the reason where there is no browser, unless
OVAVEL_REQUIRE_BROWSER=1 (CI) makes that a failure."""

import os
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from common import config as config_io
from common.schema import Config
from conftest import REPO
from pipeline.localize import Localizer
from stand_in import SCRIPT, write_scene
from tools.app_browser import chromium, chromium_path, serving

TINY = ["encoder.size=tiny", "encoder.checkpoint=random", "device=cpu", "extract.num_workers=0"]


def _unavailable(reason: str):
    if os.environ.get("OVAVEL_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (OVAVEL_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    try:
        import gradio  # noqa: F401
        import playwright  # noqa: F401
    except ImportError as err:
        _unavailable(f"{err.name} is not installed: pip install -r requirements-dev.txt")
    executable = chromium_path()
    if executable is None:
        _unavailable("no Chromium found (apt-get install chromium, or set OVAVEL_CHROMIUM to its path)")
    with chromium(executable) as launched:
        yield launched


@dataclass
class Served:
    url: str
    folder: Path  # holds videos/ (the --videos folder), uploads/ (GRADIO_TEMP_DIR), cache/, app.log


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The app with the tiny random ImageBind, a --videos folder and a 1 MB upload limit; started
    once for the module's tests."""
    folder = tmp_path_factory.mktemp("served")
    write_scene(folder / "videos" / "on_disk.mp4", SCRIPT[:10])
    with serving(["--config", REPO / "configs" / "app.yaml", "--videos", folder / "videos", *TINY,
                  f"cache.dir={folder / 'cache'}", "app.max_upload_mb=1"], folder / "app.log", cwd=folder,
                 env={"GRADIO_TEMP_DIR": str(folder / "uploads")}) as url:
        yield Served(url, folder)


def expected_events(tmp_path, video, words, strategy):
    """What the localizer's Python API says, in the page's words."""
    config = config_io.load(Config, REPO / "configs" / "app.yaml", [*TINY, f"cache.dir={tmp_path / 'api_cache'}"])
    localizer = Localizer(config)
    [result] = localizer.localize([video], words, localizer.decoding(strategy))
    clock = lambda s: f"{int(s) // 60:02d}:{int(s) % 60:02d}"  # noqa: E731
    return [(e["class"], f"{clock(e['start'])}–{clock(e['end'])}") for e in result.events]


def status_with(page, text: str, timeout: float = 120_000) -> str:
    page.wait_for_function("t => document.querySelector('#status').innerText.includes(t)", arg=text,
                           timeout=timeout)
    return page.locator("#status").inner_text()


@pytest.mark.slow
def test_upload_words_events_and_a_requery_that_encodes_nothing(browser, served, tmp_path):
    video = tmp_path / "upload" / "scene.webm"
    write_scene(video, SCRIPT, codec="libvpx", audio_codec="libopus")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(served.url)
    page.locator("#words textarea").fill("dog barking, car horn")
    page.locator("#method input").click()
    page.get_by_role("option", name="training-free v0", exact=True).click()
    status_with(page, "Pick a video or upload one")
    page.locator("#upload input[type=file]").set_input_files(str(video))
    status = status_with(page, "video encoded now")
    assert "scene.webm" in status and "20 s" in status and "training-free v0" in status

    rows = page.locator("#events tr.ovl-event")
    shown = [tuple(rows.nth(i).locator("td").all_inner_texts()[:2]) for i in range(rows.count())]
    expected = expected_events(tmp_path, video, ["dog barking", "car horn"], "v0")
    assert shown == expected and expected, "the page lists the localizer's events"
    assert page.locator("#timeline .ovl-row .ovl-name").first.inner_text() == expected[0][0]

    page.wait_for_function("() => document.querySelector('#player video')?.readyState >= 1", timeout=30_000)
    target = page.locator("#events tr.ovl-event").last
    start = float(target.get_attribute("data-seek"))
    assert start > 1.5, "a jump the playhead can be seen to follow"
    target.click()
    page.wait_for_function("s => Math.abs(document.querySelector('#player video').currentTime - s) < 0.6",
                           arg=start, timeout=10_000)
    page.wait_for_function("s => Math.abs(document.querySelector('#timeline .ovl-playhead').getAttribute('x1') - s)"
                           " < 1.5", arg=start, timeout=10_000)  # the playhead follows the player

    words = page.locator("#words textarea")
    words.fill("car horn, lawn mower, dog barking")
    asked = time.perf_counter()
    words.press("Enter")
    status = status_with(page, "1 new name(s) encoded")
    print(f"re-query seen in the browser after {time.perf_counter() - asked:.2f} s")
    assert "video not re-encoded" in status
    assert page.locator("#score-class input").input_value() in ("car horn", "lawn mower", "dog barking")
    assert page.locator("#scores svg.ovl-chart polyline").count() == 3
    assert any(url.startswith(f"{served.url}gradio_api/") for url in requested)  # the listener saw the page's own
    assert [url for url in requested if not url.startswith((served.url, "data:", "blob:"))] == [], \
        "the page loads nothing from outside the app"
    page.screenshot(path=str(tmp_path / "app.png"), full_page=True)
    assert (tmp_path / "app.png").stat().st_size > 20_000


@pytest.mark.slow
def test_bad_and_oversized_uploads_and_the_videos_folder(browser, served, tmp_path):
    page = browser.new_page()
    page.goto(served.url)
    page.locator("#words textarea").fill("dog barking")
    notes = tmp_path / "notes.mp4"
    notes.write_text("not a video at all")
    page.locator("#upload input[type=file]").set_input_files(str(notes))
    status = status_with(page, "could not be localized")
    assert "(not_a_video): " in status and "Traceback" not in page.content()

    page.locator("#pick input").click()
    assert page.get_by_role("option").all_inner_texts() == ["on_disk.mp4"]
    page.get_by_role("option", name="on_disk.mp4").click()
    assert "on_disk.mp4 · 10 s" in status_with(page, "video encoded now")

    big = tmp_path / "big.mp4"
    big.write_bytes(os.urandom(1_500_000))
    page.locator("#upload button[aria-label=Clear]").click()
    page.locator("#upload input[type=file]").set_input_files(str(big))
    page.wait_for_function("() => /exceed|too large|maximum/i.test(document.body.innerText)", timeout=20_000)
    assert "big.mp4" not in page.locator("#status").inner_text()
    assert list((served.folder / "uploads").rglob("notes.mp4")), "uploads are kept in GRADIO_TEMP_DIR"
    assert not list((served.folder / "uploads").rglob("big.mp4")), "the server kept an upload over the limit"
    assert re.search(r"on_disk\.mp4 · 10 s", page.locator("#status").inner_text())


@pytest.mark.slow
def test_the_server_serves_the_videos_folder_and_nothing_outside_it(served, tmp_path):
    """What the README promises, from the served files' side: the --videos folder is served, and
    a file outside it is refused however it is reached (a path, ``..``, a link, the cache)."""
    videos = served.folder / "videos"
    (tmp_path / "secret.txt").write_text("secret")
    (videos / "link.mp4").symlink_to(tmp_path / "secret.txt")

    def status(path) -> int:
        try:
            with urllib.request.urlopen(f"{served.url}gradio_api/file={path}", timeout=30) as answer:
                return answer.status
        except urllib.error.HTTPError as err:
            return err.code

    assert status(videos / "on_disk.mp4") == 200
    for outside in (tmp_path / "secret.txt", videos / ".." / "secret.txt", videos / "link.mp4", "/etc/passwd",
                    served.folder / "app.log", served.folder / "cache" / "provenance.json"):
        assert status(outside) == 403, outside
