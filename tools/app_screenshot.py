"""A screenshot of the web app on the demo's videos (for the README): the long demo video asked
about the demo's classes, the player moved to the second event (if there is one).

    make app   # once, to write the demo's videos (then stop it)
    python tools/app_screenshot.py --output docs/app.png
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools.app_browser import REPO, chromium, chromium_path, serving  # noqa: E402

WORDS = "dog barking, playing piano, baby laughter"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", required=True)
    parser.add_argument("--config", default="configs/demo/app.yaml")
    parser.add_argument("--videos", default="demo/videos")
    parser.add_argument("--video", default="long/6_clips_in_a_row.mp4", help="the video to pick, in --videos")
    parser.add_argument("--decoding", default="training-free v01", help="as the page names it")
    args = parser.parse_args(argv)
    if not (REPO / args.videos / args.video).is_file():
        sys.exit(f"error: no {args.video} in {args.videos}: run `make app` once to write the demo's videos")
    executable = chromium_path()
    if executable is None:
        sys.exit("error: no Chromium found (apt-get install chromium, or set OVAVEL_CHROMIUM to its path)")
    with tempfile.TemporaryDirectory() as folder, \
            serving(["--config", args.config, "--videos", args.videos], Path(folder) / "app.log", cwd=REPO) as url, \
            chromium(executable) as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.locator("#pick input").click()
        page.get_by_role("option", name=args.video).click()
        page.locator("#method input").click()
        page.get_by_role("option", name=args.decoding, exact=True).click()
        page.locator("#words textarea").fill(WORDS)
        page.locator("#words textarea").press("Enter")
        page.wait_for_selector(f'#timeline [data-names="{WORDS}"]', timeout=600_000)
        page.wait_for_function("() => document.querySelector('#player video')?.readyState >= 1", timeout=60_000)
        events = page.locator("#events tr.ovl-event")
        if events.count():
            events.nth(min(1, events.count() - 1)).click()
        page.wait_for_timeout(1500)
        page.screenshot(path=args.output, full_page=True)
    Image.open(args.output).quantize(256).save(args.output, optimize=True)  # a third of the bytes, same look
    print(f"screenshot: {args.output}")


if __name__ == "__main__":
    main()
