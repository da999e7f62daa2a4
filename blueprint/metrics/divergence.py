"""Jensen-Shannon divergence (log2), and the divergence of two sets of actions, ``action_js``.

One implementation serves the action distributions (``action_js``, its per-cluster
table and the diagonality matrices) and the histograms of pairwise embedding
distances (``embedding_js`` in :mod:`blueprint.metrics.text`). scipy's
``jensenshannon`` returns the square root of this number.
"""

from __future__ import annotations

import numpy as np

from blueprint.metrics.action import N_ACTIONS


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence with log2, between two histograms or distributions (normalised here)."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    keep = (p + q) > 0
    p, q = p[keep], q[keep]
    if p.sum() == 0 or q.sum() == 0:
        return float("nan")
    p, q = p / p.sum(), q / q.sum()
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    return max(0.0, 0.5 * kl(p) + 0.5 * kl(q))


def action_distribution(actions: np.ndarray) -> np.ndarray:
    """Counts of each of the 13 actions (as floats), from action indices."""
    return np.bincount(np.asarray(actions, dtype=np.int64), minlength=N_ACTIONS).astype(np.float64)


def action_js(reference_idx: np.ndarray, prediction_idx: np.ndarray) -> float:
    """JS divergence (log2) between the real and the predicted action distributions."""
    return js_divergence(action_distribution(reference_idx), action_distribution(prediction_idx))
