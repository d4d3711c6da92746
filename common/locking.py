"""One owner per folder: a run folder, an evaluation folder or a feature cache is written by
one job at a time, so two runs can never mix their files.

The lock is ``flock`` on ``<folder>/.lock``: the kernel releases it when the holding process
ends in any way (even ``kill -9``), so a killed run never leaves a stale lock behind. The
file's text (pid, host, start time, command) only serves the message a second job gets.
"""

from __future__ import annotations

import fcntl
import os
import socket
import sys
import time
from pathlib import Path

from common.errors import UserError

LOCK_FILE = ".lock"


class FolderBusy(UserError):
    """Another process owns the folder."""


def lock_file(path, wait: bool = False) -> int | None:
    """An exclusive ``flock`` on ``path`` (created if need be): its descriptor, or None when
    another process holds it and ``wait`` is false. The kernel releases it when the descriptor is
    closed or the process ends in any way."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


class FolderLock:
    def __init__(self, folder, what: str, remedy: str):
        self.folder = Path(folder)
        self.what = what  # e.g. "training run"
        self.remedy = remedy  # what to do instead, e.g. "set output.name to start another run"
        self._fd: int | None = None

    @property
    def path(self) -> Path:
        return self.folder / LOCK_FILE

    def acquire(self) -> "FolderLock":
        """Take the folder or raise :class:`FolderBusy` at once (never waits)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = lock_file(self.path)
        if fd is None:
            holder = self.path.read_text(errors="replace").strip() or "another process"
            raise FolderBusy(f"{self.folder} is in use by another {self.what} ({holder}); wait for it to end, "
                             f"or {self.remedy}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, (f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}: "
                       f"{' '.join(sys.argv)}\n").encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
