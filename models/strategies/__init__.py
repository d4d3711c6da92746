"""Decoding strategies: how each segment gets its label from the audio-text and visual-text
similarities ``[N, T, K]`` (last column ``other``). Like the backbone families, a strategy is an
entry of a module listed in :data:`MODULES`; ``eval_zero_shot.py --strategy``, ``localize.py
--strategy`` and the web app's chooser all offer what is registered here, so a new strategy
appears everywhere by being registered.

A strategy declares what it needs:

- ``"similarities"``: the frozen embeddings' similarities suffice (the training-free rules);
- ``"checkpoint"``: a trained model, read from a checkpoint by the strategy's ``load``, turns the
  segment embeddings into the ones its rule decodes (the fine-tuning baseline's temporal layers).

A strategy module provides ``STRATEGIES``: a tuple of :class:`Strategy`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable, Literal

from common.errors import UserError

MODULES = ("models.strategies.training_free", "models.strategies.fine_tuning")
DEFAULT = "v01"  # the published training-free rule


class UnknownStrategy(UserError, ValueError):
    """A strategy name that is not registered, or one used where it cannot be."""


@dataclass(frozen=True)
class Strategy:
    name: str  # e.g. "v01"
    method: str  # "training-free", "fine-tuning": what a title calls it
    summary: str  # one line for --help and the README
    needs: Literal["similarities", "checkpoint"]
    rule: Callable  # (sim_audio, sim_visual, **decoder.options) -> models.decoders.Decoded
    load: Callable | None = None  # checkpoint strategies: (checkpoint path, device) -> Decoder

    def decoder(self, checkpoint=None, device="cpu") -> "Decoder":
        """The strategy ready to decode; a checkpoint strategy reads its model from ``checkpoint``."""
        if self.needs == "checkpoint":
            if checkpoint is None:
                raise UnknownStrategy(f"strategy {self.name} decodes a trained model's embeddings: give it a "
                                      "checkpoint (localize.py --checkpoint, train.py --evaluate)")
            return self.load(checkpoint, device)
        if checkpoint is not None:
            raise UnknownStrategy(f"strategy {self.name} decodes the frozen embeddings and takes no checkpoint; "
                                  f"a checkpoint is decoded by {', '.join(names('checkpoint'))}")
        return Decoder(self)


@dataclass(frozen=True)
class Decoder:
    """A strategy ready to label segments: with its trained model (``model`` maps the segment
    embeddings ``(audio, vision) -> (audio, vision)`` before the similarities), where it has one."""

    strategy: Strategy
    checkpoint: str | None = None
    model: object = field(default=None, compare=False, repr=False)
    widths: dict | None = None  # embedding widths the model takes
    encoder: dict | None = None  # the encoder config the model was trained on (its family, size, ...)
    options: dict = field(default_factory=dict, compare=False)  # the rule's options, e.g. a checkpoint's fusion

    @property
    def name(self) -> str:
        """What results and pages call it, e.g. ``training-free v01``."""
        if self.checkpoint is None:
            return f"{self.strategy.method} {self.strategy.name}"
        return f"{self.strategy.method} checkpoint {self.checkpoint} ({self.strategy.name})"

    def decode(self, sim_audio, sim_visual):
        return self.strategy.rule(sim_audio, sim_visual, **self.options)


_registry: dict[str, Strategy] = {}


def registry() -> dict[str, Strategy]:
    """Every registered strategy by name, in the order of :data:`MODULES`."""
    if not _registry:
        for module in MODULES:
            for strategy in importlib.import_module(module).STRATEGIES:
                _registry[strategy.name] = strategy
    return _registry


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
