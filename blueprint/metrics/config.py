"""Everything that changes a score: :class:`ScoreConfig`, recorded in every results file.

Light on purpose (the command line reads its defaults here); :mod:`.suite` scores with it.
"""

from __future__ import annotations

from dataclasses import dataclass

from blueprint.actions import ACTIONS
from blueprint.validation import check_choice, check_scalar

DEFAULT_RARE: tuple[str, ...] = ("post_update", "post_delete", "unlike", "unrepost", "unfollow", "block", "unblock")
"""The rare actions by default: each is under 2% of actions in the paper's data and in the synthetic corpus."""

MIN_ROWS = 30
"""The fewest evaluated rows whose scores can be read. Below it, one row moves accuracy by over 3 points and the 95%
interval of an accuracy near 0.5 is wider than ±0.18 (1.96 · 0.5 / sqrt(30)); macro-F1 averages over actions of
which many have no row at all. ``score`` warns below it, the leaderboard marks per-cluster rows below it, and the
dataset card gives each config's test rows against it."""


@dataclass(frozen=True)
class ScoreConfig:
    """Everything that changes a score. Recorded in every results file."""

    bootstrap: int = 200
    seed: int = 0
    confidence: float = 0.95
    rare: tuple[str, ...] = DEFAULT_RARE
    model: str = "default"
    max_length: int = 128
    bertscore: bool = True
    bertscore_model: str | None = None  # None: the same model as the embeddings
    rouge_stemmer: bool = False
    workers: int | None = None
    cache_dir: str | None = "default"
    folds: int = 5
    bootstrap_max_rows: int = 2000
    progress: bool = False  # progress bars for each phase (embedding, text metrics, bootstraps, distinguishability)

    def __post_init__(self) -> None:
        check_scalar(self.bootstrap, "bootstrap", int, min_val=0)
        check_scalar(self.seed, "seed", int)
        check_scalar(self.confidence, "confidence", min_val=0, max_val=1, include_boundaries="neither")
        for action in self.rare:
            check_choice(action, "rare", ACTIONS)
        check_scalar(self.folds, "folds", int, min_val=2)
        check_scalar(self.bootstrap_max_rows, "bootstrap_max_rows", int, min_val=1)
