"""What the synthetic corpus holds (:class:`SynthConfig`) and where it went (:class:`SynthResult`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from blueprint.errors import BadInputError
from blueprint.synth.personas import PERSONAS
from blueprint.validation import check_choice, check_scalar


@dataclass(frozen=True)
class SynthConfig:
    """What to generate. Every field is validated; the output depends on nothing else."""

    users: int = 1000
    seed: int = 0
    personas: int = len(PERSONAS)
    events_per_user: float = 30.0
    pii_rate: float = 0.1
    corrupt_rate: float = 0.0
    days: float = 5.0
    start: str = "2025-03-23T00:00:00+00:00"
    foreign_rate: float = 0.03
    noise_rate: float = 0.02
    compress: str | None = None

    def __post_init__(self) -> None:
        check_scalar(self.users, "users", int, min_val=2)
        check_scalar(self.seed, "seed", int)
        check_scalar(self.personas, "personas", int, min_val=1, max_val=len(PERSONAS))
        check_scalar(self.events_per_user, "events_per_user", min_val=0, include_boundaries="neither")
        for name in ("pii_rate", "corrupt_rate", "foreign_rate", "noise_rate"):
            check_scalar(getattr(self, name), name, min_val=0, max_val=1)
        check_scalar(self.days, "days", min_val=0, include_boundaries="neither")
        check_choice(self.compress, "compress", (None, "gz", "zst"))
        try:
            datetime.fromisoformat(self.start)
        except ValueError:
            raise BadInputError(f"not an ISO 8601 date: {self.start!r}", field="start") from None


@dataclass
class SynthResult:
    """Where the corpus went and what it holds."""

    out_dir: Path
    files: list[str]
    counts: dict[str, Any]

