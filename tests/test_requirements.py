"""The lock file and the ranges agree: every locked version lies in requirements*.txt's ranges (a
range edited without `make lock` fails here), and every package the ranges name is locked."""

import re

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from conftest import REPO
from tools.compare_lock import PIN, differences, locked

FILES = ("requirements.txt", "requirements-app.txt", "requirements-dev.txt")


def ranges() -> list[Requirement]:
    found = []
    for name in FILES:
        for line in (REPO / name).read_text().splitlines():
            line = line.split("#")[0].strip()
            if line and not line.startswith("-r"):
                found.append(Requirement(line))
    return found


def all_pins() -> dict[str, set[str]]:
    pins: dict[str, set[str]] = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        match = PIN.match(line)
        if match:
            pins.setdefault(canonicalize_name(match[1]), set()).add(match[2])
    return pins


@pytest.mark.parametrize("requirement", ranges(), ids=str)
def test_every_locked_version_lies_in_its_range(requirement):
    versions = all_pins().get(canonicalize_name(requirement.name))
    assert versions, f"{requirement.name} is not in requirements.lock: run `make lock`"
    for version in versions:
        assert requirement.specifier.contains(version, prereleases=True), \
            f"requirements.lock has {requirement.name}=={version}, outside {requirement}: run `make lock`"


def test_every_pin_has_hashes():
    text = (REPO / "requirements.lock").read_text()
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
    assert blocks and all("--hash=sha256:" in block for block in blocks if PIN.match(block.splitlines()[0]))


def test_the_comparison_names_a_package_at_another_version(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("pytest==0.0.1 \\\n    --hash=sha256:00\nnot-installed-anywhere==1.0 ; python_version >= '3'\n"
                    "numpy==2.4.6 ; sys_platform == 'no-such-platform'\n")
    pins = locked(lock)
    assert "numpy" not in pins  # its marker does not apply here
    assert {name: installed != "absent" for name, _, installed in differences(pins)} == {
        "not-installed-anywhere": False, "pytest": True}
