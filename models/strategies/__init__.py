"""Decoding strategies: how each segment gets its label from the audio-text and visual-text
similarities ``[N, T, K]`` (last column ``other``). Like the backbone families, a strategy is an
entry of a module listed in :data:`MODULES`; ``eval_zero_shot.py --strategy``, ``localize.py
--strategy`` and the web app's chooser all offer what is registered here, so a new strategy
appears everywhere by being registered.

A strategy declares what it needs:

- ``"similarities"``: the frozen embeddings' similarities suffice (the training-free rules);
- ``"checkpoint"``: a trained model, read from a file by the strategy's ``load``, either turns the
  segment embeddings into the ones its rule decodes (``Decoder.transform``: the fine-tuning
  baseline's temporal layers), gives each video its own rule options (``Decoder.per_video``:
  CueRator's policy gives each video its parameters), or scores every class of every segment from
  the named streams and the class texts itself (``Decoder.fuse``: complex-valued fusion), which
  its rule then decodes.

A similarity strategy may take settings from the config (``settings``: CueRator's fitted
parameters). A strategy module provides ``STRATEGIES``: a tuple of :class:`Strategy`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

import torch

from common.errors import UserError

MODULES = ("models.strategies.training_free", "models.strategies.fine_tuning", "models.strategies.cuerator",
           "models.strategies.complex_fusion")
DEFAULT = "v01"  # the published training-free rule


class UnknownStrategy(UserError, ValueError):
    """A strategy name that is not registered, or one used where it cannot be."""


@dataclass(frozen=True)
class Strategy:
    name: str  # e.g. "v01"
    method: str  # "training-free", "fine-tuning": what a title calls it
    summary: str  # one line for --help and the README
    needs: Literal["similarities", "checkpoint"]
    rule: Callable  # (sim_audio, sim_visual, **decoder.options, **per-video options) -> models.decoders.Decoded;
    # a fusing strategy's: (fused scores [N, T, K]) -> Decoded
    load: Callable | None = None  # checkpoint strategies: (checkpoint, state, device) -> Decoder
    recognizes: Callable | None = None  # checkpoint strategies: (the file's torch.load) -> bool
    settings: Callable | None = None  # similarity strategies with settings: (config) -> the rule's options
    reads: str = ""  # checkpoint strategies: what their file is, for messages
    available: Callable | None = None  # strategies with settings: (config) -> whether the config gives them
    localizer_options: dict = field(default_factory=dict)  # the rule's options for videos outside the benchmark

    def decoder(self, checkpoint=None, device="cpu", config=None) -> "Decoder":
        """The strategy ready to decode; a checkpoint strategy reads its model from ``checkpoint``,
        a strategy with settings reads them from ``config``."""
        if self.needs == "checkpoint":
            if checkpoint is None:
                raise UnknownStrategy(f"strategy {self.name} decodes with a trained model: give it a checkpoint "
                                      "(localize.py --checkpoint, eval_zero_shot.py --checkpoint)")
            return checkpoint_decoder(checkpoint, device, self.name)
        if checkpoint is not None:
            raise UnknownStrategy(f"strategy {self.name} decodes the frozen embeddings and takes no checkpoint; "
                                  f"a checkpoint is decoded by {', '.join(names('checkpoint'))}")
        return Decoder(self, options=self.settings(config) if self.settings else {})

    def offered(self, config) -> bool:
        """Whether ``config`` gives what this similarity strategy needs (a chooser offers only those)."""
        return self.available is None or self.available(config)


@dataclass(frozen=True)
class Decoder:
    """A strategy ready to label segments, with its trained model where it has one: ``transform``
    maps the segment embeddings ``(audio, vision) -> (audio, vision)`` before the similarities;
    ``per_video`` maps them to the rule's per-video options (``{name: [videos, ...]}``); ``fuse``
    maps ``({stream: [B, T, D]}, {"audio": [K, D_a], "vision": [K, D_v]})`` to scores ``[B, T, K]``
    from the ``streams`` it names (companion streams need ``settings``, what it was trained with)."""

    strategy: Strategy
    checkpoint: str | None = None
    transform: Callable | None = field(default=None, compare=False, repr=False)
    per_video: Callable | None = field(default=None, compare=False, repr=False)
    fuse: Callable | None = field(default=None, compare=False, repr=False)
    streams: tuple = ("audio", "vision")  # what the model reads
    settings: object = field(default=None, compare=False)  # a fusing model's own settings (its companions)
    widths: dict | None = None  # embedding widths the model takes
    encoder: dict | None = None  # the encoder config the model was trained on (its family, size, ...)
    options: dict = field(default_factory=dict, compare=False)  # the rule's options, e.g. a checkpoint's fusion

    @property
    def name(self) -> str:
        """What results and pages call it, e.g. ``training-free v01``."""
        if self.checkpoint is None:
            return f"{self.strategy.method} {self.strategy.name}"
        return f"{self.strategy.method} checkpoint {self.checkpoint} ({self.strategy.name})"

    def decode(self, sim_audio, sim_visual, **per_video):
        """Labels from the similarities ``[N, T, K]`` and, for a ``per_video`` model, its options
        for those N videos."""
        return self.strategy.rule(sim_audio, sim_visual, **self.options, **per_video)


_registry: dict[str, Strategy] = {}


def registry() -> dict[str, Strategy]:
    """Every registered strategy by name, in the order of :data:`MODULES`."""
    if not _registry:
        for module in MODULES:
            for strategy in importlib.import_module(module).STRATEGIES:
                _registry[strategy.name] = strategy
    return _registry


def read_checkpoint(path) -> object:
    """A checkpoint file as ``torch.load`` reads it (weights only); a missing or unreadable file
    is one message naming what each checkpoint strategy reads."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a damaged or foreign file can make the unpickler raise anything
        raise UserError(f"{path} is not a readable checkpoint ({type(err).__name__}); {checkpoint_kinds()}") from None


