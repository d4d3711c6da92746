"""Benchmark: how fast the web app answers new words on a 10-minute video that is already
encoded, with the small random ImageBind on the CPU, measured in one run.

1. The page's query handler (localizer + HTML), called directly: the first query encodes the
   video, then each re-query asks three new class names (only those are encoded), then the same
   names with the other training-free rule (nothing is encoded).
2. The same re-queries through the running app in headless Chromium (where Playwright and a
   Chromium are installed): from pressing Enter to the new timeline on the page.

    python tools/bench_app.py [--minutes 10] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import cli  # noqa: E402
from tools.app_browser import chromium, chromium_path, serving  # noqa: E402
from tools.bench_localize import write_scenes  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
NEW_WORDS = [["dog barking", "car horn", "glass breaking"], ["crowd cheering", "chainsaw", "helicopter"],
             ["baby crying", "lawn mower", "thunder"], ["violin", "drum", "siren"], ["applause", "train horn", "rain"],
             ["typing", "cat meowing", "water running"], ["footsteps", "church bell ringing", "frog croaking"]]


def overrides(work: Path) -> list[str]:
    return ["encoder.size=small", "encoder.checkpoint=random", "device=cpu", f"cache.dir={work / 'cache'}",
            "extract.num_workers=0"]


def handler_times(work: Path, video: Path, repeats: int) -> dict:
    from common import config as config_io
    from common.schema import Config
    from pipeline.localize import Localizer
    from webapp.explorer import Explorer
    from webapp.page import Handlers

    config = config_io.load(Config, REPO / "configs" / "app.yaml", overrides(work))
    handlers = Handlers(Explorer(Localizer(config), video.parent))
    start = time.perf_counter()
    first = handlers.query(str(video), ", ".join(NEW_WORDS[0]), "training-free v01")
    encode = time.perf_counter() - start
    assert "video encoded now" in first[1], first[1]
    new, other_rule = [], []
    for words in NEW_WORDS[1:repeats + 1]:
        start = time.perf_counter()
        answer, status, *_ = handlers.query(str(video), ", ".join(words), "training-free v01")
        new.append((time.perf_counter() - start, answer.seconds))
        assert "video not re-encoded" in status and "3 new name(s)" in status, status
        start = time.perf_counter()
        status = handlers.query(str(video), ", ".join(words), "training-free v0")[1]
        other_rule.append(time.perf_counter() - start)
        assert "no new name encoded" in status, status
    return {"encode": encode, "segments": len(first[0].result.labels), "new": new, "other_rule": other_rule}


def browser_times(work: Path, video: Path, repeats: int) -> list[float] | str:
    """Enter-to-timeline times in headless Chromium, or why they could not be measured."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "Playwright is not installed"
    executable = chromium_path()
    if executable is None:
        return "no Chromium found"
    arguments = ["--config", REPO / "configs" / "app.yaml", "--videos", video.parent, *overrides(work)]
    times = []
    with serving(arguments, work / "app.log") as url, chromium(executable) as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.locator("#pick input").click()
        page.get_by_role("option", name=video.name).click()
        for words in NEW_WORDS[:repeats + 1]:
            asked = ", ".join(f"{name} outdoors" for name in words)  # three names not asked before
            box = page.locator("#words textarea")
            box.fill(asked)
            start = time.perf_counter()
            box.press("Enter")
            page.wait_for_selector(f'#timeline [data-names="{asked}"]', timeout=600_000)
            times.append(time.perf_counter() - start)
    return times[1:]  # the first may still wait for the pick's own query


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5, choices=range(1, len(NEW_WORDS) - 1))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        video = work / "videos" / f"scenes_{args.minutes}min.mp4"
        video.parent.mkdir()
        write_scenes(video, 60 * args.minutes)
        handler = handler_times(work, video, args.repeats)
        browser = browser_times(work, video, args.repeats)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; ImageBind-small, random weights, CPU")
    new = [total for total, _ in handler["new"]]
    print(f"{handler['segments']} s video: first query (encodes the video) {handler['encode']:.1f} s")
    print(f"re-query, 3 new names, in the handler: median {statistics.median(new):.3f} s, max {max(new):.3f} s "
          f"(localizer {statistics.median(a for _, a in handler['new']):.3f} s); "
          f"{handler['encode'] / statistics.median(new):.0f}x faster than the first query")
    print(f"re-query, other rule, nothing new: median {statistics.median(handler['other_rule']):.3f} s, "
          f"max {max(handler['other_rule']):.3f} s")
    if isinstance(browser, str):
        print(f"in the browser: not measured ({browser})")
    else:
        print(f"re-query seen in headless Chromium (Enter to new timeline, 3 new names): median "
              f"{statistics.median(browser):.3f} s, max {max(browser):.3f} s")


if __name__ == "__main__":
    cli.run(main)
