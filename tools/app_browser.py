"""The web app served in a subprocess and a headless Chromium to look at it: shared by the
browser test, the app benchmark and the screenshot tool."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Headless, and quiet: without the background-networking flags Chromium keeps trying to reach
# Google's hosts, which a closed network refuses.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str | None:
    return os.environ.get("OVAVEL_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serving(arguments, log: Path, cwd: Path | None = None, env: dict | None = None):
    """``python app.py ARGUMENTS`` on a free port until the block ends; yields its address once
    it answers. A server that exits first raises with its log."""
    port = free_port()
    with open(log, "w") as output:
        server = subprocess.Popen([sys.executable, str(REPO / "app.py"), "--port", str(port), *map(str, arguments)],
                                  cwd=cwd, stdout=output, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        url = f"http://127.0.0.1:{port}/"
        try:
            for _ in range(1200):
                if server.poll() is not None:
                    raise RuntimeError(f"the app exited: {Path(log).read_text()}")
                try:
                    urllib.request.urlopen(url, timeout=1)
                    break
                except OSError:
                    time.sleep(0.1)
            else:
                raise RuntimeError(f"the app did not answer within 2 minutes: {Path(log).read_text()}")
            yield url
        finally:
            server.terminate()
            server.wait(timeout=30)


@contextmanager
def chromium(executable: str):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()