def checkpoint_kinds() -> str:
    return "a checkpoint is " + "; or ".join(s.reads for s in registry().values() if s.needs == "checkpoint")


def recognised(state, path) -> Strategy:
    """The checkpoint strategy that reads ``state`` (the file at ``path``, as torch.load read it)."""
    for candidate in registry().values():
        if candidate.needs == "checkpoint" and candidate.recognizes(state):
            return candidate
    raise UserError(f"{path} is not a checkpoint any strategy reads (a bare state dict or another model's file); "
                    + checkpoint_kinds())


def for_checkpoint(path) -> Strategy:
    """The checkpoint strategy that reads the file at ``path`` (a fine-tuning checkpoint, a policy, ...)."""
    return recognised(read_checkpoint(path), path)


def checkpoint_decoder(path, device="cpu", name: str | None = None, key: str = "strategy") -> Decoder:
    """The decoder of the checkpoint at ``path`` (read once): strategy ``name`` (``key``: how the
    user gave it), or without a name the strategy that recognises the file."""
    state = read_checkpoint(path)
    if name is None:
        chosen = recognised(state, path)
    else:
        chosen = strategy(name, key, needs="checkpoint")
        if not chosen.recognizes(state):
            raise UnknownStrategy(f"{path} is not a checkpoint of strategy {chosen.name}; " + checkpoint_kinds())
    return chosen.load(path, state, device)


def names(needs: str | None = None) -> tuple[str, ...]:
    """Registered names, those needing ``needs`` only when given."""
    return tuple(name for name, s in registry().items() if needs is None or s.needs == needs)


def strategy(name: str, key: str = "strategy", needs: str | None = None) -> Strategy:
    """The strategy ``name``; ``key`` is how the user gave it (for the message), ``needs``
    restricts the choice (e.g. a run without a checkpoint takes ``similarities`` only)."""
    allowed = names(needs)
    if name not in allowed:
        raise UnknownStrategy(f"{key} = {name!r} is not allowed; choose one of "
                              f"{', '.join(repr(n) for n in allowed)}"
                              + ("" if name not in registry() else f" ({name} needs a {registry()[name].needs})"))
    return registry()[name]


def decode(name: str, sim_audio, sim_visual):
    """Decode similarities with strategy ``name``'s rule (a checkpoint strategy's rule is applied
    to whatever similarities it is given)."""
    if name not in registry():
        raise UnknownStrategy(f"unknown decoding strategy {name!r}; choose one of {', '.join(names())}")
    return registry()[name].rule(sim_audio, sim_visual)
