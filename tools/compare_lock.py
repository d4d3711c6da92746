"""Which installed packages differ from requirements.lock: `make test-latest` prints them before
its tests, so a release that breaks the toolkit is named among them.

    python tools/compare_lock.py [--lock requirements.lock]
"""

from __future__ import annotations

import argparse
import re
from importlib import metadata
from pathlib import Path

from packaging.markers import Marker
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


def locked(lock: Path) -> dict[str, str]:
    """``{name: version}`` of the lock's pins that apply to this interpreter and platform."""
    pins = {}
    for line in lock.read_text().splitlines():
        match = PIN.match(line)
        if match and (match[3] is None or Marker(match[3]).evaluate()):
            pins[canonicalize_name(match[1])] = match[2]
    return pins


def differences(pins: dict[str, str]) -> list[tuple[str, str, str]]:
    """(name, locked, installed or 'absent') for every pin the environment does not match."""
    found = []
    for name, version in sorted(pins.items()):
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = "absent"
        if installed != version:
            found.append((name, version, installed))
    return found


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lock", default=str(REPO / "requirements.lock"), help="the lock file (default: the repo's)")
    args = parser.parse_args(argv)
    changed = differences(locked(Path(args.lock)))
    if not changed:
        print("every package is at its locked version")
    for name, version, installed in changed:
        print(f"{name}: locked {version}, installed {installed}")


if __name__ == "__main__":
    main()
