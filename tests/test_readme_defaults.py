"""The README's tables of defaults say what the configs do: a default changed in a config (the
published learning rate, the app's upload limit) without the README, or the other way round,
fails here."""

import dataclasses
import re

import pytest

from common import config as config_io
from common.schema import Config
from conftest import REPO

README = (REPO / "README.md").read_text()
# Rows whose default is a pointer or a description, not a value.
DESCRIBED = {"temporal.*", "train.*", "cuerator.*", "complex.*", "phase_gan.*", "data.meta_csv", "data.label_json",
             "train.lr_milestones"}


def table(header: str) -> list[tuple[list[str], list[str]]]:
    """(keys, defaults) of each row of the README table under ``header``."""
    lines = README.split(header + "\n", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    rows = []
    for line in lines:
        keys_cell, default_cell = [cell.strip() for cell in line.strip("|").split("|")][:2]
        keys = re.findall(r"`([^`]+)`", keys_cell)
        rows.append((keys, [d.strip() for d in default_cell.split(",")]))
    return rows


def value(text: str):
    """A README default as the YAML value it stands for."""
    text = text.split(" = ")[0].strip().strip("`")
    if text in ("null", "true", "false"):
        return {"null": None, "true": True, "false": False}[text]
    if re.fullmatch(r"-?[\d.]+(e-?\d+)?", text):
        return float(text)
    return text.strip('"')


def configured(path, key: str):
    """A key's value in a config file (after ``_base_``), or the schema's default where the file
    does not set it (no derived values: ``cache.dir`` stays null)."""
    tree = config_io.read_config_tree(path)
    section, _, name = key.rpartition(".")
    if section in tree and name in tree[section]:
        return tree[section][name]
    if not section and name in tree:
        return tree[name]
    holder = next(f for f in dataclasses.fields(Config) if f.name == section) if section else None
    fields = dataclasses.fields(holder.default_factory()) if holder else dataclasses.fields(Config)
    return next(f.default for f in fields if f.name == name)


def rows_against(header: str, config_for):
    checked = 0
    for keys, defaults in table(header):
        if set(keys) & DESCRIBED or "full" in defaults:
            continue
        defaults = defaults * len(keys) if len(defaults) == 1 else defaults  # one default for every key
        assert len(keys) == len(defaults), f"{keys}: {defaults}"
        for key, default in zip(keys, defaults):
            expected = configured(config_for(key), key)
            expected = float(expected) if isinstance(expected, (int, float)) and not isinstance(expected, bool) \
                else expected
            assert value(default) == expected, f"README says {key} = {default}; {config_for(key)} has {expected!r}"
            checked += 1
    return checked


def test_the_configs_table_is_the_base_config_and_the_apps():
    def config_for(key):
        return REPO / "configs" / ("app.yaml" if key.startswith("app.") else "_base_/default.yaml")

    assert rows_against("| key | default | meaning |", config_for) >= 20


def test_the_fine_tuning_table_is_the_published_config():
    assert rows_against("| key | default | choices |", lambda key: REPO / "configs" / "v1_fine_tuning.yaml") >= 15


def test_the_cuerator_table_is_the_published_config():
    assert rows_against("| key | default | for |", lambda key: REPO / "configs" / "cuerator_policy.yaml") >= 15


@pytest.mark.parametrize("text, parsed", [("`huge`", "huge"), ("5e-5", 5e-5), ("null = usable cores − 2", None),
                                          ('`"{}"`', "{}"), ("false", False), ("8", 8.0)])
def test_readme_values_are_read_as_yaml_would(text, parsed):
    assert value(text) == parsed
