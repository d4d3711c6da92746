"""Typed experiment configs: YAML files with ``_base_`` inheritance and ``key=value`` overrides.

The schema is a tree of dataclasses (``common/schema.py``); loading checks every key and
type against it, so a typo or a wrong type stops the run with a message naming the key,
the file and the valid choices, instead of being silently ignored.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path

import yaml

from common.errors import UserError

BASE_KEY = "_base_"


class ConfigError(UserError):
    """A config file, key or value is wrong."""


@dataclasses.dataclass(frozen=True)
class Range:
    """The interval a numeric key must lie in, attached as ``Annotated[int, Range(...)]``.

    ``low`` / ``high`` are inclusive unless ``low_open`` / ``high_open``; None is unbounded.
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def contains(self, value) -> bool:
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def __str__(self) -> str:
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        return (f"{'(' if self.low_open or self.low is None else '['}{low}, "
                f"{high}{')' if self.high_open or self.high is None else ']'}")


class InvalidValue(ValueError):
    """Raised by a schema dataclass's ``__post_init__`` for values that only fail together
    (e.g. heads that do not divide a width); ``key`` is the field to blame."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys to values")
    return data


def _merge(base: dict, update: dict) -> dict:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_config_tree(path, _seen=()) -> dict:
    """The raw mapping of a config file after resolving ``_base_`` (paths relative to the file)."""
    path = Path(path)
    if path.resolve() in _seen:
        raise ConfigError(f"{path}: {BASE_KEY} files include each other in a loop")
    data = _read_yaml(path)
    bases = data.pop(BASE_KEY, [])
    bases = [bases] if isinstance(bases, str) else bases
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ConfigError(f"{path}: {BASE_KEY} must be a file name or a list of file names")
    merged: dict = {}
    for base in bases:
        merged = _merge(merged, read_config_tree(path.parent / base, _seen + (path.resolve(),)))
    return _merge(merged, data)


def parse_override(text: str) -> dict:
    """``a.b=value`` (value read as YAML) -> ``{"a": {"b": value}}``."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r} must look like section.key=value, e.g. train.epochs=10")
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        parsed = value
    tree: typing.Any = parsed
    for part in reversed(key.strip().split(".")):
        tree = {part: tree}
    return tree


def _describe(value) -> str:
    return f"{value!r} ({type(value).__name__})"


def _convert(value, annotation, key: str, source: str):
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        converted = _convert(value, args[0], key, source)
        for bound in (m for m in annotation.__metadata__ if isinstance(m, Range)):
            if converted is not None and not bound.contains(converted):
                raise ConfigError(f"{source}: {key} = {converted!r} is out of range; allowed: {bound}")
        return converted
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        return _convert(value, options[0], key, source)
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{source}: {key} = {value!r} is not allowed; choose one of "
                              f"{', '.join(repr(a) for a in args)}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{source}: {key} must be a list, got {_describe(value)}")
        return tuple(_convert(v, args[0], f"{key}[{i}]", source) for i, v in enumerate(value))
    if dataclasses.is_dataclass(annotation):
        return build(annotation, value, source, key)
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: {key} must be true or false, got {_describe(value)}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: {key} must be an integer, got {_describe(value)}")
        return value
    if annotation is float:
        if isinstance(value, str):  # PyYAML reads 1e-3 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{source}: {key} must be a number, got {_describe(value)}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{source}: {key} must be a string, got {_describe(value)}")
        return value
    raise TypeError(f"unsupported config type {annotation!r} for {key}")


def build(cls, data, source: str = "config", prefix: str = ""):
    """Instantiate dataclass ``cls`` from a mapping, checking every key and type."""
    where = prefix or "the top level"
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {where} must be a mapping, got {_describe(data)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls, include_extras=True)
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(str(key), fields, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            full = f"{prefix}.{key}" if prefix else key
            raise ConfigError(f"{source}: unknown config key {full!r}{hint}; valid keys under {where}: "
                              f"{', '.join(fields)}")
    values = {}
    for name, field in fields.items():
        if name in data:
            values[name] = _convert(data[name], hints[name], f"{prefix}.{name}" if prefix else name, source)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{source}: required config key {prefix + '.' if prefix else ''}{name} is missing")
    try:
        return cls(**values)
    except InvalidValue as err:
        full = f"{prefix}.{err.key}" if prefix else err.key
        raise ConfigError(f"{source}: {full}: {err}") from None


def differences(old, new, prefix: str = "") -> list[str]:
    """``key: old value -> new value`` for every leaf of two nested dicts that differs."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [line for key in sorted(set(old) | set(new))
                for line in differences(old.get(key), new.get(key), f"{prefix}{key}.")]
    return [] if old == new else [f"{prefix.rstrip('.')}: {old!r} -> {new!r}"]


def to_dict(config) -> dict:
    """Plain nested dict (lists for tuples) for YAML/JSON output."""
    def plain(value):
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value
    return plain(dataclasses.asdict(config))


def load(cls, path, overrides=()):
    """Load config file ``path`` into dataclass ``cls``, applying ``key=value`` overrides last."""
    tree = read_config_tree(path)
    for text in overrides:
        tree = _merge(tree, parse_override(text))
    source = str(path) + (" (with overrides)" if overrides else "")
    return build(cls, tree, source)
