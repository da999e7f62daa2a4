"""What answers the prompts: an :class:`Engine`, and the generation settings every engine shares.

Two engines ship, one per module: :mod:`.transformers_engine` (a Hugging Face causal
LM run here) and :mod:`.openai_engine` (any OpenAI-compatible server). The driver,
:func:`blueprint.models.predict.predict`, never asks which one it holds: it renders
the prompts, hands them to :meth:`Engine.generate`, and records what the engine
describes and counts. A new engine implements this protocol in a module of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from blueprint.validation import check_scalar

OnDone = Callable[[int, "str | None", "str | None"], None]
"""Called once per prompt: (its index, the raw answer or None, why the call failed or None)."""


@dataclass(frozen=True)
class GenerationConfig:
    """How answers are generated. ``temperature`` 0 is greedy decoding."""

    max_new_tokens: int = 128
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    batch_size: int = 8

    def __post_init__(self) -> None:
        check_scalar(self.max_new_tokens, "max_new_tokens", int, min_val=1)
        check_scalar(self.temperature, "temperature", min_val=0)
        check_scalar(self.top_p, "top_p", min_val=0, max_val=1, include_boundaries="right")
        check_scalar(self.seed, "seed", int)
        check_scalar(self.batch_size, "batch_size", int, min_val=1)



class Engine(Protocol):
    """Answers prompts. ``style`` is ``chat`` (messages) or ``plain`` (one string), as
    :func:`blueprint.task.to_messages` makes them."""

    name: str
    style: str

    def describe(self) -> dict:
        """What made the answers (engine, model, settings; never a secret); kept beside them, compared on resume."""
        ...

    def generate(self, prompts: Sequence[Any], on_done: OnDone, *, progress: bool = False) -> None:
        """Answer every prompt, calling ``on_done`` as each answer arrives (in any order)."""
        ...

    def stats(self) -> dict:
        """What the engine counted while answering, for the run's report (empty when it counts nothing)."""
        ...
