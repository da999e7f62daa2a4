"""Benchmark metrics: pure functions over arrays and lists, one implementation each.

The evaluate modules under ``metrics/``, the CLI and the leaderboard all call these.
"""

from blueprint.metrics.action import (
    accuracy,
    confusion_matrix,
    macro_f1,
    per_action_prf,
)

__all__ = ["accuracy", "confusion_matrix", "macro_f1", "per_action_prf"]
