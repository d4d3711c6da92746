"""Durable writes: a file appears whole or not at all, and an OS error while writing (full disk,
read-only file system, no permission) becomes one message saying what could not be written
and the way out."""

from __future__ import annotations

import contextlib
import errno
import json
import os
from pathlib import Path

from common.errors import UserError

REASONS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
           errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
           errno.EPERM: "permission denied"}


class WriteError(UserError):
    """Something could not be written to disk."""


@contextlib.contextmanager
def writing(path: Path, what: str = "output", way_out: str = "write elsewhere", error=WriteError):
    """Translate OS errors inside the block into ``error``: ``cannot write <what> at <path>:
    <reason>. Free space or <way_out>``."""
    try:
        yield
    except OSError as err:
        reason = REASONS.get(err.errno, err.strerror or str(err))
        raise error(f"cannot write {what} at {path}: {reason}. Free space or {way_out}.") from None


def atomic_write(path: Path, write, **messages) -> None:
    """``write(file_object)`` to a temporary file, flushed to disk, then renamed over ``path``:
    readers see the old file or the whole new one, never a part. ``messages``: as :func:`writing`."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with writing(path, **messages):
        try:
            with open(tmp, "wb") as handle:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()


def atomic_write_json(path: Path, data, **messages) -> None:
    atomic_write(path, lambda f: f.write((json.dumps(data, indent=2, sort_keys=True) + "\n").encode()), **messages)
